"""reduce_on_plateau against torch's ReduceLROnPlateau on scripted loss sequences.

torch runs ``optimizer.step(); scheduler.step(loss)`` with base lr 1 (so its lr *is* the
scale and ``min_lr`` is ``min_scale``); optxform runs ``update(ones, state, loss=loss)``
inside one ``jit(lax.scan)``, and the scale applied at each step must equal torch's lr for
that step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optxform as ox


def torch_lrs(losses, **kwargs):
    import torch

    param = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([param], lr=1.0)
    min_scale = kwargs.pop("min_scale", 0.0)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, min_lr=min_scale, **kwargs)
    lrs = []
    for loss in losses:
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step(float(loss))
    return np.asarray(lrs)


def optxform_scales(losses, **kwargs):
    tx = ox.reduce_on_plateau(**kwargs)
    params = {"w": jnp.zeros(2)}

    @jax.jit
    def run(losses):
        def step(state, loss):
            updates, state = tx.update({"w": jnp.ones(2)}, state, params, loss=loss)
            return state, updates["w"][0]
        return jax.lax.scan(step, tx.init(params), losses)

    state, scales = run(jnp.asarray(losses, jnp.float32))
    return np.asarray(scales, np.float64), state


def _script(seed=0):
    """Plateaus, improvements and sub-threshold gains (kept clear of the exact threshold,
    where float32 and torch's float64 comparisons may legitimately differ)."""
    rng = np.random.default_rng(seed)
    pieces = [np.linspace(10, 5, 12), np.full(14, 5.0), [4.9999, 4.9998, 4.9997, 4.9996, 4.999],
              np.full(9, 4.9), 4.9 + 0.3 * rng.random(25), np.linspace(4.5, 2.0, 20),
              np.full(30, 2.0) + 0.01 * rng.random(30), [1.0, 1.0, 0.99995, 1.0],
              np.full(40, 0.5)]
    return np.concatenate([np.asarray(p, np.float64) for p in pieces]).astype(np.float32)


SETTINGS = [
    dict(),
    dict(mode="min", patience=3, factor=0.5),
    dict(mode="min", patience=2, factor=0.5, threshold=0.05, threshold_mode="abs"),
    dict(mode="min", patience=1, factor=0.3, cooldown=4),
    dict(mode="min", patience=0, factor=0.5, min_scale=0.01),
    dict(mode="min", patience=2, factor=0.7, threshold=1e-2, cooldown=2, min_scale=0.05),
]


@pytest.mark.parametrize("kwargs", SETTINGS, ids=lambda kw: ",".join(
    f"{k}={v}" for k, v in kw.items()) or "defaults")
def test_matches_torch_min_mode(kwargs):
    losses = _script()
    expected = torch_lrs(losses, **dict(kwargs))
    actual, _ = optxform_scales(losses, **kwargs)
    np.testing.assert_allclose(actual, expected, rtol=1e-6)
    assert expected[-1] < 1.0  # the script does trigger reductions


@pytest.mark.parametrize("threshold_mode", ["rel", "abs"])
def test_matches_torch_max_mode(threshold_mode):
    accuracies = (1.0 - _script(1) / 12.0).astype(np.float32)  # rises, then plateaus
    kwargs = dict(mode="max", patience=2, factor=0.5, threshold=1e-3,
                  threshold_mode=threshold_mode, cooldown=1)
    expected = torch_lrs(accuracies, **dict(kwargs))
    actual, _ = optxform_scales(accuracies, **kwargs)
    np.testing.assert_allclose(actual, expected, rtol=1e-6)
    assert expected[-1] < 1.0


def test_nan_loss_counts_as_bad_and_state_keeps_dtypes():
    losses = np.asarray([3.0, np.nan, np.nan, np.nan, 2.0, np.nan], np.float32)
    expected = torch_lrs(losses, patience=1, factor=0.5)
    actual, state = optxform_scales(losses, patience=1, factor=0.5)
    np.testing.assert_allclose(actual, expected)
    assert state.best.dtype == jnp.float32 and state.scale.dtype == jnp.float32
    assert state.num_bad_epochs.dtype == jnp.int32 and state.cooldown_counter.dtype == jnp.int32
    assert float(state.best) == 2.0


def test_scales_updates_and_works_in_a_chain():
    tx = ox.chain(ox.reduce_on_plateau(patience=0, factor=0.5), ox.scale_by_learning_rate(0.1))
    params = {"w": jnp.ones(3, jnp.bfloat16)}
    state = tx.init(params)
    grads = {"w": jnp.ones(3, jnp.bfloat16)}
    for loss in (1.0, 1.0, 1.0):
        updates, state = tx.update(grads, state, params, loss=jnp.asarray(loss))
    assert updates["w"].dtype == jnp.bfloat16
    # Steps use scales 1, 1, 0.5 (the reduction after the second loss applies to step 3).
    np.testing.assert_array_equal(updates["w"], jnp.full(3, -0.05, jnp.bfloat16))
    assert float(ox.tree_get(state, "scale")) == 0.25


def test_missing_loss_and_invalid_arguments_raise():
    tx = ox.reduce_on_plateau()
    state = tx.init({"w": jnp.ones(2)})
    with pytest.raises(ValueError, match="loss"):
        tx.update({"w": jnp.ones(2)}, state)
    with pytest.raises(ValueError, match="scalar"):
        tx.update({"w": jnp.ones(2)}, state, loss=jnp.ones(2))
    for kwargs, name in [({"factor": 1.0}, "factor"), ({"factor": -0.1}, "factor"),
                         ({"patience": -1}, "patience"), ({"mode": "minimum"}, "mode"),
                         ({"threshold_mode": "relative"}, "threshold_mode"),
                         ({"cooldown": -2}, "cooldown"), ({"min_scale": -1.0}, "min_scale"),
                         ({"threshold": -1e-4}, "threshold")]:
        with pytest.raises(ValueError, match=name):
            ox.reduce_on_plateau(**kwargs)
