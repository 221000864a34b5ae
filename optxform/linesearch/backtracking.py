"""Backtracking (Armijo) line search as a transform reading ``value``/``grad``/``value_fn``."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optxform import tree as otu
from optxform.core import GradientTransformation
from optxform.core.counters import zero_count
from optxform.core.validation import (check_integer, check_non_negative, check_positive,
                                      check_range)
from optxform.linesearch.objective import all_finite, flat_value, search_start

__all__ = ["BacktrackingLinesearchState", "backtracking_linesearch"]


class BacktrackingLinesearchState(NamedTuple):
    """The state of :func:`backtracking_linesearch`.

    Attributes:
      learning_rate: a scalar in the params' flat dtype (float64 if any param is float64,
        else float32): the last step tried, i.e. the accepted one, or the smallest tried if
        no trial was finite (the update is then 0). The next search starts from it times
        ``increase_factor``. 1 after ``init``.
      value: a scalar, the objective at the new params (``+inf`` after ``init``).
      grad: a tree like the params: the gradient at the new params with ``store_grad``,
        zeros otherwise.
      decrease_error: a scalar, how far the accepted step misses the Armijo condition
        (0 when it holds; ``+inf`` when no trial was finite).
      num_evals: an int32 scalar, the ``value_fn`` evaluations made by the last update.
    """

    learning_rate: jax.Array
    value: jax.Array
    grad: Any
    decrease_error: jax.Array
    num_evals: jax.Array


class _Search(NamedTuple):
    step: jax.Array
    value: jax.Array
    grad: jax.Array  # flat; only computed with store_grad
    decrease_error: jax.Array
    iteration: jax.Array


def backtracking_linesearch(max_backtracking_steps: int = 20, slope_rtol: float = 1e-4,
                            decrease_factor: float = 0.8, increase_factor: float = 1.5,
                            max_learning_rate: float = 1.0, atol: float = 0.0,
                            rtol: float = 0.0, store_grad: bool = False) -> GradientTransformation:
    """Scale a descent direction ``d`` by the first step ``t`` meeting the Armijo condition.

    ``u <- t d`` where ``t = min(increase_factor * t_prev, max_learning_rate) *
    decrease_factor^k`` for the smallest ``k <= max_backtracking_steps`` with

        f(x + t d) <= (1 + rtol) f(x) + slope_rtol * t * <g, d> + atol.

    ``update(d, state, params, value=f(x), grad=g(x), value_fn=f)`` reads the objective from
    its extra arguments (``value``/``grad`` are evaluated if missing). A non-finite trial value
    (or, with ``store_grad``, gradient) counts as a failed trial, so the search backs off from
    regions where ``f`` overflows; if no trial is finite the update is 0, the params stay at
    the last good point, and the next update starts from the smallest step tried (times
    ``increase_factor``), so successive updates keep shrinking the step. If the budget runs
    out with finite but insufficient decrease, the last (smallest) step is taken, as optax does.

    Equivalent: ``optax.scale_by_backtracking_linesearch`` with the same arguments (same
    initial guess, same criterion, same budget: up to ``max_backtracking_steps + 1``
    evaluations). Differences: optax's ``store_grad=False`` state holds ``grad=None`` while
    here it holds zeros (the state structure never depends on an option); when no trial is
    finite optax keeps the non-finite trial value in its state, here ``value`` stays ``f(x)``,
    and optax restarts the next search from a step of 0 (so it never moves again), here from
    the smallest step tried.

    Args:
      max_backtracking_steps: step reductions allowed after the first trial.
      slope_rtol: the Armijo constant ``c1`` in ``(0, 1)``.
      decrease_factor: step reduction per trial, in ``(0, 1)``.
      increase_factor: growth of the first guess over the last accepted step (``>= 1``;
        ``math.inf`` always starts from ``max_learning_rate``).
      max_learning_rate: cap on the first guess (``> 0``).
      atol, rtol: absolute and relative slack in the criterion (``>= 0``).
      store_grad: also compute the gradient at each trial (a value-and-gradient evaluation
        instead of a value), so the state holds the gradient at the new params for reuse.

    Returns:
      A :class:`GradientTransformation` whose state is a
        :class:`BacktrackingLinesearchState`; its ``update`` needs ``params`` and the keyword
        argument ``value_fn`` and returns ``t d`` with the structure of the updates.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> f = lambda p: jnp.sum(p ** 2)
        >>> params = jnp.array([1.0, 2.0])
        >>> grad = 2 * params
        >>> tx = optxform.backtracking_linesearch()
        >>> updates, state = tx.update(-grad, tx.init(params), params, value=f(params),
        ...                            grad=grad, value_fn=f)
        >>> updates  # t = 1 overshoots to f = 5; t = 0.8 is accepted
        Array([-1.6, -3.2], dtype=float32)
        >>> float(state.learning_rate), int(state.num_evals)
        (0.800000011920929, 2)
    """
    check_integer("max_backtracking_steps", max_backtracking_steps, minimum=0)
    check_range("slope_rtol", slope_rtol, 0.0, 1.0, low_closed=False)
    check_range("decrease_factor", decrease_factor, 0.0, 1.0, low_closed=False)
    check_range("increase_factor", increase_factor, 1.0, float("inf"), high_closed=True)
    check_positive("max_learning_rate", max_learning_rate)
    check_non_negative("atol", atol)
    check_non_negative("rtol", rtol)

    def init(params):
        dtype = otu.flat_dtype(params)
        return BacktrackingLinesearchState(
            learning_rate=jnp.ones([], dtype), value=jnp.asarray(jnp.inf, dtype),
            grad=otu.zeros_like(params), decrease_error=jnp.asarray(jnp.inf, dtype),
            num_evals=zero_count())

    def update(updates, state, params=None, *, value=None, grad=None, value_fn=None, **extra):
        del extra
        start = search_start(updates, params, value, grad, value_fn, "backtracking_linesearch")
        dtype, value_and_grad, x, d, f0, g0, evals = start
        value_only = flat_value(value_fn, params, dtype)
        slope = jnp.dot(d, g0)

        def decrease_error(t, f, g):
            error = f - (1.0 + rtol) * f0 - t * slope_rtol * slope
            error = jnp.where(jnp.isnan(error) | ~all_finite(f, g), jnp.inf, error)
            return jnp.maximum(error, 0.0)

        def searching(s: _Search):
            return ~(s.decrease_error <= atol) & (s.iteration <= max_backtracking_steps)

        def backtrack(s: _Search) -> _Search:
            t = jnp.where(s.iteration > 0, decrease_factor * s.step, s.step)
            if store_grad:
                f, g = value_and_grad(x + t * d)
            else:
                f, g = value_only(x + t * d), s.grad
            return _Search(step=t, value=f, grad=g, decrease_error=decrease_error(t, f, g),
                           iteration=s.iteration + 1)

        guess = jnp.minimum(increase_factor * state.learning_rate, max_learning_rate)
        start = _Search(step=guess.astype(dtype), value=f0, grad=jnp.zeros_like(x),
                        decrease_error=jnp.asarray(jnp.inf, dtype),
                        iteration=jnp.zeros([], jnp.int32))
        s = jax.lax.while_loop(searching, backtrack, start)
        ok = ~jnp.isinf(s.decrease_error)
        step = jnp.where(ok, s.step, 0.0)
        new_value = jnp.where(ok, s.value, f0)
        new_grad = jnp.where(ok, s.grad, g0) if store_grad else s.grad
        new_state = BacktrackingLinesearchState(
            learning_rate=s.step, value=new_value, grad=otu.unravel_like(new_grad, params),
            decrease_error=s.decrease_error, num_evals=evals + s.iteration)
        return otu.unravel_like(step * d, updates), new_state

    return GradientTransformation(init, update)
