"""Strong-Wolfe line search: bracketing, then a zoom with cubic interpolation (torch's).

:func:`strong_wolfe_search` is the search itself, on flat vectors, as two ``lax.while_loop``
phases; :func:`zoom_linesearch` wraps it as a transform for custom chains, and
``optxform.lbfgs(line_search_fn='strong_wolfe')`` calls it once per inner iteration.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from optxform import tree as otu
from optxform.core import GradientTransformation
from optxform.core.counters import zero_count
from optxform.core.validation import check_integer, check_non_negative, check_positive, check_range
from optxform.linesearch.objective import all_finite, search_start

__all__ = ["ZoomLinesearchState", "zoom_linesearch"]


def cubic_interpolate(x1, f1, g1, x2, f2, g2, lower, upper) -> jax.Array:
    """The minimiser of the cubic through ``(x1, f1, g1)`` and ``(x2, f2, g2)``, clipped to
    ``[lower, upper]``; the midpoint of the bounds when the cubic has no real minimiser or
    a value or slope is not finite (so a trial that overflowed is bisected away from).

    With ``d1 = g1 + g2 - 3 (f1 - f2) / (x1 - x2)`` and ``d2 = sqrt(d1^2 - g1 g2)``, the
    minimiser is ``x2 - (x2 - x1) (g2 + d2 - d1) / (g2 - g1 + 2 d2)`` (for ``x1 <= x2``; the
    roles swap otherwise). This is torch's ``_cubic_interpolate`` (from minFunc's polyinterp);
    torch reaches the same midpoint when a slope is NaN (``d2^2 >= 0`` fails), and returns
    NaN for an infinite value with a finite slope, where this bisects.
    """
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 * d1 - g1 * g2
    d2 = jnp.sqrt(jnp.maximum(d2_square, 0))
    forward = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    backward = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    min_pos = jnp.where(x1 <= x2, forward, backward)
    real = (d2_square >= 0) & all_finite(f1, g1, f2, g2)
    return jnp.where(real, jnp.minimum(jnp.maximum(min_pos, lower), upper),
                     (lower + upper) / 2.0)


class StrongWolfeResult(NamedTuple):
    step: jax.Array       # the accepted step t (0 when no trial improved on the start)
    value: jax.Array      # f(x + t d), finite
    grad: jax.Array       # flat gradient at x + t d
    num_evals: jax.Array  # int32: evaluations of value_and_grad made by the search


# Outcomes of the bracketing phase.
_CONTINUE, _BRACKET, _DONE = 0, 1, 2


class _Bracketing(NamedTuple):
    t: jax.Array
    f: jax.Array
    g: jax.Array
    gtd: jax.Array
    t_prev: jax.Array
    f_prev: jax.Array
    g_prev: jax.Array
    gtd_prev: jax.Array
    ls_iter: jax.Array
    outcome: jax.Array


class _Zoom(NamedTuple):
    ts: jax.Array     # (2,) bracket ends
    fs: jax.Array     # (2,)
    gs: jax.Array     # (2, n)
    gtds: jax.Array   # (2,)
    low: jax.Array    # int32 index of the end with the lower value (always a finite one)
    done: jax.Array
    insufficient_progress: jax.Array
    ls_iter: jax.Array


def strong_wolfe_search(value_and_grad: Callable[[jax.Array], tuple[jax.Array, jax.Array]],
                        x: jax.Array, d: jax.Array, value: jax.Array, grad: jax.Array,
                        gtd: jax.Array, step, *, c1=1e-4, c2=0.9, tolerance_change=1e-9,
                        max_ls=25) -> StrongWolfeResult:
    """Find ``t`` with ``f(x + t d) <= f(x) + c1 t g.d`` and ``|g(x + t d).d| <= -c2 g.d``.

    The algorithm of torch's ``_strong_wolfe`` (from minFunc's WolfeLineSearch):

    1. *Bracketing*, from ``t = step``: stop at a bracket ``[t_prev, t]`` as soon as the
       Armijo condition fails, the value stops decreasing (from the third trial on), or the
       slope turns non-negative; accept ``t`` if the strong curvature condition holds;
       otherwise extrapolate by cubic interpolation into ``[t + 0.01 (t - t_prev), 10 t]``.
    2. *Zoom*: shrink the bracket by cubic interpolation (moved ``0.1`` of the bracket away
       from an end it gets too close to twice in a row) until the strong Wolfe conditions hold,
       or the bracket is shorter than ``tolerance_change / max|d|``.

    ``max_ls`` caps the trials after the first (so at most ``max_ls + 1`` evaluations); when
    the bracketing phase exhausts it, the search returns the better of ``0`` and the last
    ``t``. The result is the bracket end with the lower value.

    A trial whose value or gradient is not finite (``f`` overflowed, say) fails the Armijo
    condition, with its value taken as ``+inf``: it becomes the far end of the bracket, and
    the next trial is the bracket's midpoint (interpolation through a non-finite end is
    skipped), so the step halves until the values are finite again, as torch does when the
    gradient is NaN and SciPy's line searches do on overflow. The accepted end is always a
    finite one (at worst ``t = 0`` with the input value and gradient), so ``value`` and
    ``grad`` are finite whenever the input ones are. Everything is ``lax`` control flow, so
    the search jits and vmaps; ``x, d, grad`` are flat vectors of one dtype.
    """
    dtype = x.dtype
    f0 = jnp.asarray(value).astype(dtype)
    g0 = grad
    gtd0 = jnp.asarray(gtd).astype(dtype)
    max_ls = jnp.asarray(max_ls, jnp.int32)
    tol = jnp.asarray(tolerance_change).astype(dtype)
    d_norm = jnp.max(jnp.abs(d)) if d.size else jnp.zeros([], dtype)
    armijo_slope = c1 * gtd0
    curvature_bound = -c2 * gtd0

    def evaluate(t):
        """``f, g, <g, d>`` at ``x + t d``; a non-finite ``f`` or ``g`` gives ``f = +inf``."""
        f, g = value_and_grad(x + t * d)
        f = jnp.where(all_finite(f, g), f, jnp.inf)
        return f, g, jnp.dot(g, d)

    def armijo_fails(t, f):
        return ~(f <= f0 + armijo_slope * t)  # also for f = +inf (a non-finite trial)

    def classify(t, f, gtd_new, f_prev, ls_iter):
        bracket = armijo_fails(t, f) | ((ls_iter > 1) & (f >= f_prev))
        return jnp.where(bracket, _BRACKET,
               jnp.where(jnp.abs(gtd_new) <= curvature_bound, _DONE,
               jnp.where(gtd_new >= 0, _BRACKET, _CONTINUE))).astype(jnp.int32)

    # Phase 1: bracketing.
    t = jnp.asarray(step).astype(dtype)
    f, g, gtd_new = evaluate(t)
    zero = jnp.zeros([], jnp.int32)
    start = _Bracketing(t=t, f=f, g=g, gtd=gtd_new, t_prev=jnp.zeros([], dtype), f_prev=f0,
                        g_prev=g0, gtd_prev=gtd0, ls_iter=zero,
                        outcome=classify(t, f, gtd_new, f0, zero))

    def bracketing_continues(s: _Bracketing):
        return (s.outcome == _CONTINUE) & (s.ls_iter < max_ls)

    def extrapolate(s: _Bracketing) -> _Bracketing:
        t_new = cubic_interpolate(s.t_prev, s.f_prev, s.gtd_prev, s.t, s.f, s.gtd,
                                  s.t + 0.01 * (s.t - s.t_prev), s.t * 10)
        f_new, g_new, gtd_new = evaluate(t_new)
        ls_iter = s.ls_iter + 1
        return _Bracketing(t=t_new, f=f_new, g=g_new, gtd=gtd_new, t_prev=s.t, f_prev=s.f,
                           g_prev=s.g, gtd_prev=s.gtd, ls_iter=ls_iter,
                           outcome=classify(t_new, f_new, gtd_new, s.f, ls_iter))

    s = jax.lax.while_loop(bracketing_continues, extrapolate, start)

    # The bracket handed to the zoom: [0, t] when the trials ran out, the single point t when
    # it already satisfies the strong Wolfe conditions, [t_prev, t] otherwise.
    exhausted = s.ls_iter == max_ls
    found = (s.outcome == _DONE) & ~exhausted
    zero_t = jnp.zeros([], dtype)
    left = [jnp.where(exhausted, a0, jnp.where(found, a, ap))
            for a0, a, ap in ((zero_t, s.t, s.t_prev), (f0, s.f, s.f_prev),
                              (g0, s.g, s.g_prev), (gtd0, s.gtd, s.gtd_prev))]
    ts, fs, gs, gtds = (jnp.stack([lo, hi]) for lo, hi in zip(left, (s.t, s.f, s.g, s.gtd)))
    low = jnp.where(fs[0] <= fs[1], 0, 1).astype(jnp.int32)
    zoom_start = _Zoom(ts=ts, fs=fs, gs=gs, gtds=gtds, low=low, done=found,
                       insufficient_progress=jnp.asarray(False), ls_iter=s.ls_iter)

    # Phase 2: zoom.
    def zoom_continues(z: _Zoom):
        wide = ~(jnp.abs(z.ts[1] - z.ts[0]) * d_norm < tol)
        return ~z.done & (z.ls_iter < max_ls) & wide

    def shrink(z: _Zoom) -> _Zoom:
        high = 1 - z.low
        t_min, t_max = jnp.min(z.ts), jnp.max(z.ts)
        t = cubic_interpolate(z.ts[0], z.fs[0], z.gtds[0], z.ts[1], z.fs[1], z.gtds[1],
                              t_min, t_max)
        # Keep a trial at least 0.1 of the bracket away from its ends when interpolation
        # lands there twice in a row (or outside the bracket).
        eps = 0.1 * (t_max - t_min)
        near_end = jnp.minimum(t_max - t, t - t_min) < eps
        pushed = z.insufficient_progress | (t >= t_max) | (t <= t_min)
        moved = jnp.where(jnp.abs(t - t_max) < jnp.abs(t - t_min), t_max - eps, t_min + eps)
        t = jnp.where(near_end & pushed, moved, t)
        insufficient_progress = near_end & ~pushed

        f, g, gtd_new = evaluate(t)
        ls_iter = z.ls_iter + 1
        higher = armijo_fails(t, f) | (f >= z.fs[z.low])
        wolfe = ~higher & (jnp.abs(gtd_new) <= curvature_bound)
        # Armijo fails (or the value is no lower): the trial replaces the high end. Otherwise
        # it replaces the low end, and the old low end first moves to the high end when the
        # slope points past it.
        flip = ~higher & ~wolfe & (gtd_new * (z.ts[high] - z.ts[z.low]) >= 0)
        write = jnp.where(higher, high, z.low)

        def place(old, new):
            slots = [jnp.where(flip & (i == high), old[z.low], old[i]) for i in (0, 1)]
            slots = [jnp.where(write == i, new, slots[i]) for i in (0, 1)]
            return jnp.stack(slots)

        ts, fs, gs, gtds = (place(o, n) for o, n in
                            ((z.ts, t), (z.fs, f), (z.gs, g), (z.gtds, gtd_new)))
        low = jnp.where(higher, jnp.where(fs[0] <= fs[1], 0, 1), z.low).astype(jnp.int32)
        return _Zoom(ts=ts, fs=fs, gs=gs, gtds=gtds, low=low, done=wolfe,
                     insufficient_progress=insufficient_progress, ls_iter=ls_iter)

    z = jax.lax.while_loop(zoom_continues, shrink, zoom_start)
    return StrongWolfeResult(step=z.ts[z.low], value=z.fs[z.low], grad=z.gs[z.low],
                             num_evals=z.ls_iter + 1)


class ZoomLinesearchState(NamedTuple):
    """The state of :func:`zoom_linesearch`.

    Attributes:
      learning_rate: a scalar in the params' flat dtype (float64 if any param is float64,
        else float32): the step accepted by the last search (0 if none was taken; 1 after
        ``init``).
      value: a scalar, the objective at the new params, reusable as the next update's
        ``value`` (``+inf`` after ``init``).
      grad: a tree like the params, the gradient at the new params (zeros after ``init``).
      num_evals: an int32 scalar, the ``value_fn`` evaluations made by the last update.
      finite: a bool scalar, False if the value or gradient at the start of the last
        update was not finite (the update was then 0).
    """

    learning_rate: jax.Array
    value: jax.Array
    grad: Any
    num_evals: jax.Array
    finite: jax.Array


def zoom_linesearch(initial_step: ArrayLike = 1.0, c1: float = 1e-4, c2: float = 0.9,
                    tolerance_change: float = 1e-9,
                    max_linesearch_steps: int = 25) -> GradientTransformation:
    """Scale a descent direction ``d`` (the incoming updates) by a strong-Wolfe step ``t``.

    ``u <- t d`` with ``t`` from :func:`strong_wolfe_search` started at ``initial_step``:
    ``f(x + t d) <= f(x) + c1 t <g, d>`` and ``|<g(x + t d), d>| <= c2 |<g, d>|``.
    ``update(d, state, params, value=f(x), grad=g(x), value_fn=f)`` reads the objective from
    its extra arguments (``value``/``grad`` are evaluated if missing, costing one evaluation);
    the state keeps the value and gradient at the new params for reuse by the next update.
    A direction that is not a descent direction (``<g, d> >= 0``) gives a zero update, as does
    a non-finite value or gradient at the start (``state.finite`` is then False). A trial that
    overflows (non-finite value or gradient) only shrinks the step: the search bisects back
    towards the start until the values are finite again.

    Equivalents: torch's ``_strong_wolfe`` (same constants and interpolation); it plays the
    role of ``optax.scale_by_zoom_linesearch``, whose zoom differs in its details (optax
    bisects/interpolates differently and caps the step with ``max_learning_rate``), so steps
    agree only where both accept the first trial.

    Args:
      initial_step: the first trial step (torch's ``lr``), a positive number or scalar array.
      c1: sufficient-decrease (Armijo) constant, ``0 < c1 < c2``.
      c2: curvature constant, ``c1 < c2 < 1``.
      tolerance_change: stop zooming when ``|bracket| * max|d|`` is below this.
      max_linesearch_steps: trials after the first (torch's ``max_ls``).

    Returns:
      A :class:`GradientTransformation` whose state is a :class:`ZoomLinesearchState`; its
        ``update`` needs ``params`` and the keyword argument ``value_fn`` and returns ``t d``
        with the structure of the updates.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> f = lambda p: jnp.sum(p ** 2)
        >>> params = jnp.array([1.0, 2.0])
        >>> grad = 2 * params
        >>> tx = optxform.zoom_linesearch()
        >>> updates, state = tx.update(-grad, tx.init(params), params, value=f(params),
        ...                            grad=grad, value_fn=f)
        >>> updates  # t = 1 overshoots; the cubic step t = 0.5 lands on the minimum
        Array([-1., -2.], dtype=float32)
        >>> float(state.learning_rate), float(state.value), int(state.num_evals)
        (0.5, 0.0, 2)
    """
    check_positive("initial_step", initial_step)
    check_range("c1", c1, 0.0, 1.0, low_closed=False)
    check_range("c2", c2, 0.0, 1.0, low_closed=False)
    if not c1 < c2:
        raise ValueError(f"Invalid c1, c2: {c1!r}, {c2!r} (need 0 < c1 < c2 < 1)")
    check_non_negative("tolerance_change", tolerance_change)
    check_integer("max_linesearch_steps", max_linesearch_steps, minimum=0)

    def init(params):
        dtype = otu.flat_dtype(params)
        return ZoomLinesearchState(
            learning_rate=jnp.ones([], dtype), value=jnp.asarray(jnp.inf, dtype),
            grad=otu.zeros_like(params), num_evals=zero_count(),
            finite=jnp.asarray(True))

    def update(updates, state, params=None, *, value=None, grad=None, value_fn=None, **extra):
        del state, extra
        start = search_start(updates, params, value, grad, value_fn, "zoom_linesearch")
        dtype, value_and_grad, x, d, f0, g0, evals = start
        gtd = jnp.dot(g0, d)
        descent = (gtd < 0) & all_finite(f0, g0, d)

        def search(_):
            return strong_wolfe_search(value_and_grad, x, d, f0, g0, gtd, initial_step, c1=c1,
                                       c2=c2, tolerance_change=tolerance_change,
                                       max_ls=max_linesearch_steps)

        def skip(_):
            return StrongWolfeResult(step=jnp.zeros([], dtype), value=f0, grad=g0,
                                     num_evals=jnp.zeros([], jnp.int32))

        result = jax.lax.cond(descent, search, skip, None)
        new_state = ZoomLinesearchState(
            learning_rate=result.step, value=result.value,
            grad=otu.unravel_like(result.grad, params), num_evals=evals + result.num_evals,
            finite=all_finite(f0, g0))
        return otu.unravel_like(result.step * d, updates), new_state

    return GradientTransformation(init, update)
