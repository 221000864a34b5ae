"""The Adam-family and Adafactor blocks: against optax where conventions agree, against
torch.optim for states and for cases the registry's parity grid does not reach (schedules,
relative-step cap, 0-D/1-D/3-D params, sparse rows), and low-precision moment storage.

Gradients here are fixed random sequences (not functions of the params), so trajectories
are not chaotic and tolerances can be tight.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

import optxform
from tests import oracles
from tests.oracles import assert_trajectories_close as assert_all_close

SHAPES = {"a": (4, 3), "b": (5,), "c": (2, 3, 4)}


def _params(shapes=SHAPES, seed=0):
    rng = np.random.default_rng(seed)
    return {n: np.asarray(rng.standard_normal(s), np.float32) for n, s in shapes.items()}


def _grads(steps, shapes=SHAPES, seed=1, shrink=False):
    """Random gradients; with ``shrink`` their scale falls over time (v_t then shrinks)."""
    rng = np.random.default_rng(seed)
    out = []
    for t in range(steps):
        scale = 4.0 * 0.8 ** t if shrink else 1.0
        out.append({n: np.asarray(scale * rng.standard_normal(s), np.float32)
                    for n, s in shapes.items()})
    return out


def _run(tx, params, grads):
    """Params after each step and the final state (jit-compiled step)."""
    step = jax.jit(lambda p, s, g: (lambda u, s: (optxform.apply_updates(p, u), s))(
        *tx.update(g, s, p)))
    params = jax.tree.map(jnp.asarray, params)
    state = tx.init(params)
    out = []
    for g in grads:
        params, state = step(params, state, jax.tree.map(jnp.asarray, g))
        out.append(jax.tree.map(np.asarray, params))
    return out, state


def _directions(tx, grads, params=None):
    """The updates a block emits for each gradient (params zero unless given)."""
    if params is None:
        params = jax.tree.map(np.zeros_like, grads[0])
    return oracles.emitted_updates(tx, grads, params)


def _optax_directions(tx, grads):
    # optax's bias correction mixes int32 counts and floats: not strict-promotion clean.
    with jax.numpy_dtype_promotion("standard"):
        return _directions(tx, grads)


def _torch_run(cls, kwargs, params, grads, *, scheduler=None, sparse=False):
    names = sorted(params)
    tp = {n: torch.tensor(params[n], requires_grad=True) for n in names}
    opt = getattr(torch.optim, cls)([tp[n] for n in names], **kwargs)
    sched = scheduler(opt) if scheduler else None
    out = []
    for g in grads:
        for n in names:
            dense = torch.from_numpy(g[n].copy())
            tp[n].grad = dense.to_sparse(sparse_dim=1) if sparse else dense
        opt.step()
        if sched is not None:
            sched.step()
        out.append({n: tp[n].detach().numpy().copy() for n in names})
    return out, {n: opt.state[tp[n]] for n in names}


# --- against optax ------------------------------------------------------------------------

@pytest.mark.parametrize("kw", [{}, {"eps_root": 1e-8}, {"b1": 0.5, "b2": 0.9, "eps": 1e-3}])
def test_scale_by_adam_equals_optax(kw):
    grads = _grads(25)
    ours = _directions(optxform.scale_by_adam(**kw), grads)
    theirs = _optax_directions(optax.scale_by_adam(**kw), grads)
    # optax evaluates 1 - b2**t in float32 (1.3e-5 relative off at t=1); we use expm1.
    assert_all_close(ours, theirs, rtol=2e-5, atol=1e-7)


def test_amsgrad_takes_the_max_of_raw_second_moments_like_torch_not_optax():
    params, grads = _params(), _grads(12, shrink=True)
    ours, state = _run(optxform.adam(0.05, amsgrad=True), params, grads)
    expected, tstate = _torch_run("Adam", {"lr": 0.05, "amsgrad": True}, params, grads)
    assert_all_close(ours, expected)
    for n in params:
        np.testing.assert_allclose(state["adam"].nu_max[n], tstate[n]["max_exp_avg_sq"].numpy(),
                                   rtol=1e-5)
    # optax maximises the bias-corrected moment: different once v_t shrinks ...
    optax_dirs = _optax_directions(optax.scale_by_amsgrad(), grads)
    our_dirs = _directions(optxform.scale_by_adam(amsgrad=True), grads)
    np.testing.assert_allclose(our_dirs[0]["a"], optax_dirs[0]["a"], rtol=2e-5)
    assert np.max(np.abs(our_dirs[-1]["a"] - optax_dirs[-1]["a"])) > 1e-2
    # ... and the same for a constant gradient (v_t / (1 - b2^t) is then constant).
    constant = [grads[0]] * 8
    assert_all_close(_directions(optxform.scale_by_adam(amsgrad=True), constant),
           _optax_directions(optax.scale_by_amsgrad(), constant), rtol=2e-5, atol=1e-7)


def test_adamw_with_mask_equals_optax_adamw():
    params, grads = _params(), _grads(30)
    mask = {"a": True, "b": False, "c": True}
    ours, _ = _run(optxform.adamw(0.02, weight_decay=0.1, mask=mask), params, grads)
    with jax.numpy_dtype_promotion("standard"):
        theirs, _ = _run(optax.adamw(0.02, weight_decay=0.1, mask=mask), params, grads)
    assert_all_close(ours, theirs, atol=5e-6)  # same math; the decay is rounded as torch does
    undecayed, _ = _run(optxform.adamw(0.02, weight_decay=0.0), params, grads)
    np.testing.assert_array_equal(ours[-1]["b"], undecayed[-1]["b"])
    assert np.max(np.abs(ours[-1]["a"] - undecayed[-1]["a"])) > 1e-3


def test_scale_by_adamax_equals_optax():
    grads = _grads(25)
    assert_all_close(_directions(optxform.scale_by_adamax(), grads),
           _optax_directions(optax.scale_by_adamax(), grads), rtol=2e-5, atol=1e-7)


def test_nadam_equals_optax_only_when_the_momentum_schedule_is_flat():
    grads = _grads(20)
    theirs = _optax_directions(optax.scale_by_adam(nesterov=True), grads)  # optax.nadam
    flat = _directions(optxform.scale_by_nadam(momentum_decay=1e4), grads)  # mu_t = b1
    assert_all_close(flat, theirs, rtol=2e-5, atol=1e-7)
    scheduled = _directions(optxform.scale_by_nadam(), grads)  # torch's default 4e-3
    assert np.max(np.abs(scheduled[3]["a"] - theirs[3]["a"])) > 1e-2


def test_radam_equals_optax_when_eps_is_zero_only(x64):
    # In float64: optax evaluates rho_t = rho_inf - 2t b2^t / (1 - b2^t) in the params'
    # precision, and in float32 its two ~2000-sized terms cancel (0.6% off at t = 6).
    grads = [jax.tree.map(lambda x: x.astype(np.float64), g) for g in _grads(20)]
    assert_all_close(_directions(optxform.scale_by_radam(eps=0.0), grads),
           _optax_directions(optax.scale_by_radam(eps=0.0), grads), rtol=1e-6, atol=1e-9)
    # torch adds eps to the uncorrected sqrt(v): a visible difference for a large eps.
    ours = _directions(optxform.scale_by_radam(eps=0.1), grads)
    theirs = _optax_directions(optax.scale_by_radam(eps=0.1), grads)
    np.testing.assert_allclose(ours[2]["a"], theirs[2]["a"], rtol=1e-6)  # rho_t <= 5
    assert np.max(np.abs(ours[-1]["a"] - theirs[-1]["a"])) > 1e-3


# --- against torch: states, schedules, shapes ---------------------------------------------

@pytest.mark.parametrize("alias,cls,kw,fields", [
    ("nadam", "NAdam", {"weight_decay": 0.1},
     {"mu": "exp_avg", "nu": "exp_avg_sq", "mu_product": "mu_product"}),
    ("radam", "RAdam", {"weight_decay": 0.1, "decoupled_weight_decay": True},
     {"mu": "exp_avg", "nu": "exp_avg_sq"}),
    ("adamax", "Adamax", {"weight_decay": 0.1}, {"mu": "exp_avg", "nu": "exp_inf"}),
])
def test_state_matches_torch(alias, cls, kw, fields):
    params, grads = _params(), _grads(10)
    ours, state = _run(getattr(optxform, alias)(0.01, **kw), params, grads)
    expected, tstate = _torch_run(cls, dict(kw, lr=0.01), params, grads)
    assert_all_close(ours, expected)
    block = next(s for s in state.values() if hasattr(s, "mu"))
    assert int(block.count) == 10
    for ours_field, torch_field in fields.items():
        for n in params:
            mine = getattr(block, ours_field)
            mine = mine if ours_field == "mu_product" else mine[n]
            np.testing.assert_allclose(mine, tstate[n][torch_field].numpy(), rtol=1e-5,
                                       atol=1e-8, err_msg=f"{ours_field} {n}")


@pytest.mark.parametrize("alias,cls", [("adamw", "AdamW"), ("radam", "RAdam")])
def test_decoupled_decay_with_a_schedule_matches_torch_scheduler(alias, cls):
    params, grads = _params(), _grads(30)
    schedule = lambda count: 0.05 * jnp.power(0.9, count.astype(jnp.float32))  # noqa: E731
    extra = {"decoupled_weight_decay": True} if alias == "radam" else {}
    ours, _ = _run(getattr(optxform, alias)(schedule, weight_decay=0.3, **extra),
                   params, grads)
    expected, _ = _torch_run(cls, dict(lr=0.05, weight_decay=0.3, **extra), params, grads,
                             scheduler=lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.9))
    assert_all_close(ours, expected)


SHAPES_0_TO_3D = {"s": (), "v": (5,), "m": (4, 3), "t": (2, 3, 4)}


@pytest.mark.parametrize("schedule", [False, True])
def test_adafactor_matches_torch_with_relative_step_cap_and_0d_to_3d_params(schedule):
    # lr = 0.5 makes min(lr, 1/sqrt(t)) switch to 1/sqrt(t) from t = 5 on.
    params, grads = _params(SHAPES_0_TO_3D), _grads(15, SHAPES_0_TO_3D)
    lr = (lambda count: 0.5 * jnp.power(0.9, count.astype(jnp.float32))) if schedule else 0.5
    ours, state = _run(optxform.adafactor(lr, weight_decay=0.1, d=1.1), params, grads)
    expected, tstate = _torch_run(
        "Adafactor", {"lr": 0.5, "weight_decay": 0.1, "d": 1.1}, params, grads,
        scheduler=(lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.9)) if schedule
        else None)
    assert_all_close(ours, expected)
    block = state["factored_rms"]
    np.testing.assert_allclose(block.row["t"], tstate["t"]["row_var"].numpy(), rtol=1e-5)
    np.testing.assert_allclose(block.col["m"], tstate["m"]["col_var"].numpy(), rtol=1e-5)
    np.testing.assert_allclose(block.v["v"], tstate["v"]["variance"].numpy(), rtol=1e-5)


def test_factored_state_shapes_follow_the_last_two_axes():
    params = jax.tree.map(jnp.asarray, _params(SHAPES_0_TO_3D))
    state = optxform.scale_by_factored_rms().init(params)
    assert state.row["t"].shape == (2, 3, 1) and state.col["t"].shape == (2, 1, 4)
    assert state.row["m"].shape == (4, 1) and state.col["m"].shape == (1, 3)
    assert state.v["m"].shape == (0,) and state.row["v"].shape == (0,)
    assert state.v["v"].shape == (5,) and state.v["s"].shape == ()


def test_factored_eps1_none_is_the_param_dtype_epsilon():
    # A zero gradient: U = 0 / sqrt(eps1^2) = 0, whatever eps1 is; a tiny gradient shows it.
    g = {"w": jnp.full((3,), 1e-9, jnp.float32)}
    p = {"w": jnp.ones((3,), jnp.float32)}
    tx = optxform.scale_by_factored_rms(eps=(None, 1e-3), d=1e9)
    explicit = optxform.scale_by_factored_rms(eps=(float(jnp.finfo(jnp.float32).eps), 1e-3),
                                              d=1e9)
    u, _ = tx.update(g, tx.init(p), p)
    e, _ = explicit.update(g, explicit.init(p), p)
    np.testing.assert_array_equal(u["w"], e["w"])
    np.testing.assert_allclose(u["w"], 1e-9 / float(jnp.finfo(jnp.float32).eps), rtol=1e-5)


# --- sparse Adam --------------------------------------------------------------------------

def test_sparse_adam_leaves_all_zero_rows_and_their_moments_untouched():
    params = {"embed": np.arange(12, dtype=np.float32).reshape(6, 2) / 10}
    grads = []
    for t in range(6):
        g = np.zeros((6, 2), np.float32)
        g[t % 3] = [0.5, -1.0]   # rows 0..2 are touched in turn
        g[4] = [0.0, 2.0]        # row 4 always, with one zero entry
        grads.append({"embed": g})
    ours, state = _run(optxform.sparse_adam(0.1), params, grads)
    final = ours[-1]["embed"]
    for row in (3, 5):           # never touched
        np.testing.assert_array_equal(final[row], params["embed"][row])
        np.testing.assert_array_equal(state["sparse_adam"].mu["embed"][row], 0.0)
    assert np.all(final[:3] != params["embed"][:3]) and final[4, 1] != params["embed"][4, 1]
    # Row 0 was touched at steps 0 and 3 only: unchanged between steps 4 and 5.
    np.testing.assert_array_equal(ours[4]["embed"][0], ours[3]["embed"][0])
    expected, _ = _torch_run("SparseAdam", {"lr": 0.1}, params, grads, sparse=True)
    assert_all_close(ours, expected)


def test_sparse_adam_rows_of_1d_and_3d_params_match_torch():
    shapes = {"v": (6,), "t": (5, 2, 3)}
    params, grads = _params(shapes), _grads(10, shapes)
    for t, g in enumerate(grads):
        g["v"][[t % 6, (t + 2) % 6]] = 0.0       # 1-D: each element is a row
        g["t"][[t % 5, (t + 3) % 5]] = 0.0       # 3-D: a row is a whole [2, 3] block
    ours, _ = _run(optxform.sparse_adam(0.05, maximize=True), params, grads)
    expected, _ = _torch_run("SparseAdam", {"lr": 0.05, "maximize": True}, params, grads,
                             sparse=True)
    assert_all_close(ours, expected)


# --- low-precision moments ----------------------------------------------------------------

@pytest.mark.parametrize("alias", ["adam", "adamw"])
def test_bf16_moments_store_bf16_and_track_the_float32_run(alias):
    make = getattr(optxform, alias)
    full = make(1e-2)
    low = make(1e-2, mu_dtype=jnp.bfloat16, nu_dtype=jnp.bfloat16)
    ref = oracles.optxform_trajectory(full, "mlp", 100)
    got = oracles.optxform_trajectory(low, "mlp", 100)
    state = low.init(jax.tree.map(jnp.asarray, oracles.mlp_params()))
    block = next(s for s in state.values() if hasattr(s, "mu"))
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves((block.mu, block.nu)))
    start = oracles.mlp_params()
    for n in start:
        # Documented in scale_by_adam: within 2e-2 absolute and 2% of the distance moved.
        np.testing.assert_allclose(got[-1][n], ref[-1][n], atol=2e-2, rtol=0)
        moved = np.linalg.norm(ref[-1][n] - start[n])
        assert np.linalg.norm(got[-1][n] - ref[-1][n]) < 2e-2 * moved
