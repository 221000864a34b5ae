"""The lbfgs optimizer alias (torch.optim.LBFGS)."""

from __future__ import annotations

from jax.typing import ArrayLike

from optxform.core import GradientTransformation, ScalarOrSchedule, chain
from optxform.core.base import declares_hyperparameters
from optxform.quasi_newton.iterations import lbfgs_iterations

__all__ = ["lbfgs"]


@declares_hyperparameters("learning_rate", "tolerance_grad", "tolerance_change")
def lbfgs(learning_rate: ScalarOrSchedule = 1.0, max_iter: int = 20, max_eval: int | None = None,
          tolerance_grad: ArrayLike = 1e-7, tolerance_change: ArrayLike = 1e-9,
          history_size: int = 100, line_search_fn: str | None = None) -> GradientTransformation:
    r"""L-BFGS; one ``update`` performs one torch ``LBFGS.step(closure)``.

    Call ``update(grads, state, params, value=f(params), value_fn=f)``: ``value_fn`` plays
    the role of torch's closure (gradients come from ``jax.value_and_grad(value_fn)``), and
    ``grads``/``value`` are its first evaluation. The returned updates are
    ``new_params - params`` after up to ``max_iter`` inner iterations, all inside one
    compiled ``lax.while_loop`` (static shapes: the history is a ring buffer of
    ``history_size`` pairs), so the update jits, vmaps over independent problems, and scans.

    Algorithm (torch's, from minFunc), starting from ``f, g`` at ``x``:

    .. code-block:: text

        stop at once if max|g| <= tolerance_grad
        repeat (k = 1, 2, ... <= max_iter):
            if this is the very first iteration ever:  d = -g, forget all pairs
            else: s = t d, y = g - g_prev; keep (s, y) if <y, s> > 1e-10 (oldest dropped)
                  d = -H g   (two-loop recursion, H_0 = <y,s>/<y,y> of the newest pair)
            t = lr * min(1, 1/||g||_1) on the very first iteration ever, else lr
            stop if <g, d> > -tolerance_change               (no move)
            strong_wolfe: t, f, g <- strong-Wolfe search from t (c1=1e-4, c2=0.9, zoom
                          tolerance 1e-9, at most max_eval - evals_so_far trials), x += t d
            None:         x += t d; f, g <- value_fn(x) unless k == max_iter
            stop if k == max_iter, evals >= max_eval, max|g| <= tolerance_grad,
                    max|t d| <= tolerance_change, or |f - f_prev| < tolerance_change

    Quirks kept from torch: the first-step factor ``min(1, 1/||g||_1)`` applies only to the
    very first iteration of the first update; ``max_eval`` defaults to ``max_iter * 5 // 4``
    and the search may overshoot it by one evaluation; the search's tolerance is always
    1e-9 (torch does not pass ``tolerance_change`` to it); with a fixed step the last
    iteration is not re-evaluated. The state keeps what torch keeps across ``step`` calls
    (``d, t, old_dirs, old_stps, ro, H_diag, prev_flat_grad, prev_loss, n_iter,
    func_evals``). A trial of the search whose value or gradient is not finite (an overflow)
    halves the step, as torch's search does when the gradient is NaN. Difference: with a
    fixed step, a non-finite gradient stops the update at the last good params
    (``state.finite`` is then False) instead of turning the params into NaN.

    Args:
      learning_rate: step length (the initial trial step with ``'strong_wolfe'``).
      max_iter: maximal inner iterations per update.
      max_eval: maximal objective evaluations per update (default ``max_iter * 5 // 4``).
      tolerance_grad: stop when ``max|g| <= tolerance_grad``.
      tolerance_change: stop when the step or the change of the value is below this.
      history_size: curvature pairs kept.
      line_search_fn: ``None`` (fixed step) or ``'strong_wolfe'``.

    Returns:
      A :class:`GradientTransformation` whose ``update`` needs ``params``, ``value`` and
        ``value_fn``; its state is a 1-tuple holding an :class:`LbfgsIterationsState`
        (the last direction and step, the curvature history as a ring buffer
        :class:`LbfgsMemory`, counters and the ``finite`` flag).

    Equivalents: ``torch.optim.LBFGS(params, lr=learning_rate, ...)`` with the same
    options (same trajectory, see docs/lbfgs.md for measured agreement). ``optax.lbfgs`` is
    one iteration per update with optax's own zoom search and first-step scaling; the
    optxform analogue is ``chain(scale_by_lbfgs(), zoom_linesearch())``.

    Reference: Nocedal & Wright, *Numerical Optimization*, 2nd ed., algorithms 7.4-7.5 and 3.5-3.6.

    Example:
      >>> import jax, jax.numpy as jnp, optxform
      >>> f = lambda p: jnp.sum((p - 3.0) ** 2)
      >>> tx = optxform.lbfgs(line_search_fn="strong_wolfe")
      >>> params = jnp.zeros(2)
      >>> state = tx.init(params)
      >>> loss, grads = jax.value_and_grad(f)(params)
      >>> updates, state = tx.update(grads, state, params, value=loss, value_fn=f)
      >>> print(optxform.apply_updates(params, updates))
      [3. 3.]
    """
    return chain(lbfgs_iterations(learning_rate=learning_rate, max_iter=max_iter,
                                  max_eval=max_eval, tolerance_grad=tolerance_grad,
                                  tolerance_change=tolerance_change, history_size=history_size,
                                  line_search_fn=line_search_fn))
