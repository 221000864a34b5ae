"""torch's ``LBFGS.step(closure)`` as one transform update: up to ``max_iter`` iterations.

Each inner iteration is the L-BFGS direction (``remember`` + ``lbfgs_direction`` from
lbfgs.py) followed by a step: a fixed ``learning_rate``, or ``strong_wolfe_search`` from
linesearch/zoom.py. This module is only the loop around them, with torch's stopping rules,
as one ``lax.while_loop`` so a whole ``step(closure)`` compiles into a single call.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from optxform import tree as otu
from optxform.core import GradientTransformation, ScalarOrSchedule
from optxform.core.counters import INT32_MAX, increment, zero_count
from optxform.core.validation import (check_integer, check_learning_rate, check_non_negative,
                                      check_one_of)
from optxform.core.schedule import value_at
from optxform.linesearch.objective import all_finite, check_scalar_value, flat_problem
from optxform.linesearch.zoom import strong_wolfe_search
from optxform.quasi_newton.lbfgs import (LbfgsMemory, empty_memory, first_step_scale,
                                         lbfgs_direction, remember)

__all__ = ["LbfgsIterationsState", "lbfgs_iterations"]

# torch calls _strong_wolfe with its defaults, not with the optimizer's tolerance_change.
WOLFE_C1, WOLFE_C2, WOLFE_TOLERANCE_CHANGE = 1e-4, 0.9, 1e-9


def _add_count(count: jax.Array, k: jax.Array) -> jax.Array:
    """``count + k`` for int32 ``k >= 0``, saturating at the int32 maximum."""
    k = jnp.asarray(k, jnp.int32)
    return jnp.where(count > INT32_MAX - k, INT32_MAX, count + k).astype(jnp.int32)


def _check_count_limit(name: str, value) -> None:
    """An int >= 1, or an integer array (checked when concrete, e.g. injected hyperparams)."""
    if isinstance(value, (jax.Array, np.ndarray)) and jnp.issubdtype(value.dtype, jnp.integer):
        if not isinstance(value, jax.core.Tracer) and not int(value) >= 1:
            raise ValueError(f"Invalid {name}: {value!r} ({name} must be an integer >= 1)")
        return
    check_integer(name, value, minimum=1)


def _max_abs(x: jax.Array) -> jax.Array:
    return jnp.max(jnp.abs(x), initial=0.0)


class LbfgsIterationsState(NamedTuple):
    """The state of :func:`lbfgs_iterations` (torch ``LBFGS``'s ``state``).

    ``n`` is the number of params (all leaves flattened, torch's ``_gather_flat_grad``
    order); float arrays have the params' flat dtype (float64 if any param is float64,
    else float32).

    Attributes:
      count: an int32 scalar, the ``update`` calls made (the step a schedule sees).
      d: ``(n,)``, the last search direction (torch's ``d``).
      t: a scalar, the last step length (torch's ``t``).
      memory: the :class:`LbfgsMemory` of curvature pairs (torch's ``old_dirs``,
        ``old_stps``, ``ro`` and ``H_diag``, as a ring buffer).
      prev_flat_grad: ``(n,)``, the gradient at the start of the last iteration.
      prev_loss: a scalar, the loss at the start of the last iteration.
      n_iter: an int32 scalar, the inner iterations over all updates (torch's ``n_iter``).
      func_evals: an int32 scalar, the objective evaluations over all updates (torch's
        ``func_evals``).
      finite: a bool scalar, False if the last update stopped on non-finite values.
    """

    count: jax.Array
    d: jax.Array
    t: jax.Array
    memory: LbfgsMemory
    prev_flat_grad: jax.Array
    prev_loss: jax.Array
    n_iter: jax.Array
    func_evals: jax.Array
    finite: jax.Array


class _Inner(NamedTuple):
    x: jax.Array
    f: jax.Array
    g: jax.Array
    d: jax.Array
    t: jax.Array
    memory: LbfgsMemory
    prev_g: jax.Array
    prev_loss: jax.Array
    n_iter_total: jax.Array
    n_iter: jax.Array         # iterations in this update
    evals: jax.Array          # evaluations in this update (torch's current_evals)
    func_evals: jax.Array
    finite: jax.Array
    stop: jax.Array


def lbfgs_iterations(learning_rate: ScalarOrSchedule = 1.0, max_iter: int = 20,
                     max_eval: int | None = None, tolerance_grad: ArrayLike = 1e-7,
                     tolerance_change: ArrayLike = 1e-9, history_size: int = 100,
                     line_search_fn: str | None = None) -> GradientTransformation:
    r"""One update = one torch ``LBFGS.step(closure)``; see ``optxform.lbfgs`` for the math.

    ``update(grads, state, params, value=f(params), value_fn=f)`` returns
    ``new_params - params`` after up to ``max_iter`` L-BFGS iterations, evaluating ``f`` (and
    its gradient, by ``jax.value_and_grad``) through ``value_fn``. ``grads`` and ``value``
    are torch's first closure call; ``value`` is computed from ``value_fn`` if omitted.
    ``max_iter``, ``max_eval`` and the tolerances may be arrays; ``history_size`` fixes the
    shapes of the state and must be a Python int.

    Args:
      learning_rate: the step length, a number or a schedule of the update count (the
        initial trial step with ``'strong_wolfe'``).
      max_iter: the most inner iterations per update.
      max_eval: the most objective evaluations per update (default ``max_iter * 5 // 4``,
        torch's).
      tolerance_grad: stop when :math:`\max_i |g_i|` is at most this.
      tolerance_change: stop when the step or the change of the value is below this.
      history_size: the curvature pairs kept.
      line_search_fn: ``None`` (a fixed step) or ``'strong_wolfe'``.

    Returns:
      A :class:`GradientTransformation` whose state is an :class:`LbfgsIterationsState`;
        its ``update`` needs ``params`` and the keyword argument ``value_fn``, and returns
        ``new_params - params`` with the structure of the params.

    Equivalent: ``torch.optim.LBFGS(params, lr=learning_rate, ...).step(closure)``, one
    call per update; ``optxform.lbfgs`` is this transform under its alias name.

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> f = lambda p: (p[0] - 1.0) ** 2 + 10.0 * (p[1] + 2.0) ** 2
        >>> params = jnp.zeros(2)
        >>> tx = optxform.lbfgs_iterations(line_search_fn="strong_wolfe")
        >>> value, grad = jax.value_and_grad(f)(params)
        >>> updates, state = tx.update(grad, tx.init(params), params, value=value, value_fn=f)
        >>> print(jnp.round(optxform.apply_updates(params, updates), 4))
        [ 1. -2.]
        >>> int(state.n_iter), int(state.func_evals)
        (6, 6)
    """
    check_learning_rate(learning_rate)
    _check_count_limit("max_iter", max_iter)
    if max_eval is None:
        max_eval = max_iter * 5 // 4  # torch's default
    _check_count_limit("max_eval", max_eval)
    check_non_negative("tolerance_grad", tolerance_grad)
    check_non_negative("tolerance_change", tolerance_change)
    check_integer("history_size", history_size, minimum=1)
    check_one_of("line_search_fn", line_search_fn, (None, "strong_wolfe"))
    who = "lbfgs"

    def init(params):
        dtype = otu.flat_dtype(params)
        n = otu.ravel(params, dtype).shape[0]
        return LbfgsIterationsState(
            count=zero_count(), d=jnp.zeros([n], dtype), t=jnp.zeros([], dtype),
            memory=empty_memory(history_size, n, dtype), prev_flat_grad=jnp.zeros([n], dtype),
            prev_loss=jnp.zeros([], dtype), n_iter=zero_count(), func_evals=zero_count(),
            finite=jnp.asarray(True))

    def update(updates, state, params=None, *, value=None, value_fn=None, **extra):
        del extra
        dtype, value_and_grad, x0, g0 = flat_problem(updates, params, value_fn, who)
        if value is None:
            f0 = jnp.asarray(value_fn(params)).astype(dtype)
        else:
            check_scalar_value(value, who)
            f0 = jnp.asarray(value).astype(dtype)
        lr = value_at(learning_rate, state.count, dtype)
        tol_grad = jnp.asarray(tolerance_grad).astype(dtype)
        tol_change = jnp.asarray(tolerance_change).astype(dtype)
        iter_limit = jnp.asarray(max_iter, jnp.int32)
        eval_limit = jnp.asarray(max_eval, jnp.int32)

        def iteration(c: _Inner) -> _Inner:
            n_iter = c.n_iter + 1
            n_iter_total = increment(c.n_iter_total)
            first = n_iter_total == 1

            # Direction: steepest descent on the very first iteration (memory cleared), else
            # store the last pair (s = t d, y = g - g_prev) and apply the two-loop recursion.
            def steepest(_):
                return -c.g, empty_memory(history_size, c.g.shape[0], dtype)

            def quasi_newton(_):
                memory = remember(c.memory, c.d * c.t, c.g - c.prev_g)
                return lbfgs_direction(memory, c.g), memory

            d, memory = jax.lax.cond(first, steepest, quasi_newton, None)
            t = jnp.where(first, first_step_scale(c.g) * lr, lr)
            gtd = jnp.dot(c.g, d)
            descent = ~(gtd > -tol_change)  # torch stops before moving otherwise

            if line_search_fn == "strong_wolfe":
                def search(_):
                    r = strong_wolfe_search(
                        value_and_grad, c.x, d, c.f, c.g, gtd, t, c1=WOLFE_C1, c2=WOLFE_C2,
                        tolerance_change=WOLFE_TOLERANCE_CHANGE, max_ls=eval_limit - c.evals)
                    return r.step, r.value, r.grad, r.num_evals

                def no_search(_):
                    return t, c.f, c.g, jnp.zeros([], jnp.int32)

                # The search steps back from non-finite trials: what it accepts is finite.
                t, f, g, ls_evals = jax.lax.cond(descent, search, no_search, None)
                finite = jnp.asarray(True)
                opt_cond = _max_abs(g) <= tol_grad
            else:
                # Fixed step; the function is re-evaluated except after the last iteration.
                # Like torch, only the gradient steers: a non-finite value goes on, a
                # non-finite gradient (torch's params would turn NaN) stops below.
                evaluate = descent & (n_iter != iter_limit)

                def step_and_evaluate(_):
                    f, g = value_and_grad(c.x + t * d)
                    return f, g, jnp.ones([], jnp.int32), all_finite(g)

                def no_evaluation(_):
                    return c.f, c.g, jnp.zeros([], jnp.int32), jnp.asarray(True)

                f, g, ls_evals, finite = jax.lax.cond(evaluate, step_and_evaluate,
                                                      no_evaluation, None)
                opt_cond = evaluate & (_max_abs(g) <= tol_grad)

            # A non-finite gradient: stay at the last good point, with t = 0 so the next
            # update stores no pair from it.
            t = jnp.where(finite, t, 0.0)
            f = jnp.where(finite, f, c.f)
            g = jnp.where(finite, g, c.g)
            x = jnp.where(descent & finite, c.x + t * d, c.x)
            evals = c.evals + ls_evals
            stop = (~descent | ~finite | (n_iter == iter_limit) | (evals >= eval_limit)
                    | opt_cond | (_max_abs(d * t) <= tol_change)
                    | (jnp.abs(f - c.f) < tol_change))
            return _Inner(x=x, f=f, g=g, d=d, t=t, memory=memory, prev_g=c.g, prev_loss=c.f,
                          n_iter_total=n_iter_total, n_iter=n_iter, evals=evals,
                          func_evals=_add_count(c.func_evals, ls_evals), finite=finite,
                          stop=stop)

        # The search needs a finite start value; the fixed step only a finite gradient.
        finite0 = all_finite(f0, g0) if line_search_fn == "strong_wolfe" else all_finite(g0)
        start = _Inner(
            x=x0, f=f0, g=g0, d=state.d, t=state.t, memory=state.memory,
            prev_g=state.prev_flat_grad, prev_loss=state.prev_loss,
            n_iter_total=state.n_iter, n_iter=zero_count(), evals=jnp.ones([], jnp.int32),
            func_evals=increment(state.func_evals), finite=finite0,
            stop=~finite0 | (_max_abs(g0) <= tol_grad))
        c = jax.lax.while_loop(lambda c: ~c.stop, iteration, start)
        new_state = LbfgsIterationsState(
            count=increment(state.count), d=c.d, t=c.t, memory=c.memory,
            prev_flat_grad=c.prev_g, prev_loss=c.prev_loss, n_iter=c.n_iter_total,
            func_evals=c.func_evals, finite=c.finite)
        return otu.unravel_like(c.x - x0, params), new_state

    return GradientTransformation(init, update)
