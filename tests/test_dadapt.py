"""prodigy, dadapt_adam, dadapt_sgd: what the reference rows of tests/registry.py cannot reach.

The rows compare 100-step trajectories for each option combination. Here: learning-rate
schedules (a warm-up from 0 makes the references skip their first step), gradients that
are zero at first (the step is skipped and not counted), the estimate ``d`` in the state
against the reference's, validation, ``packed``, sharded ``jit`` on 8 devices, and
checkpoints.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import optxform
from optxform import tree as otu
from optxform.rules import Buffer, Hyperparameter, Rule, Scalar, lift
from tests import oracles

REFERENCES = {"prodigy": "prodigyopt:Prodigy", "dadapt_adam": "dadaptation:DAdaptAdam",
              "dadapt_sgd": "dadaptation:DAdaptSGD"}
ROLES = {"prodigy": "prodigy", "dadapt_adam": "dadapt_adam", "dadapt_sgd": "dadapt_sgd"}


def _trajectories(alias, kwargs, reference_kwargs, steps, *, zero_until=0,
                  factor=None, dtype=np.float64):
    """Params and ``d`` after each step, ours and the reference's, fed the same gradients
    (all zero before step ``zero_until``); ``factor(t)`` multiplies the learning rate at
    step ``t`` (torch's ``LambdaLR``; ours a schedule)."""
    make, _ = oracles.PROBLEMS["mlp"]
    init = make(dtype=dtype)
    names = sorted(init)
    grad = oracles.grad_fn("mlp")

    def grads_at(params, t):
        g = grad(params, jnp.asarray(t, jnp.int32))
        return jax.tree.map(jnp.zeros_like, g) if t < zero_until else g

    tparams = {n: torch.tensor(init[n], requires_grad=True) for n in names}
    opt = oracles.reference_optimizer(REFERENCES[alias])([tparams[n] for n in names],
                                                         **reference_kwargs)
    scheduler = (None if factor is None else
                 torch.optim.lr_scheduler.LambdaLR(opt, lambda t: factor(t)))
    if factor is not None:
        base = kwargs["learning_rate"]
        kwargs = dict(kwargs, learning_rate=lambda count: base * factor(count))
    tx = getattr(optxform, alias)(**kwargs)
    params = jax.tree.map(jnp.asarray, init)
    state = tx.init(params)
    update = jax.jit(tx.update)
    ours, theirs = [], []
    for t in range(steps):
        g = grads_at({n: jnp.asarray(tparams[n].detach().numpy()) for n in names}, t)
        for n in names:
            tparams[n].grad = torch.from_numpy(np.array(g[n]))
        opt.step()
        if scheduler is not None:
            scheduler.step()
        theirs.append(({n: tparams[n].detach().numpy().copy() for n in names},
                       opt.param_groups[0]["d"]))
        updates, state = update(grads_at(params, t), state, params)
        params = optxform.apply_updates(params, updates)
        ours.append((jax.tree.map(np.asarray, params), float(state[ROLES[alias]].d)))
    return ours, theirs


def _assert_same(ours, theirs, rtol=1e-10, atol=1e-12):
    for t, ((p, d), (q, e)) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(d, e, rtol=rtol, err_msg=f"d at step {t + 1}")
        for name in q:
            np.testing.assert_allclose(p[name], q[name], rtol=rtol, atol=atol,
                                       err_msg=f"{name} at step {t + 1}")


def _float(t):
    """A step as torch's scheduler (a Python int) or our schedule (an int32 array, x64 on)
    sees it."""
    return t if isinstance(t, int) else t.astype(jnp.float64)


# Schedules whose values are exact in float32 (our schedules are evaluated in float32).
def _warmup_from_zero(t):
    return (min if isinstance(t, int) else jnp.minimum)(1.0, _float(t) / 4)


def _halving(t):
    return 0.5 ** _float(t // 10)


@pytest.mark.parametrize("alias,kwargs,reference_kwargs", [
    ("prodigy", {"learning_rate": 1.0, "d0": 1e-4, "use_bias_correction": True},
     {"lr": 1.0, "d0": 1e-4, "use_bias_correction": True}),
    ("prodigy", {"learning_rate": 1.0, "d0": 1e-4, "safeguard_warmup": True},
     {"lr": 1.0, "d0": 1e-4, "safeguard_warmup": True}),
    ("dadapt_adam", {"learning_rate": 1.0, "use_bias_correction": True, "d0": 1e-4},
     {"lr": 1.0, "use_bias_correction": True, "d0": 1e-4}),
], ids=["prodigy-bias-correction", "prodigy-safeguard", "dadapt_adam-bias-correction"])
def test_a_warmup_from_zero_skips_the_first_step_as_the_reference_does(
        alias, kwargs, reference_kwargs, x64):
    ours, theirs = _trajectories(alias, kwargs, reference_kwargs, 30,
                                 factor=_warmup_from_zero)
    _assert_same(ours, theirs)
    # The first step (learning rate 0) moved nothing; the estimate then grew.
    make, _ = oracles.PROBLEMS["mlp"]
    start = make(dtype=np.float64)
    assert all(np.array_equal(ours[0][0][n], start[n]) for n in start)
    assert theirs[-1][1] > 2 * kwargs["d0"]


def test_dadapt_sgd_follows_a_schedule(x64):
    ours, theirs = _trajectories("dadapt_sgd", {"learning_rate": 0.25, "momentum": 0.9},
                                 {"lr": 0.25, "momentum": 0.9}, 30, factor=_halving)
    _assert_same(ours, theirs)
    assert theirs[-1][1] > 2e-6  # the estimate grew


@pytest.mark.parametrize("alias,kwargs,reference_kwargs", [
    ("prodigy", {"learning_rate": 0.03, "d0": 1e-4, "weight_decay": 0.05},
     {"lr": 0.03, "d0": 1e-4, "weight_decay": 0.05}),
    ("dadapt_adam", {"learning_rate": 0.1, "weight_decay": 0.05, "decouple": True},
     {"lr": 0.1, "weight_decay": 0.05, "decouple": True}),
], ids=["prodigy", "dadapt_adam"])
def test_zero_gradients_at_first_skip_those_steps_as_the_reference_does(
        alias, kwargs, reference_kwargs, x64):
    ours, theirs = _trajectories(alias, kwargs, reference_kwargs, 25, zero_until=3)
    _assert_same(ours, theirs)
    make, _ = oracles.PROBLEMS["mlp"]
    start = make(dtype=np.float64)
    # No step at all, decoupled weight decay included, while the gradients are zero.
    assert all(np.array_equal(ours[2][0][n], start[n]) for n in start)
    assert not np.array_equal(ours[-1][0]["w1"], start["w1"])


def test_dadapt_sgd_skips_a_zero_first_gradient_and_takes_g0_at_the_next_step(x64):
    """The reference divides by zero there; ours skips the step and carries on exactly as
    the reference does when started at the first non-zero gradient."""
    kwargs = {"learning_rate": 0.2, "weight_decay": 0.05}
    tx = optxform.dadapt_sgd(**kwargs)
    make, _ = oracles.PROBLEMS["mlp"]
    params = jax.tree.map(jnp.asarray, make(dtype=np.float64))
    state = tx.init(params)
    zeros = jax.tree.map(jnp.zeros_like, params)
    updates, state = jax.jit(tx.update)(zeros, state, params)
    assert all(bool(jnp.all(u == 0)) for u in jax.tree.leaves(updates))
    assert int(state["dadapt_sgd"].k) == 0 and float(state["dadapt_sgd"].d) == 1e-6
    # From here on: the reference's trajectory, one step later.
    ours, theirs = _trajectories("dadapt_sgd", kwargs, {"lr": 0.2, "weight_decay": 0.05}, 15)
    grad = oracles.grad_fn("mlp")
    update = jax.jit(tx.update)
    for t in range(15):
        updates, state = update(grad(params, jnp.asarray(t, jnp.int32)), state, params)
        params = optxform.apply_updates(params, updates)
        for name in params:
            np.testing.assert_allclose(params[name], theirs[t][0][name], rtol=1e-10,
                                       atol=1e-12, err_msg=f"{name} at step {t + 1}")


BAD = [
    ("prodigy", "learning_rate", 0.0), ("prodigy", "learning_rate", -1.0),
    ("prodigy", "b1", 1.0), ("prodigy", "b2", -0.1), ("prodigy", "b3", 1.5),
    ("prodigy", "eps", 0.0), ("prodigy", "weight_decay", -0.1), ("prodigy", "d0", 0.0),
    ("prodigy", "d_coef", 0.0), ("prodigy", "growth_rate", 0.0),
    ("prodigy", "growth_rate", "fast"), ("prodigy", "decouple", 1),
    ("prodigy", "use_bias_correction", None), ("prodigy", "safeguard_warmup", "yes"),
    ("dadapt_adam", "learning_rate", 0.0), ("dadapt_adam", "b1", 1.0),
    ("dadapt_adam", "b2", 1.0), ("dadapt_adam", "eps", 0.0),
    ("dadapt_adam", "weight_decay", -1.0), ("dadapt_adam", "d0", -1e-6),
    ("dadapt_adam", "growth_rate", -1.0), ("dadapt_adam", "decouple", 0),
    ("dadapt_adam", "use_bias_correction", 1),
    ("dadapt_sgd", "learning_rate", -0.1), ("dadapt_sgd", "momentum", 1.0),
    ("dadapt_sgd", "momentum", -0.5), ("dadapt_sgd", "weight_decay", -0.1),
    ("dadapt_sgd", "d0", 0.0), ("dadapt_sgd", "growth_rate", float("nan")),
]


@pytest.mark.parametrize("alias,name,value", BAD, ids=[f"{a}-{n}-{v}" for a, n, v in BAD])
def test_bad_hyperparameters_are_rejected_naming_the_option(alias, name, value):
    with pytest.raises(ValueError, match=name):
        getattr(optxform, alias)(**{name: value})


def test_accepted_edge_values():
    for tx in (optxform.prodigy(b3=0.0, growth_rate=1.0, b1=0.0),
               optxform.prodigy(b3=1.0, growth_rate=math.inf),
               optxform.dadapt_adam(b1=0.0, growth_rate=1.5),
               optxform.dadapt_sgd(momentum=0.0, growth_rate=2)):
        params = {"w": jnp.ones(3)}
        updates, _ = tx.update({"w": jnp.full(3, 0.5)}, tx.init(params), params)
        assert bool(jnp.all(updates["w"] < 0))


OPTIONED = {
    "prodigy": lambda: optxform.prodigy(1.0, weight_decay=0.05, decouple=False, d0=1e-4,
                                        use_bias_correction=True),
    "dadapt_adam": lambda: optxform.dadapt_adam(0.1, weight_decay=0.05, decouple=True,
                                                d0=1e-4),
    "dadapt_sgd": lambda: optxform.dadapt_sgd(0.2, momentum=0.9, weight_decay=0.05,
                                              d0=1e-4),
}


def _run(tx, params, steps, state=None):
    grad = oracles.grad_fn("mlp")
    update = jax.jit(tx.update)
    state = tx.init(params) if state is None else state
    for t in range(steps):
        updates, state = update(grad(params, jnp.asarray(t, jnp.int32)), state, params)
        params = optxform.apply_updates(params, updates)
    return params, state


def _mlp_params():
    make, _ = oracles.PROBLEMS["mlp"]
    return jax.tree.map(jnp.asarray, make())


@pytest.mark.parametrize("alias", sorted(OPTIONED))
def test_packed_equals_the_plain_optimizer_with_options(alias):
    params = _mlp_params()
    plain, plain_state = _run(OPTIONED[alias](), params, 10)
    packed, _ = _run(optxform.packed(OPTIONED[alias]()), params, 10)
    for name in plain:
        np.testing.assert_allclose(packed[name], plain[name], rtol=2e-6, atol=1e-7,
                                   err_msg=name)
    assert float(optxform.tree_get(plain_state, "d")) > 1e-4  # the estimate grew


@pytest.mark.parametrize("alias", sorted(OPTIONED))
def test_sharded_jit_on_8_devices_equals_one_device(alias):
    assert jax.device_count() == 8
    mesh = jax.make_mesh((8,), ("model",))
    rng = np.random.default_rng(0)
    host = {"w": (rng.standard_normal((16, 8)) * 0.5).astype(np.float32),
            "b": (rng.standard_normal((8,)) * 0.1).astype(np.float32)}
    target = rng.standard_normal((16, 8)).astype(np.float32)

    def loss(params):
        return jnp.mean(jnp.square(jnp.tanh(params["w"] + params["b"][None, :]) - target))

    tx = OPTIONED[alias]()

    @jax.jit
    def step(params, state):
        updates, state = tx.update(jax.grad(loss)(params), state, params)
        return optxform.apply_updates(params, updates), state

    shardings = {"w": NamedSharding(mesh, P(None, "model")),
                 "b": NamedSharding(mesh, P("model"))}
    params = jax.device_put(host, shardings)
    state = optxform.sharded_init(tx, params)
    single = jax.tree.map(jnp.asarray, host)
    single_state = tx.init(single)
    for _ in range(6):
        params, state = step(params, state)
        single, single_state = step(single, single_state)
    assert params["w"].sharding.is_equivalent_to(shardings["w"], 2)
    for path, leaf in otu.leaves_with_paths(state):
        if leaf.ndim == 0:
            assert leaf.sharding.is_fully_replicated, path
        else:
            name = path.rsplit("/", 1)[-1]
            assert leaf.sharding.is_equivalent_to(shardings[name], leaf.ndim), path
    for name in host:
        np.testing.assert_allclose(params[name], single[name], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(optxform.tree_get(state, "d"),
                               optxform.tree_get(single_state, "d"), rtol=1e-5)
    assert float(np.max(np.abs(np.asarray(params["w"]) - host["w"]))) > 1e-6  # it moved


@pytest.mark.parametrize("alias", sorted(OPTIONED))
def test_state_dict_round_trip_resumes_bit_identically(alias, tmp_path):
    params = _mlp_params()
    tx = OPTIONED[alias]()
    mid, state = _run(tx, params, 4)
    saved = optxform.state_dict(state)
    assert any(key.endswith(".d") or key.endswith("/d") for key in saved), sorted(saved)
    loaded = optxform.load_state_dict(tx.init(params), saved)
    optxform.save_state(tmp_path / "opt.ckpt", state)
    from_file = optxform.load_state(tmp_path / "opt.ckpt", tx.init(params))
    straight, straight_state = _run(tx, mid, 4, state)
    for restored in (loaded, from_file):
        resumed, resumed_state = _run(tx, mid, 4, restored)
        for a, b in zip(jax.tree.leaves((resumed, resumed_state)),
                        jax.tree.leaves((straight, straight_state))):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_the_estimate_is_kept_in_float64_under_x64(x64):
    params = {"w": jnp.ones(3, jnp.float64)}
    for alias in REFERENCES:
        state = getattr(optxform, alias)().init(params)
        assert optxform.tree_get(state, "d").dtype == jnp.float64, alias
    state = optxform.prodigy().init({"w": jnp.ones(3, jnp.float32)})
    assert optxform.tree_get(state, "d").dtype == jnp.float64


class _TotalState(NamedTuple):
    count: jax.Array
    total: Any
    start: Any
    steps: jax.Array


def _total_accumulate(x):
    total = x.buffers["total"] + x.g
    return {"total": total}, {"l1": jnp.sum(jnp.abs(total))}


def _total_step(st):
    return ({"factor": st.h["scale"] / st.reduced["l1"]},
            {"steps": st.carried["steps"] + 1.0})


def _total_leaf(x):
    return x.buffers["total"] * x.s["factor"] + 0.0 * (x.p - x.buffers["start"]), dict(x.buffers)


_TOTAL = Rule(name="total", kind="global", state=_TotalState, reads_params=True,
              hyperparameters=(Hyperparameter("scale"),),
              buffers=(Buffer("total", "accumulator"), Buffer("start", from_params=True)),
              scalars=(Scalar("steps", fill="scale", dtype="step"),),
              accumulate=_total_accumulate, per_step=_total_step, leaf=_total_leaf)


def test_the_lifting_runs_a_first_pass_whose_sums_cover_the_tree(x64):
    """The extensions of optxform.rules these rules use, on a toy rule: the updated buffers
    reach ``leaf``, the per-leaf sums are added over the tree (``None`` leaves left out),
    ``from_params`` copies the params, a ``step`` scalar starts from a hyperparameter."""
    tx = lift(_TOTAL, scale=2.0)
    params = {"a": jnp.array([1.0, -2.0]), "b": jnp.array([3.0]), "c": jnp.array([5.0])}
    state = tx.init(params)
    assert state.steps.dtype == jnp.float64 and float(state.steps) == 2.0
    np.testing.assert_array_equal(state.start["b"], [3.0])
    grads = {"a": jnp.array([1.0, -1.0]), "b": jnp.array([2.0]), "c": None}
    updates, state = tx.update(grads, state, params)
    np.testing.assert_allclose(updates["a"], [0.5, -0.5])  # 2 * g / (1 + 1 + 2)
    np.testing.assert_allclose(updates["b"], [1.0])
    assert updates["c"] is None and float(state.total["c"][0]) == 0.0
    np.testing.assert_array_equal(state.total["a"], [1.0, -1.0])
    updates, state = tx.update(grads, state, params)  # totals doubled: the same factor
    np.testing.assert_allclose(updates["a"], [0.5, -0.5])
    assert float(state.steps) == 4.0
