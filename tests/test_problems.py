"""optxform.problems: surfaces have the minima and saddles they claim; training problems load."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optxform
from optxform.problems import SURFACES, TRAINING_PROBLEMS


@pytest.mark.parametrize("name", sorted(SURFACES))
def test_surface_minima_are_stationary_with_the_stated_value(name):
    surface = SURFACES[name]
    for point in surface.minima:
        p = jnp.asarray(point, jnp.float32)
        assert abs(float(surface(p)) - surface.minimum_value) < 1e-4, point
        assert float(jnp.max(jnp.abs(jax.grad(surface.fn)(p)))) < 1e-3, point
        hessian = np.linalg.eigvalsh(np.asarray(jax.hessian(surface.fn)(p), np.float64))
        assert hessian.min() > 0, (point, hessian)  # a strict local minimum
        # ... and the lowest value on a grid over the plotting window is not below it.
    if surface.minima:
        xs = np.linspace(*surface.bounds[0], 101)
        ys = np.linspace(*surface.bounds[1], 101)
        grid = jnp.asarray(np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2), jnp.float32)
        assert float(jnp.min(jax.vmap(surface.fn)(grid))) >= surface.minimum_value - 1e-4


@pytest.mark.parametrize("name", ["saddle", "monkey_saddle"])
def test_saddles_are_stationary_and_not_minima(name):
    surface = SURFACES[name]
    (point,) = surface.saddles
    p = jnp.asarray(point, jnp.float32)
    np.testing.assert_allclose(np.asarray(jax.grad(surface.fn)(p)), 0.0, atol=1e-7)
    # Lower values right next to the saddle: it is not a minimum.
    nearby = jnp.asarray([[0.0, 0.1], [0.1, 0.0], [-0.1, 0.0], [0.0, -0.1]], jnp.float32)
    assert float(jnp.min(jax.vmap(surface.fn)(nearby))) < float(surface(p))
    assert surface.minimum_value is None and not surface.minima


def test_surface_values_at_known_points():
    f = lambda name, x, y: float(SURFACES[name](jnp.asarray([x, y], jnp.float32)))  # noqa: E731
    assert f("rosenbrock", 0.0, 0.0) == 1.0
    assert f("beale", 0.0, 0.0) == pytest.approx(1.5 ** 2 + 2.25 ** 2 + 2.625 ** 2)
    assert f("himmelblau", 0.0, 0.0) == 170.0
    assert f("booth", 0.0, 0.0) == 74.0
    assert f("saddle", 2.0, 1.0) == 3.0
    assert f("monkey_saddle", 1.0, 1.0) == -2.0
    assert f("rastrigin", 1.0, 0.0) == pytest.approx(1.0, abs=1e-4)
    assert f("ill_conditioned", 1.0, 1.0) == 25.5
    # Himmelblau's local maximum sits between the basins (where the demo starts nearby).
    assert f("himmelblau", -0.270845, -0.923039) == pytest.approx(181.617, abs=1e-2)


def test_surfaces_have_sane_metadata():
    for surface in SURFACES.values():
        (x0, x1), (y0, y1) = surface.bounds
        assert x0 < surface.start[0] < x1 and y0 < surface.start[1] < y1, surface.name
        for mx, my in surface.minima + surface.saddles:
            assert x0 <= mx <= x1 and y0 <= my <= y1, surface.name
        assert surface.description and "``" not in surface.description
        assert all(lr > 0 for lr in surface.learning_rates.values())
        assert surface.distance_to_minimum(surface.start) > 0


def test_surface_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        optxform.rosenbrock(jnp.zeros(3, jnp.float32))


def test_get_problem_and_names():
    assert optxform.get_problem("rosenbrock") is SURFACES["rosenbrock"]
    assert optxform.get_problem("mlp_digits") is TRAINING_PROBLEMS["mlp_digits"]
    assert set(optxform.problem_names()) == set(SURFACES) | set(TRAINING_PROBLEMS)
    assert optxform.problem_names("surface") == list(SURFACES)
    with pytest.raises(ValueError, match="unknown problem 'nope'; known problems: rosenbrock"):
        optxform.get_problem("nope")
    with pytest.raises(ValueError, match="kind"):
        optxform.problem_names("other")


def test_spirals_need_no_sklearn_and_start_at_chance():
    problem = TRAINING_PROBLEMS["logreg_spirals"]
    assert not problem.needs_sklearn
    loss_fn, params, (x, y) = problem.load()
    assert x.shape == (400, 2) and x.dtype == jnp.float32 and y.dtype == jnp.int32
    assert sorted(np.unique(np.asarray(y)).tolist()) == [0, 1]
    # Zero weights: uniform softmax, so the loss is log(2).
    assert float(loss_fn(params, (x, y))) == pytest.approx(math.log(2.0), rel=1e-6)


@pytest.mark.parametrize("name, n, d, k", [("logreg_digits", 1797, 64, 10),
                                          ("mlp_breast_cancer", 569, 30, 2)])
def test_sklearn_problems_load_and_train(name, n, d, k):
    import sklearn  # noqa: F401 - the problems load its data sets (the test extra has it)
    problem = TRAINING_PROBLEMS[name]
    loss_fn, params, (x, y) = problem.load()
    assert x.shape == (n, d) and int(y.max()) + 1 == k
    np.testing.assert_allclose(np.asarray(x).mean(0), 0.0, atol=1e-4)  # standardized
    loss0 = float(loss_fn(params, (x, y)))
    grad = jax.jit(jax.grad(loss_fn))
    for _ in range(30):  # plain gradient descent must make progress
        params = jax.tree.map(lambda p, g: p - 0.5 * g, params, grad(params, (x, y)))
    assert float(loss_fn(params, (x, y))) < 0.7 * loss0
    assert problem.accuracy(params, (x, y)) > 0.8
