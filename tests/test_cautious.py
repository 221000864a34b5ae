"""cautious(tx), cautious_adamw, wsd_schedule, and optax's options on the Adam family.

The parity rows for cautious_adamw (against tests/reference_cautious.py, an independent
torch implementation written from the algorithm since no package carries C-Optim's
``c_adamw``), cautious Lion (against pytorch-optimizer's ``Lion(cautious=True)``) and
adam/adamw with ``eps_root``/``nesterov`` (against optax) are in tests/registry.py; this
file checks the mask itself, packing, injection, the schedule against pytorch-optimizer's
``get_wsd_schedule`` and the float64 agreement with optax.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optxform
from tests import oracles


# --- the mask ----------------------------------------------------------------------------


def _emit(tx, grads):
    return oracles.emitted_updates(tx, grads, jax.tree.map(jnp.zeros_like, grads[0]))


def _fixed(direction: dict) -> optxform.GradientTransformation:
    """A transform that emits ``direction`` whatever it receives."""

    def update(updates, state, params=None):
        return jax.tree.map(jnp.asarray, direction), state

    return optxform.GradientTransformation(lambda params: optxform.EmptyState(), update)


@pytest.mark.parametrize("rescale", ["count", "clamped_mean"])
def test_mask_keeps_agreeing_elements_and_rescales_per_leaf(rescale):
    direction = {"a": np.array([1.0, -2.0, 3.0, 4.0], np.float32),
                 "b": np.array([[0.5, 0.5], [0.5, 0.5]], np.float32)}
    grads = {"a": np.array([1.0, 1.0, -1.0, 1.0], np.float32),
             "b": np.array([[1.0, 1.0], [1.0, 1.0]], np.float32)}
    (out,) = _emit(optxform.cautious(_fixed(direction), rescale=rescale), [grads])
    # leaf "a": elements 0 and 3 agree (2 of 4); leaf "b": all 4 agree.
    if rescale == "count":
        scale_a, scale_b = 4 / 3, 4 / 5
    else:
        scale_a, scale_b = 2.0, 1.0
    np.testing.assert_allclose(out["a"], [1.0 * scale_a, 0.0, 0.0, 4.0 * scale_a], rtol=1e-6)
    np.testing.assert_allclose(out["b"], 0.5 * scale_b * np.ones((2, 2)), rtol=1e-6)


def test_clamped_mean_floors_at_one_in_a_thousand():
    n = 3000
    direction = -np.ones(n, np.float32)
    direction[0] = 2.0  # 1 of 3000 agrees: the mean 3.3e-4 is clamped to 1e-3
    tx = optxform.cautious(_fixed({"w": direction}), rescale="clamped_mean")
    (out,) = _emit(tx, [{"w": np.ones(n, np.float32)}])
    assert float(out["w"][0]) == pytest.approx(2000.0, rel=1e-6)
    assert not np.any(out["w"][1:])


def test_state_is_the_inner_state_and_none_leaves_pass():
    inner = optxform.scale_by_adam()
    tx = optxform.cautious(inner)
    params = {"w": jnp.ones(3), "frozen": jnp.ones(2)}
    state = tx.init(params)
    assert jax.tree.structure(state) == jax.tree.structure(inner.init(params))
    out, new_state = tx.update({"w": jnp.array([1.0, -2.0, 3.0]), "frozen": None}, state,
                               params)
    assert out["frozen"] is None
    ref, ref_state = inner.update({"w": jnp.array([1.0, -2.0, 3.0]), "frozen": None}, state,
                                  params)
    # all agree on the first step: the factor is n / (n + 1)
    np.testing.assert_allclose(out["w"], ref["w"] * 3 / 4, rtol=1e-6)
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.all(a == b)), new_state, ref_state))


def test_complex_leaves_mask_real_and_imaginary_parts():
    tx = optxform.cautious(optxform.scale(1.0))
    g = {"z": jnp.array([1.0 + 2.0j, -1.0 + 0.0j])}
    out, _ = tx.update(g, tx.init(g))
    # real view [1, 2, -1, 0]: three agree (the zero does not), factor 4 / 4
    np.testing.assert_allclose(np.asarray(out["z"]), [1.0 + 2.0j, -1.0 + 0.0j])


def test_bad_rescale_is_refused_by_name():
    with pytest.raises(ValueError, match="rescale"):
        optxform.cautious(optxform.scale_by_adam(), rescale="mean")


def test_cautious_adamw_differs_from_its_unmasked_direction():
    """The mask acts: once the momentum and the gradient disagree somewhere, the step
    differs from the same chain without the wrapper."""
    grads = [{"w": jnp.array([1.0, 1.0, 1.0])}, {"w": jnp.array([-0.5, 1.0, 1.0])}]
    masked = _emit(optxform.cautious_adamw(0.1), grads)
    plain = _emit(optxform.chain(optxform.scale_by_transformers_adam(),
                                 optxform.scale_by_learning_rate(0.1)), grads)
    np.testing.assert_allclose(masked[0]["w"], plain[0]["w"], rtol=1e-6)
    # step 2: element 0's momentum 0.9 * 0.1 - 0.1 * 0.5 = 0.04 is still positive while
    # its gradient is negative: it is dropped and the other two are scaled by 3/2.
    assert float(masked[1]["w"][0]) == 0.0
    np.testing.assert_allclose(masked[1]["w"][1:], plain[1]["w"][1:] * 1.5, rtol=1e-6)


# --- packing, injection ------------------------------------------------------------------


def test_packed_keeps_the_mean_per_leaf():
    """Packing would pool the leaves' masks into one mean; the wrapper declares a per-leaf
    reduction, so packed(cautious_adamw()) runs per leaf and equals the plain alias."""
    from optxform.rules import kinds_of

    assert "matrix" in kinds_of(optxform.cautious_adamw())
    tx = optxform.cautious_adamw(1e-2, weight_decay=0.1)
    plain = oracles.optxform_trajectory(tx, "mlp", 15)
    packed = oracles.optxform_trajectory(optxform.packed(tx), "mlp", 15)
    for a, b in zip(plain, packed):
        for name in a:
            np.testing.assert_array_equal(a[name], b[name])


def test_pooled_mean_would_differ():
    """What packing would change: one mask over two leaves is not two masks."""
    direction = {"a": np.array([1.0, -1.0], np.float32), "b": np.ones(4, np.float32)}
    grads = {"a": np.ones(2, np.float32), "b": np.ones(4, np.float32)}
    (per_leaf,) = _emit(optxform.cautious(_fixed(direction)), [grads])
    pooled_direction = {"all": np.concatenate([direction["a"], direction["b"]])}
    (pooled,) = _emit(optxform.cautious(_fixed(pooled_direction)),
                      [{"all": np.ones(6, np.float32)}])
    np.testing.assert_allclose(per_leaf["b"], 4 / 5 * np.ones(4), rtol=1e-6)
    np.testing.assert_allclose(pooled["all"][2:], 6 / 6 * np.ones(4), rtol=1e-6)


def test_inject_hyperparams_cautious_adamw_equals_the_alias():
    tx = optxform.cautious_adamw(1e-2, weight_decay=0.1)
    injected = optxform.inject_hyperparams(optxform.cautious_adamw)(
        learning_rate=1e-2, weight_decay=0.1)
    plain = oracles.optxform_trajectory(tx, "mlp", 10)
    inj = oracles.optxform_trajectory(injected, "mlp", 10)
    for a, b in zip(plain, inj):
        for name in a:
            np.testing.assert_allclose(b[name], a[name], rtol=1e-6, atol=1e-7)


# --- wsd_schedule ------------------------------------------------------------------------


def _reference_wsd(peak, W, S, D, steps, **kwargs):
    """pytorch-optimizer's get_wsd_schedule driving a torch optimizer's lr, per step."""
    import torch
    from pytorch_optimizer.lr_scheduler.wsd import get_wsd_schedule

    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=peak)
    scheduler = get_wsd_schedule(opt, W, S, D, **kwargs)
    values = []
    for _ in range(steps):
        values.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return np.asarray(values)


WSD_CASES = [
    (W, S, D, decay, alpha, cycles)
    for W, S, D in ((10, 20, 30), (0, 5, 7), (3, 0, 1), (5, 5, 0), (7, 11, 1000))
    for decay in ("1-sqrt", "linear", "1-square", "cosine")
    for alpha in (0.0, 0.1)
    for cycles in ((0.5, 1.25, 2.0, 0.3) if decay == "cosine" else (0.5,))
]


@pytest.mark.parametrize("W,S,D,decay,alpha,cycles", WSD_CASES)
def test_wsd_matches_pytorch_optimizer_at_every_step(W, S, D, decay, alpha, cycles):
    steps = W + S + D + 5
    expected = _reference_wsd(0.3, W, S, D, steps, min_lr_ratio=alpha, num_cycles=cycles,
                              cooldown_type=decay)
    schedule = optxform.wsd_schedule(0.3, W, S, D, alpha=alpha, num_cycles=cycles,
                                     decay_type=decay)
    actual = np.asarray(jax.jit(jax.vmap(schedule))(jnp.arange(steps, dtype=jnp.int32)),
                        np.float64)
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=0)


def test_wsd_as_a_learning_rate_matches_torch_with_the_scheduler():
    """adam(learning_rate=wsd_schedule(...)) follows torch's Adam stepped by the scheduler."""
    import torch
    from pytorch_optimizer.lr_scheduler.wsd import get_wsd_schedule

    W, S, D, steps = 5, 10, 20, 40
    make, _ = oracles.PROBLEMS["mlp"]
    init = make()
    names = sorted(init)
    tparams = {n: torch.tensor(init[n], requires_grad=True) for n in names}
    opt = torch.optim.Adam([tparams[n] for n in names], lr=0.01)
    scheduler = get_wsd_schedule(opt, W, S, D, min_lr_ratio=0.1, cooldown_type="cosine")
    grad = oracles.grad_fn("mlp")
    expected = []
    for t in range(steps):
        g = grad({n: jnp.asarray(tparams[n].detach().numpy()) for n in names},
                 jnp.asarray(t, jnp.int32))
        for n in names:
            tparams[n].grad = torch.from_numpy(np.array(g[n]))
        opt.step()
        scheduler.step()
        expected.append({n: tparams[n].detach().numpy().copy() for n in names})
    schedule = optxform.wsd_schedule(0.01, W, S, D, alpha=0.1, decay_type="cosine")
    actual = oracles.optxform_trajectory(optxform.adam(schedule), "mlp", steps)
    oracles.assert_trajectories_close(actual, expected)


def test_wsd_under_inject_hyperparams_holds_the_next_value():
    schedule = optxform.wsd_schedule(1.0, 2, 1, 4, decay_type="linear", alpha=0.25)
    tx = optxform.inject_hyperparams(optxform.sgd)(learning_rate=schedule)
    params = {"w": jnp.ones(2)}
    state = tx.init(params)
    step = jax.jit(tx.update)
    seen = []
    for _ in range(8):
        seen.append(float(optxform.tree_get(state, "learning_rate")))
        updates, state = step({"w": jnp.ones(2)}, state, params)
        # sgd without momentum: the update is -lr * g, with the lr of this step
        assert float(updates["w"][0]) == pytest.approx(-seen[-1], rel=1e-6)
    assert seen == pytest.approx([0.0, 0.5, 1.0, 1.0, 0.75, 0.5, 0.25, 0.25])


@pytest.mark.parametrize("kwargs,match", [
    ({"decay_type": "exp"}, "decay_type"),
    ({"warmup_steps": -1}, "warmup_steps"),
    ({"decay_steps": 2.5}, "decay_steps"),
    ({"alpha": -0.1}, "alpha"),
    ({"num_cycles": -1.0}, "num_cycles"),
])
def test_wsd_refuses_bad_arguments_by_name(kwargs, match):
    args = dict(peak_value=1.0, warmup_steps=1, stable_steps=1, decay_steps=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        optxform.wsd_schedule(**args)


# --- optax's options on adam / adamw -----------------------------------------------------


@pytest.mark.parametrize("alias,kwargs", [
    ("adam", {"eps_root": 1e-8}),
    ("adam", {"nesterov": True}),
    ("adamw", {"weight_decay": 0.05, "eps_root": 1e-6, "nesterov": True}),
])
def test_adam_options_equal_optax_in_float64(alias, kwargs, x64):
    """With optax's default b2 = 0.999 the float32 trajectories are ill-conditioned (see
    tests/registry.py); in float64 the two agree to 1e-10."""
    import optax

    kwargs = dict(kwargs, learning_rate=0.01)
    make, _ = oracles.PROBLEMS["mlp"]
    params = make(dtype=np.float64)
    with jax.numpy_dtype_promotion("standard"):
        expected = oracles.optxform_trajectory(getattr(optax, alias)(**kwargs), "mlp", 100,
                                               params=params)
    actual = oracles.optxform_trajectory(getattr(optxform, alias)(**kwargs), "mlp", 100,
                                         params=params)
    assert actual[-1]["w1"].dtype == np.float64
    oracles.assert_trajectories_close(actual, expected, rtol=1e-10, atol=1e-12)


def test_adam_defaults_keep_the_torch_chain():
    """eps_root=0 and nesterov=False build the same transform state and updates as before."""
    grads = [{"w": jnp.array([0.3, -2.0])}, {"w": jnp.array([-0.1, 1.0])}]
    default = _emit(optxform.adam(0.1), grads)
    explicit = _emit(optxform.adam(0.1, eps_root=0.0, nesterov=False), grads)
    nesterov = _emit(optxform.adam(0.1, nesterov=True), grads)
    for a, b in zip(default, explicit):
        np.testing.assert_array_equal(a["w"], b["w"])
    assert not np.allclose(default[1]["w"], nesterov[1]["w"])


def test_nesterov_must_be_a_bool():
    with pytest.raises(ValueError, match="nesterov"):
        optxform.adam(nesterov=1)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_accumulator_dtype_equals_optax(nesterov):
    kwargs = {"learning_rate": 0.01, "momentum": 0.9, "nesterov": nesterov}
    expected = oracles.optax_trajectory("sgd", dict(kwargs, accumulator_dtype=jnp.float32),
                                        "mlp", 50)
    tx = optxform.sgd(0.01, momentum=0.9, nesterov=nesterov, accumulator_dtype=jnp.float32)
    oracles.assert_trajectories_close(oracles.optxform_trajectory(tx, "mlp", 50), expected)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_bfloat16_accumulator_rounds_only_the_stored_buffer(nesterov):
    """optax's ``g + decay * t`` with a bfloat16 ``t`` also rounds the product to bfloat16;
    optxform rounds only the stored buffer, so it stays closer (here 3.5x) to the run with a
    float32 buffer. The two are the same method: they agree to bfloat16 rounding."""
    kwargs = {"learning_rate": 0.01, "momentum": 0.9, "nesterov": nesterov}
    reference = oracles.optxform_trajectory(optxform.sgd(**kwargs), "mlp", 50)
    theirs = oracles.optax_trajectory("sgd", dict(kwargs, accumulator_dtype=jnp.bfloat16),
                                      "mlp", 50)
    tx = optxform.sgd(**kwargs, accumulator_dtype=jnp.bfloat16)
    ours = oracles.optxform_trajectory(tx, "mlp", 50)

    def distance(a, b):
        return max(float(np.max(np.abs(x[n] - y[n]))) for x, y in zip(a, b) for n in x)

    assert distance(ours, reference) < 0.5 * distance(theirs, reference)
    assert distance(ours, theirs) < 1e-2
    state = tx.init({"w": jnp.ones(2)})
    assert {leaf.dtype for leaf in jax.tree.leaves(state)
            if jnp.issubdtype(leaf.dtype, jnp.floating)} == {jnp.dtype(jnp.bfloat16)}
