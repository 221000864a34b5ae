"""Momentum, RMS/Adagrad/Adadelta, sign, clipping, constraint blocks; lookahead; ASGD's average.

Each block is checked against its optax namesake over a trajectory of fixed random
gradients (not functions of the params, so nothing is chaotic and tolerances are tight),
or against a small numpy/torch reference where optax has no equivalent.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

import optxform
from optxform.core.counters import INT32_MAX
from tests import oracles
from tests.oracles import assert_trajectories_close as assert_all_close

SHAPES = {"a": (4, 3), "b": (5,), "c": (2, 3, 2)}


def _tree(seed, scale=1.0, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    return {n: np.asarray(scale * rng.standard_normal(s), np.float32) for n, s in shapes.items()}


def _grads(steps, seed=1):
    return [_tree(seed + t) for t in range(steps)]


def _directions(tx, grads, params=None):
    """The updates ``tx`` emits for each gradient (params ``_tree(0)`` unless given)."""
    return oracles.emitted_updates(tx, grads, params if params is not None else _tree(0))


# --- momentum -------------------------------------------------------------------------

@pytest.mark.parametrize("nesterov", [False, True])
def test_trace_without_dampening_equals_optax_trace(nesterov):
    grads = _grads(12)
    assert_all_close(_directions(optxform.trace(0.9, nesterov=nesterov), grads),
                     _directions(optax.trace(0.9, nesterov=nesterov), grads))  # 1-ulp: fma or not


def test_trace_starts_at_the_first_gradient_and_dampens_later_ones():
    grads = _grads(4)
    out = _directions(optxform.trace(0.8, dampening=0.25), grads)
    buf = grads[0]["a"]
    np.testing.assert_allclose(out[0]["a"], buf)  # not (1 - dampening) * g
    for t in range(1, 4):
        buf = 0.8 * buf + 0.75 * grads[t]["a"]
        np.testing.assert_allclose(out[t]["a"], buf, rtol=1e-6)


def test_trace_with_zero_decay_passes_updates_through_whatever_the_dampening():
    grads = _grads(3)
    for decay in (0.0, jnp.asarray(0.0)):
        out = _directions(optxform.trace(decay, dampening=0.5), grads)
        assert_all_close(out, grads, rtol=0, atol=0)


# --- rms family -----------------------------------------------------------------------

def test_scale_by_rms_with_eps_in_sqrt_equals_optax_scale_by_rms():
    grads = _grads(12)
    assert_all_close(_directions(optxform.scale_by_rms(decay=0.9, eps_in_sqrt=True), grads),
                     _directions(optax.scale_by_rms(), grads), rtol=1e-5)
    assert_all_close(
        _directions(optxform.scale_by_rms(0.9, 1e-3, eps_in_sqrt=True, initial_scale=0.5),
                    grads),
        _directions(optax.scale_by_rms(0.9, 1e-3, initial_scale=0.5), grads), rtol=1e-5)


def test_centered_scale_by_rms_with_eps_in_sqrt_equals_optax_scale_by_stddev():
    grads = _grads(12)
    assert_all_close(
        _directions(optxform.scale_by_rms(decay=0.9, eps_in_sqrt=True, centered=True), grads),
        _directions(optax.scale_by_stddev(), grads), rtol=1e-4)


def test_scale_by_rms_default_is_torch_convention_eps_outside_the_root():
    grads = _grads(6)
    out = _directions(optxform.scale_by_rms(decay=0.5, eps=0.1), grads)
    nu = np.zeros_like(grads[0]["b"])
    for t, g in enumerate(grads):
        nu = 0.5 * nu + 0.5 * g["b"] ** 2
        np.testing.assert_allclose(out[t]["b"], g["b"] / (np.sqrt(nu) + 0.1), rtol=1e-6)


def test_scale_by_adagrad_and_adadelta_follow_their_formulas():
    grads = _grads(6)
    ada = _directions(optxform.scale_by_adagrad(initial_accumulator_value=0.2, eps=0.01),
                      grads)
    delta = _directions(optxform.scale_by_adadelta(rho=0.8, eps=1e-3), grads)
    ref_delta = _directions(optax.scale_by_adadelta(rho=0.8, eps=1e-3), grads)
    s = np.full_like(grads[0]["a"], 0.2)
    for t, g in enumerate(grads):
        s = s + g["a"] ** 2
        np.testing.assert_allclose(ada[t]["a"], g["a"] / (np.sqrt(s) + 0.01), rtol=1e-6)
    assert_all_close(delta, ref_delta, rtol=1e-5)


def test_rms_accumulators_are_float32_for_low_precision_params():
    params = {"w": jnp.ones(3, jnp.float16)}
    for tx in (optxform.scale_by_rms(centered=True), optxform.scale_by_adagrad(),
               optxform.scale_by_adadelta()):
        state = tx.init(params)
        assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(state))
        updates, _ = tx.update({"w": jnp.zeros(3, jnp.float16)}, state, params)
        assert updates["w"].dtype == jnp.float16
        assert bool(jnp.all(jnp.isfinite(updates["w"])))


# --- sign family ----------------------------------------------------------------------

def test_scale_by_lion_equals_optax_scale_by_lion():
    grads = _grads(12)
    assert_all_close(_directions(optxform.scale_by_lion(0.8, 0.95), grads),
                     _directions(optax.scale_by_lion(0.8, 0.95), grads), rtol=0, atol=0)


def test_scale_by_rprop_grows_shrinks_clips_and_skips_after_a_sign_change():
    tx = optxform.scale_by_rprop(0.1, eta_minus=0.5, eta_plus=2.0, min_step_size=0.2,
                                 max_step_size=0.3)
    signs = [1.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0]
    out = _directions(tx, [{"w": np.asarray([s], np.float32)} for s in signs],
                      params={"w": np.zeros(1, np.float32)})
    got = [float(u["w"][0]) for u in out]
    # torch clamps every step, the first too: 0.1 -> 0.2; then x2 capped at 0.3; the sign
    # change halves it (0.15 -> clamped to 0.2) and skips the move; the next step neither
    # grows nor shrinks it (its previous gradient was zeroed); then it grows again.
    np.testing.assert_allclose(got, [0.2, 0.3, 0.3, 0.3, 0.0, -0.2, -0.3], rtol=1e-6)


# --- clipping and constraints -----------------------------------------------------------

@pytest.mark.parametrize("make, ref", [
    (lambda: optxform.clip(0.5), lambda: optax.clip(0.5)),
    (lambda: optxform.clip_by_global_norm(2.0), lambda: optax.clip_by_global_norm(2.0)),
    (lambda: optxform.clip_by_global_norm(100.0), lambda: optax.clip_by_global_norm(100.0)),
    (lambda: optxform.clip_by_block_rms(0.7), lambda: optax.clip_by_block_rms(0.7)),
], ids=["clip", "global_norm_active", "global_norm_inactive", "block_rms"])
def test_clipping_equals_optax(make, ref):
    grads = _grads(3)
    assert_all_close(_directions(make(), grads), _directions(ref(), grads), rtol=1e-6)


def test_clipping_bounds_hold():
    g = jax.tree.map(jnp.asarray, _tree(3, scale=5.0))
    clipped, _ = optxform.clip_by_global_norm(1.5).update(g, None)
    np.testing.assert_allclose(optxform.tree.global_norm(clipped), 1.5, rtol=1e-6)
    small = jax.tree.map(lambda x: 0.01 * x, g)
    unchanged, _ = optxform.clip_by_global_norm(1.5).update(small, None)
    assert_all_close([unchanged], [small], rtol=0, atol=0)
    blocks, _ = optxform.clip_by_block_rms(0.5).update(g, None)
    for leaf in jax.tree.leaves(blocks):
        assert float(jnp.sqrt(jnp.mean(leaf ** 2))) <= 0.5 * (1 + 1e-6)
    elementwise, _ = optxform.clip(0.2).update(g, None)
    assert float(optxform.tree.max_abs(elementwise)) == pytest.approx(0.2)


def test_zero_nans_matches_optax_and_records_which_leaves_had_nans():
    g = {"a": jnp.asarray([1.0, jnp.nan, jnp.inf]), "b": jnp.ones(2)}
    ours, state = optxform.zero_nans().update(g, optxform.zero_nans().init(g))
    theirs, ref_state = optax.zero_nans().update(g, optax.zero_nans().init(g))
    np.testing.assert_array_equal(ours["a"], theirs["a"])
    np.testing.assert_array_equal(ours["a"], [1.0, 0.0, np.inf])
    assert bool(state.found_nan["a"]) and not bool(state.found_nan["b"])
    assert jax.tree.map(bool, state.found_nan) == jax.tree.map(bool, ref_state.found_nan)


def test_keep_params_nonnegative_equals_optax():
    params = {"w": jnp.asarray([1.0, 0.5, -0.2, 0.0])}
    updates = {"w": jnp.asarray([-2.0, 0.1, 0.1, -0.3])}
    tx, ref = optxform.keep_params_nonnegative(), optax.keep_params_nonnegative()
    ours, _ = tx.update(updates, tx.init(params), params)
    theirs, _ = ref.update(updates, ref.init(params), params)
    np.testing.assert_array_equal(ours["w"], theirs["w"])
    new = optxform.apply_updates(params, ours)
    np.testing.assert_allclose(new["w"], [0.0, 0.6, 0.0, 0.0])
    with pytest.raises(ValueError, match="params"):
        tx.update(updates, tx.init(params))


# --- lookahead ------------------------------------------------------------------------

def _lookahead_reference(params, grads, lr, momentum, k, alpha):
    """The paper's loop with an SGD-momentum inner optimizer, in numpy."""
    fast = {n: p.astype(np.float64) for n, p in params.items()}
    slow = {n: p.copy() for n, p in fast.items()}
    buf = None
    out = []
    for t, g in enumerate(grads, start=1):
        buf = g if buf is None else {n: momentum * buf[n] + g[n] for n in g}
        fast = {n: fast[n] - lr * buf[n] for n in fast}
        if t % k == 0:
            slow = {n: slow[n] + alpha * (fast[n] - slow[n]) for n in slow}
            fast = {n: s.copy() for n, s in slow.items()}
        out.append(fast)
    return out


def test_lookahead_matches_the_papers_loop():
    params, grads = _tree(0), _grads(11)
    tx = optxform.lookahead(optxform.sgd(0.1, momentum=0.5), sync_period=3, alpha=0.4)
    step = jax.jit(lambda p, s, g: (lambda u, s: (optxform.apply_updates(p, u), s))(
        *tx.update(g, s, p)))
    p = jax.tree.map(jnp.asarray, params)
    state = tx.init(p)
    expected = _lookahead_reference(params, grads, 0.1, 0.5, 3, 0.4)
    for t, g in enumerate(grads):
        p, state = step(p, state, jax.tree.map(jnp.asarray, g))
        for n in params:
            np.testing.assert_allclose(p[n], expected[t][n], rtol=1e-5, atol=1e-6,
                                       err_msg=f"{n} at step {t + 1}")
    # After a sync (step 9) the params are the slow weights; two steps later they are not.
    assert int(state.period_step) == 2
    assert not np.allclose(p["a"], state.slow["a"])


def test_lookahead_keeps_its_rhythm_after_the_step_counters_saturate():
    params = {"w": jnp.zeros(2)}
    tx = optxform.lookahead(optxform.sgd(1.0), sync_period=2, alpha=0.5)
    state = tx.init(params)
    # Saturate the inner learning-rate counter, as after 2**31 steps.
    inner = optxform.tree_set(state.inner_state, count=jnp.asarray(INT32_MAX, jnp.int32))
    state = state._replace(inner_state=inner)
    update = jax.jit(tx.update)
    history = []
    for _ in range(6):
        u, state = update({"w": -jnp.ones(2)}, state, params)
        params = optxform.apply_updates(params, u)
        history.append(float(params["w"][0]))
    # fast +1 each step; every 2nd step slow moves halfway and fast is reset to it.
    np.testing.assert_allclose(history, [1.0, 1.0, 2.0, 2.0, 3.0, 3.0])
    assert int(state.period_step) == 0


def test_lookahead_validates_its_arguments():
    with pytest.raises(ValueError, match="sync_period"):
        optxform.lookahead(optxform.sgd(0.1), sync_period=0)
    with pytest.raises(ValueError, match="alpha"):
        optxform.lookahead(optxform.sgd(0.1), alpha=1.5)


# --- ASGD -----------------------------------------------------------------------------

@pytest.mark.parametrize("t0", [4.0, 1e6])
def test_asgd_average_matches_torch_ax(t0):
    params, grads = _tree(0), _grads(15)
    names = sorted(params)
    tparams = [torch.tensor(params[n], requires_grad=True) for n in names]
    opt = torch.optim.ASGD(tparams, lr=0.05, lambd=1e-2, t0=t0, weight_decay=0.01)
    tx = optxform.asgd(0.05, lambd=1e-2, t0=t0, weight_decay=0.01)
    step = jax.jit(lambda p, s, g: (lambda u, s: (optxform.apply_updates(p, u), s))(
        *tx.update(g, s, p)))
    p = jax.tree.map(jnp.asarray, params)
    state = tx.init(p)
    for g in grads:
        for tp, n in zip(tparams, names):
            tp.grad = torch.from_numpy(g[n].copy())
        opt.step()
        p, state = step(p, state, jax.tree.map(jnp.asarray, g))
        ax = optxform.asgd_average(state)
        for tp, n in zip(tparams, names):
            np.testing.assert_allclose(ax[n], opt.state[tp]["ax"].numpy(), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(p[n], tp.detach().numpy(), rtol=1e-5, atol=1e-6)
    if t0 < 10:  # averaging has started: the average differs from the iterate
        assert not np.allclose(ax["a"], p["a"])


def test_asgd_average_finds_the_state_anywhere_and_rejects_others():
    tx = optxform.asgd()
    params = {"w": jnp.ones(2)}
    nested = {"outer": (optxform.sgd().init(params), tx.init(params))}
    assert optxform.asgd_average(nested)["w"].shape == (2,)
    with pytest.raises(ValueError, match="AsgdAveragingState"):
        optxform.asgd_average(optxform.sgd().init(params))


def test_asgd_step_size_and_averaging_weight_schedules():
    eta = optxform.asgd_learning_rate(0.1, lambd=0.5, alpha=0.75)
    np.testing.assert_allclose(eta(jnp.asarray(0)), 0.1, rtol=1e-7)
    np.testing.assert_allclose(eta(jnp.asarray(4)), 0.1 / (1 + 0.5 * 0.1 * 4) ** 0.75,
                               rtol=1e-6)
    mu = optxform.asgd_averaging_weight(t0=3)
    assert [float(mu(jnp.asarray(c))) for c in (0, 4, 5, 7)] == [1.0, 1.0, 0.5, 0.25]


def test_adagrad_lr_decay_composes_with_a_learning_rate_schedule_like_torch():
    """torch: clr = group lr / (1 + (t - 1) lr_decay), the group lr set by a scheduler."""
    params, grads = _tree(0), _grads(12)
    names = sorted(params)
    tparams = [torch.tensor(params[n], requires_grad=True) for n in names]
    opt = torch.optim.Adagrad(tparams, lr=0.05, lr_decay=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 0.9 ** epoch)
    tx = optxform.adagrad(lambda count: 0.05 * 0.9 ** count.astype(jnp.float32),
                          lr_decay=0.1)
    update = jax.jit(tx.update)
    p = jax.tree.map(jnp.asarray, params)
    state = tx.init(p)
    for g in grads:
        for tp, n in zip(tparams, names):
            tp.grad = torch.from_numpy(g[n].copy())
        opt.step()
        sched.step()
        u, state = update(jax.tree.map(jnp.asarray, g), state, p)
        p = optxform.apply_updates(p, u)
        for tp, n in zip(tparams, names):
            np.testing.assert_allclose(p[n], tp.detach().numpy(), rtol=1e-5, atol=1e-6)
