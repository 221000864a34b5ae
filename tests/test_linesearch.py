"""Line searches and scale_by_lbfgs in custom chains: torch's _strong_wolfe, optax's
L-BFGS + backtracking chain, non-finite values, trace-time errors."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optxform
from optxform.linesearch.zoom import strong_wolfe_search


def wiggly_rosenbrock(x):
    return (jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)
            + jnp.sum(jnp.sin(3.0 * x)))


def test_strong_wolfe_search_matches_torch(x64):
    import torch
    from torch.optim.lbfgs import _strong_wolfe

    value_and_grad = jax.jit(jax.value_and_grad(wiggly_rosenbrock))
    search = jax.jit(lambda x, d, f, g, gtd, t, max_ls: strong_wolfe_search(
        value_and_grad, x, d, f, g, gtd, t, max_ls=max_ls))

    def torch_objective(x, t, d):  # torch's _directional_evaluate, on JAX's function
        moved = x.clone()
        moved.add_(d, alpha=float(t))
        f, g = value_and_grad(jnp.asarray(moved.numpy()))
        return float(f), torch.from_numpy(np.array(g))

    rng = np.random.default_rng(1)
    evals_seen, cases = set(), 0
    while cases < 40:
        x = rng.standard_normal(3)
        f, g = value_and_grad(x)
        g = np.asarray(g)
        d = -g * rng.uniform(0.01, 2.0) + 0.3 * rng.standard_normal(3)
        gtd = float(g @ d)
        if gtd >= 0:
            continue
        cases += 1
        t0 = 10.0 ** rng.uniform(-5, 1)  # from far too short (extrapolate) to far too long
        max_ls = int(rng.integers(0, 26))
        f_t, g_t, t_t, evals_t = _strong_wolfe(
            torch_objective, torch.tensor(x), t0, torch.tensor(d), float(f), torch.tensor(g),
            torch.tensor(gtd), max_ls=max_ls)
        ours = search(x, d, f, g, gtd, t0, max_ls)
        assert int(ours.num_evals) == evals_t
        np.testing.assert_allclose(float(ours.step), float(t_t), rtol=1e-6)
        np.testing.assert_allclose(float(ours.value), f_t, rtol=1e-7, atol=1e-12)
        np.testing.assert_allclose(np.asarray(ours.grad), g_t.numpy(), rtol=1e-5, atol=1e-8)
        evals_seen.add(evals_t)
    assert len(evals_seen) >= 6  # bracketing, zoom and budget exits were all exercised


def _run_chain(tx, fn, params, steps):
    state = tx.init(params)

    @jax.jit
    def step(params, state):
        value, grad = jax.value_and_grad(fn)(params)
        updates, state = tx.update(grad, state, params, value=value, grad=grad, value_fn=fn)
        return optxform.apply_updates(params, updates), state

    out = []
    for _ in range(steps):
        params, state = step(params, state)
        out.append(np.asarray(params))
    return np.stack(out), state


def test_lbfgs_direction_then_zoom_is_one_torch_iteration_per_update(x64):
    # chain(scale_by_lbfgs(), zoom_linesearch()) = torch LBFGS(max_iter=1, strong_wolfe) per
    # update; torch's first-step factor sits in the direction instead of the step, and
    # s = x_new - x rather than t d, so they agree to rounding, not bit for bit.
    import torch

    fn = lambda x: jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)  # noqa: E731
    x0 = np.array([-1.2, 1.0])
    tx = optxform.chain(optxform.scale_by_lbfgs(history_size=100), optxform.zoom_linesearch())
    ours, _ = _run_chain(tx, fn, jnp.asarray(x0), 12)

    value_and_grad = jax.jit(jax.value_and_grad(fn))
    p = torch.tensor(x0, requires_grad=True)
    opt = torch.optim.LBFGS([p], max_iter=1, max_eval=26, line_search_fn="strong_wolfe")

    def closure():
        f, g = value_and_grad(jnp.asarray(p.detach().numpy()))
        p.grad = torch.from_numpy(np.array(g))
        return torch.tensor(float(f), dtype=torch.float64)

    theirs = []
    for _ in range(12):
        opt.step(closure)
        theirs.append(p.detach().numpy().copy())
    np.testing.assert_allclose(ours, np.stack(theirs), rtol=0, atol=1e-9)


def test_lbfgs_with_backtracking_matches_optax_chain(x64):
    # Where conventions coincide: |g|_1 <= 1 at the start (so optax's l2 and torch's l1
    # first-step caps are both 1) and positive curvature (every pair stored by both).
    import optax

    rng = np.random.default_rng(0)
    a = rng.standard_normal((5, 5))
    hessian = a @ a.T / 5.0 + 0.5 * np.eye(5)
    target = rng.standard_normal(5)
    fn = lambda x: 0.5 * (x - target) @ jnp.asarray(hessian) @ (x - target)  # noqa: E731
    x0 = jnp.asarray(target + 0.05 * rng.standard_normal(5) / 5.0)
    assert float(jnp.sum(jnp.abs(jax.grad(fn)(x0)))) <= 1.0
    search = dict(max_backtracking_steps=15, decrease_factor=0.5, increase_factor=2.0)
    ours, ours_state = _run_chain(
        optxform.chain(optxform.scale_by_lbfgs(history_size=4),
                       optxform.backtracking_linesearch(**search)), fn, x0, 6)
    with jax.numpy_dtype_promotion("standard"):  # optax mixes int32 and int64 under x64
        theirs, _ = _run_chain(
            optax.chain(optax.scale_by_lbfgs(memory_size=4), optax.scale(-1.0),
                        optax.scale_by_backtracking_linesearch(**search)), fn, x0, 6)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
    assert float(fn(jnp.asarray(ours[-1]))) < 1e-4 * float(fn(x0))
    assert int(ours_state[1].num_evals) >= 1


def _nan_beyond(limit):
    def fn(x):
        value = jnp.sum((x - 3.0) ** 2)
        return jnp.where(jnp.max(x) > limit, jnp.nan, value)
    return fn


def test_backtracking_backs_off_from_nan_and_stops_when_all_nan():
    fn = _nan_beyond(1.0)
    tx = optxform.backtracking_linesearch(max_backtracking_steps=10, decrease_factor=0.5)
    params = jnp.zeros(2)
    value, grad = jax.value_and_grad(fn)(params)
    # Steepest descent, step 1 lands at x = 6 (NaN); backing off reaches x <= 1.
    updates, state = jax.jit(lambda: tx.update(-grad, tx.init(params), params, value=value,
                                               grad=grad, value_fn=fn))()
    new = optxform.apply_updates(params, updates)
    assert np.all(np.isfinite(np.asarray(new))) and float(jnp.max(new)) <= 1.0
    assert float(fn(new)) < float(value)
    assert float(state.decrease_error) == 0.0
    # A function that is NaN everywhere but at x: no step at all.
    nan_fn = lambda x: jnp.where(jnp.all(x == 0.0), jnp.sum(x), jnp.nan)  # noqa: E731
    updates, state = tx.update(-grad, tx.init(params), params, value=jnp.asarray(0.0),
                               grad=grad, value_fn=nan_fn)
    assert np.all(np.asarray(updates) == 0.0) and float(state.value) == 0.0
    assert float(state.learning_rate) == 0.5 ** 10  # the smallest step tried, for the next guess


def test_zoom_bisects_back_from_nan_and_skips_ascent_directions():
    fn = _nan_beyond(1.0)
    tx = optxform.zoom_linesearch()
    params = jnp.zeros(2)
    value, grad = jax.value_and_grad(fn)(params)
    # Steepest descent d = 6 per coordinate: t = 1, 1/2, 1/4 land beyond 1 (NaN); t = 1/8
    # (x = 0.75) is finite and meets both Wolfe conditions.
    updates, state = tx.update(-grad, tx.init(params), params, value=value, grad=grad,
                               value_fn=fn)
    np.testing.assert_allclose(np.asarray(updates), [0.75, 0.75])
    assert float(state.learning_rate) == 0.125 and int(state.num_evals) == 4
    assert bool(state.finite) and float(state.value) == float(fn(jnp.full(2, 0.75)))
    updates, state = tx.update(grad, tx.init(params), params, value=value, grad=grad,
                               value_fn=fn)
    assert np.all(np.asarray(updates) == 0.0) and int(state.num_evals) == 0
    # A non-finite start: no step, and the state says so.
    updates, state = tx.update(-grad, tx.init(params), params, value=jnp.asarray(jnp.inf),
                               grad=grad, value_fn=fn)
    assert np.all(np.asarray(updates) == 0.0) and not bool(state.finite)


def overflowing_logistic(w):
    # Softplus written naively: exp overflows (value inf, gradient NaN) once z passes ~709.
    x, y = jnp.asarray(_X, w.dtype), jnp.asarray(_Y, w.dtype)
    z = x @ w
    return jnp.mean(jnp.log1p(jnp.exp(z)) - y * z) + 0.01 * jnp.sum(w ** 2)


_RNG = np.random.default_rng(2)
_X = _RNG.standard_normal((40, 4))
_Y = (_X @ _RNG.standard_normal(4) + 0.5 * _RNG.standard_normal(40) > 0).astype(np.float64)


def test_strong_wolfe_search_bisects_back_from_overflow_like_torch(x64):
    # torch's interpolation through a NaN slope is the bracket's midpoint, so on this
    # problem it bisects back from the overflowing trial exactly as ours does.
    import torch
    from torch.optim.lbfgs import _strong_wolfe

    value_and_grad = jax.jit(jax.value_and_grad(overflowing_logistic))

    def torch_objective(x, t, d):
        f, g = value_and_grad(jnp.asarray(x.numpy() + float(t) * d.numpy()))
        return float(f), torch.from_numpy(np.array(g))

    x = np.zeros(4)
    f, g = value_and_grad(x)
    g = np.asarray(g)
    d = -g
    for t0 in (1e3, 1e4, 1e6):
        assert not np.isfinite(float(overflowing_logistic(x + t0 * d)))
        f_t, g_t, t_t, evals_t = _strong_wolfe(
            torch_objective, torch.tensor(x), t0, torch.tensor(d), float(f), torch.tensor(g),
            torch.tensor(float(g @ d)))
        ours = strong_wolfe_search(value_and_grad, jnp.asarray(x), jnp.asarray(d), f,
                                   jnp.asarray(g), jnp.dot(g, d), t0)
        assert 0.0 < float(ours.step) < t0 and float(ours.value) < float(f)
        np.testing.assert_allclose(float(ours.step), float(t_t), rtol=1e-6)
        np.testing.assert_allclose(float(ours.value), f_t, rtol=1e-7)
        np.testing.assert_allclose(np.asarray(ours.grad), g_t.numpy(), rtol=1e-7, atol=1e-12)
        assert int(ours.num_evals) == evals_t


@pytest.mark.parametrize("search", [
    optxform.zoom_linesearch(initial_step=1e3),
    optxform.backtracking_linesearch(max_learning_rate=1e3, increase_factor=math.inf,
                                     decrease_factor=0.5, max_backtracking_steps=30),
    optxform.backtracking_linesearch(max_learning_rate=1e3, increase_factor=math.inf,
                                     decrease_factor=0.5, max_backtracking_steps=30,
                                     store_grad=True),
], ids=["zoom", "backtracking", "backtracking-store_grad"])
def test_line_searches_in_a_chain_keep_going_through_overflow(x64, search):
    # Steepest descent, each search starting from a step of 1000: the first update's first
    # trial is beyond the ~880 where exp overflows.
    tx = optxform.chain(optxform.scale(-1.0), search)
    trajectory, state = _run_chain(tx, overflowing_logistic, jnp.zeros(4), 8)
    losses = [float(overflowing_logistic(jnp.asarray(p))) for p in trajectory]
    assert np.all(np.isfinite(trajectory)) and np.all(np.diff(losses) <= 0)
    assert losses[-1] < 0.7 * float(np.log(2.0))  # far below the start's loss log 2
    assert float(state[1].learning_rate) < 1e3


def test_backtracking_resumes_shrinking_after_a_search_with_no_finite_trial(x64):
    # Steps beyond ~880 overflow here. From a last step of 1e4 / 1.5, two trials (t = 1e4,
    # 5e3) both overflow: no step, but the next update starts at 1.5 * 5e3 rather than at 0,
    # so each update shrinks the step by 3/4 until the search moves again (the eighth).
    fn = overflowing_logistic
    search = optxform.backtracking_linesearch(max_backtracking_steps=1, decrease_factor=0.5,
                                              max_learning_rate=1e4)
    w = jnp.zeros(4)
    state = search.init(w)._replace(learning_rate=jnp.asarray(1e4 / 1.5))
    update = jax.jit(functools.partial(search.update, value_fn=fn))
    trajectory, steps = [], []
    for _ in range(8):
        value, grad = jax.value_and_grad(fn)(w)
        updates, state = update(-grad, state, w, value=value, grad=grad)
        w = optxform.apply_updates(w, updates)
        trajectory.append(np.asarray(w))
        steps.append(float(state.learning_rate))
    assert np.all(np.stack(trajectory[:7]) == 0.0)
    np.testing.assert_allclose(steps[:7], 5e3 * 0.75 ** np.arange(7), rtol=1e-12)
    assert np.all(trajectory[7] != 0.0) and np.all(np.isfinite(trajectory[7]))
    np.testing.assert_allclose(steps[7], 5e3 * 0.75 ** 7, rtol=1e-12)  # 2x that overflowed


@pytest.mark.parametrize("tx", [optxform.zoom_linesearch(), optxform.backtracking_linesearch()],
                         ids=["zoom", "backtracking"])
def test_line_searches_check_their_objective_at_trace_time(tx):
    params = jnp.ones(3)
    state = tx.init(params)
    with pytest.raises(ValueError, match="scalar"):
        jax.jit(lambda p: tx.update(-p, state, p, value=p, grad=p, value_fn=jnp.sum))(params)
    with pytest.raises(ValueError, match="scalar"):
        jax.jit(lambda p: tx.update(-p, state, p, value_fn=lambda q: q * 2))(params)
    with pytest.raises(ValueError, match="value_fn"):
        tx.update(-params, state, params, value=jnp.sum(params), grad=params)


@pytest.mark.parametrize("make,name", [
    (lambda: optxform.zoom_linesearch(c1=0.95, c2=0.9), "c1"),
    (lambda: optxform.zoom_linesearch(initial_step=0.0), "initial_step"),
    (lambda: optxform.zoom_linesearch(max_linesearch_steps=-1), "max_linesearch_steps"),
    (lambda: optxform.backtracking_linesearch(decrease_factor=1.5), "decrease_factor"),
    (lambda: optxform.backtracking_linesearch(increase_factor=0.5), "increase_factor"),
    (lambda: optxform.scale_by_lbfgs(history_size=0), "history_size"),
])
def test_invalid_hyperparameters_raise(make, name):
    with pytest.raises(ValueError, match=name):
        make()
