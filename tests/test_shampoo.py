"""Shampoo against pytorch_optimizer.Shampoo (4.1.0); grafting against a numpy oracle;
fallbacks, jit/vmap/inject/resume, sharding.

float64: 1e-8 over 50 steps. float32: within 1e-5 relative plus twice the reference's own
float32-vs-float64 spread, element by element (inverse fourth roots of statistics that
start at ``1e-6 I`` amplify rounding in both implementations alike).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType
from pytorch_optimizer import Shampoo

import optxform
from tests import kronecker_cases as kc
from tests import oracles

STEPS = 50

# The rows that change the code path: the defaults; momentum with coupled decay and
# maximize (the buffer starts at the gradient as given); decoupled fixed decay with roots
# every third step (zero updates before the first) and another matrix_eps; decoupled decay
# scaled by the learning rate. float32 runs on the rows marked True.
ROWS = [
    ({}, True),
    ({"momentum": 0.5, "weight_decay": 0.1, "maximize": True}, True),
    ({"weight_decay": 0.1, "weight_decouple": True, "fixed_decay": True,
      "preconditioning_compute_steps": 3, "matrix_eps": 1e-3}, True),
    ({"weight_decay": 0.1, "weight_decouple": True, "momentum": 0.5}, False),
]


def _split(case: dict) -> tuple[dict, dict]:
    ours = {"learning_rate": 3e-2, **case}
    ref = {("lr" if k == "learning_rate" else k): v for k, v in ours.items()}
    return ours, ref


@pytest.mark.parametrize("case,float32", ROWS, ids=lambda v: str(v) if isinstance(v, dict) else
                         ("f64+f32" if v else "f64"))
def test_matches_reference(case, float32, x64):
    """float64 within 1e-8 over 50 steps; float32 within 1e-5 relative plus twice the
    reference's own float32-vs-float64 spread, element by element."""
    ours, ref = _split(case)
    t64 = kc.reference_trajectory(Shampoo, ref, STEPS, np.float64)
    actual = kc.optxform_trajectory(optxform.shampoo(**ours), STEPS, np.float64)
    oracles.assert_trajectories_close(actual, t64, rtol=1e-8, atol=1e-12)
    if not float32:
        return
    t32 = kc.reference_trajectory(Shampoo, ref, STEPS, np.float32)
    actual = kc.optxform_trajectory(optxform.shampoo(**ours), STEPS, np.float32)
    oracles.assert_trajectories_close(actual, t32, rtol=1e-5, atol=1e-6,
                                      oracle_spread=[{k: 2 * v for k, v in s.items()}
                                                     for s in kc.spread(t32, t64)])


def _numpy_shampoo_with_grafting(kind: str, b2: float, eps: float, lr: float,
                                 momentum: float, steps: int) -> list[dict]:
    """Shampoo (the reference's algorithm) grafted to Adam's or RMSprop's per-param norm,
    written out in numpy from the docstring's math."""
    params = kc.initial(np.float64)
    pre = {k: [1e-6 * np.eye(d) for d in p.shape] for k, p in params.items()}
    nu = {k: np.zeros_like(p) for k, p in params.items()}
    buf = {}
    out = []
    for t in range(1, steps + 1):
        grads = kc.gradient(params, t - 1)
        new = {}
        for k, p in params.items():
            g = grads[k]
            if momentum > 0:
                g = (1 - momentum) * g + momentum * buf.get(k, g)
            x = g
            for axis, d in enumerate(g.shape):
                unfolded = np.moveaxis(g, axis, 0).reshape(d, -1)
                pre[k][axis] = pre[k][axis] + unfolded @ unfolded.T
                w, v = np.linalg.eigh(pre[k][axis])
                root = (v * w ** (-1.0 / (2 * g.ndim))) @ v.T
                x = np.moveaxis(np.tensordot(root, x, axes=([1], [axis])), 0, axis)
            nu[k] = b2 * nu[k] + (1 - b2) * g * g
            second = nu[k] / (1 - b2 ** t) if kind == "adam" else nu[k]
            graft = g / (np.sqrt(second) + eps)
            x = x * np.linalg.norm(graft) / np.linalg.norm(x)
            buf[k] = x
            new[k] = p - lr * x
        params = new
        out.append(params)
    return out


@pytest.mark.parametrize("grafting", ["adam", "rmsprop"])
def test_grafting_matches_the_numpy_oracle_in_float64(grafting, x64):
    expected = _numpy_shampoo_with_grafting(grafting, optxform.transforms.shampoo.GRAFT_B2[
        grafting], 1e-8, 3e-2, 0.5, 30)
    actual = kc.optxform_trajectory(optxform.shampoo(3e-2, momentum=0.5, grafting=grafting),
                                    30, np.float64)
    oracles.assert_trajectories_close(actual, expected, rtol=1e-8, atol=1e-12)


def test_grafted_update_has_the_grafted_norm_and_shampoos_direction():
    params = {"w": jnp.zeros((3, 4))}
    g = {"w": jnp.arange(12.0).reshape(3, 4) - 5.0}
    plain = optxform.scale_by_shampoo()
    grafted = optxform.scale_by_shampoo(grafting="adam", graft_eps=1e-30)
    u, _ = jax.jit(plain.update)(g, plain.init(params), params)
    v, state = jax.jit(grafted.update)(g, grafted.init(params), params)
    # Adam's first direction is sign(g): its norm is sqrt(#nonzero entries).
    np.testing.assert_allclose(jnp.linalg.norm(v["w"]), np.sqrt(11.0), rtol=1e-5)
    np.testing.assert_allclose(v["w"] / jnp.linalg.norm(v["w"]),
                               u["w"] / jnp.linalg.norm(u["w"]), rtol=1e-4, atol=1e-6)
    assert state.graft_nu["w"].shape == (3, 4)
    assert plain.init(params).graft_nu is None
    with pytest.raises(ValueError, match="grafting"):
        optxform.shampoo(grafting="adagrad")


def test_failed_root_keeps_the_last_one_and_params_stay_finite():
    """``matrix_eps=0`` and a zero gradient: a singular statistic, whose inverse root is
    infinite; the last root (zeros at first) is kept, so the update is zero, not NaN."""
    params = {"w": jnp.ones((2, 3)), "b": jnp.ones((3,))}
    tx = optxform.shampoo(0.1, matrix_eps=0.0)
    state = tx.init(params)
    zero = jax.tree.map(jnp.zeros_like, params)
    update = jax.jit(tx.update)
    u, state = update(zero, state, params)
    for leaf in jax.tree.leaves(u):
        np.testing.assert_array_equal(leaf, 0.0)
    assert bool(jnp.all(jnp.isfinite(state["shampoo"].inverse_roots["w"])))
    g = {"w": jnp.eye(2, 3), "b": jnp.array([1.0, 2.0, 3.0])}
    u, state = update(g, state, params)  # singular still (rank 1 of 3): keeps zeros
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(u))


def test_jit_vmap_inject_state_dict_and_resume(tmp_path):
    params = {k: jnp.asarray(v) for k, v in kc.initial().items()}
    tx = optxform.inject_hyperparams(optxform.shampoo)(learning_rate=0.02, momentum=0.5,
                                                        grafting="rmsprop")
    state = optxform.tree_set(tx.init(params), learning_rate=0.01)
    step = kc.sine_step(tx)
    params, state, restored = kc.assert_resume_is_bit_identical(
        step, tx, params, state, tmp_path / "shampoo.state", 3, 6)
    keys = optxform.state_dict(state)
    assert any("shampoo.inverse_roots/m" in k for k in keys), sorted(keys)
    other = optxform.tree_set(restored, momentum=0.0)
    assert not np.allclose(step(params, other, 3)[0]["m"], step(params, restored, 3)[0]["m"])
    two = {"x": jnp.stack([params["m"], 2 * params["m"]]),
           "y": jnp.stack([params["t"], params["t"] - 1])}
    kc.assert_vmap_equals_single_runs(optxform.shampoo(0.02), two, rtol=1e-4)


@pytest.mark.parametrize("kind", [AxisType.Explicit, AxisType.Auto], ids=["explicit", "auto"])
def test_sharded_shampoo_keeps_buffer_layouts_and_matches_one_device(kind):
    """Momentum and grafting buffers sharded like their param, statistics and roots
    replicated; the roots multiply whole axes, so a sharded param is gathered."""
    from examples import sharded_train

    params, shardings, sharded = kc.sharded_matrices(kind)
    tx = optxform.shampoo(0.02, momentum=0.5, grafting="adam")
    state = optxform.sharded_init(tx, sharded)
    assert state["shampoo"].momentum_buffer["w"].sharding.is_equivalent_to(shardings["w"], 2)
    step = jax.jit(lambda p, s, g: tx.update(g, s, p))
    grads = jax.tree.map(jnp.sin, sharded)
    u, new_state = step(sharded, state, grads)
    assert new_state["shampoo"].graft_nu["v"].sharding.is_equivalent_to(shardings["v"], 2)
    assert new_state["shampoo"].momentum_buffer["w"].sharding.is_equivalent_to(shardings["w"], 2)
    want, _ = step(params, tx.init(params), jax.tree.map(jnp.sin, params))  # one device
    for n in params:
        np.testing.assert_allclose(u[n], want[n], rtol=1e-4, atol=1e-6)
    counts = sharded_train.compiled_collectives(step, sharded, state, grads)
    assert counts["all-gather"] + counts["all-reduce"] > 0, counts
