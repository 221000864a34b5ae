"""The L-BFGS direction: a ring buffer of curvature pairs and the two-loop recursion.

``LbfgsMemory`` holds the last ``m`` pairs ``(s_i, y_i) = (x_{i+1} - x_i, g_{i+1} - g_i)`` in
fixed-size ``(m, n)`` arrays (a ring buffer, so shapes never change under ``jit``);
:func:`remember` adds a pair, :func:`lbfgs_direction` applies the two-loop recursion.
:func:`scale_by_lbfgs` is the chainable transform; ``lbfgs_iterations`` (iterations.py) and
``optxform.lbfgs`` use the same two functions inside torch's ``step(closure)`` loop.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from optxform import tree as otu
from optxform.core import GradientTransformation
from optxform.core.counters import increment, zero_count
from optxform.core.validation import check_integer, check_non_negative
from optxform.core.trees import require_params

__all__ = ["LbfgsMemory", "ScaleByLbfgsState", "scale_by_lbfgs"]

CURVATURE_THRESHOLD = 1e-10  # torch stores a pair only if <y, s> exceeds this


class LbfgsMemory(NamedTuple):
    r"""The last ``m`` curvature pairs of L-BFGS, as a ring buffer of fixed shapes.

    ``n`` is the number of params (all leaves flattened, torch's ``_gather_flat_grad``
    order) and ``m`` is ``history_size``; the float arrays have the params' flat dtype
    (float64 if any param is float64, else float32). Slots beyond ``size`` hold zeros or
    stale pairs and are never read.

    Attributes:
      old_dirs: ``(m, n)``, the gradient differences :math:`y_i = g_{i+1} - g_i` (torch's
        ``old_dirs``).
      old_stps: ``(m, n)``, the steps :math:`s_i = x_{i+1} - x_i` (torch's ``old_stps``).
      ro: ``(m,)``, :math:`\rho_i = 1 / \langle y_i, s_i \rangle` (torch's ``ro``).
      h_diag: a scalar, :math:`\langle y, s \rangle / \langle y, y \rangle` of the newest
        pair, the scale of the initial inverse Hessian; 1 before any pair (torch's
        ``H_diag``).
      size: an int32 scalar, the number of pairs held (at most ``m``).
      head: an int32 scalar, the slot the next pair is written to.
    """

    old_dirs: jax.Array
    old_stps: jax.Array
    ro: jax.Array
    h_diag: jax.Array
    size: jax.Array
    head: jax.Array


def empty_memory(history_size: int, n: int, dtype) -> LbfgsMemory:
    """A memory with room for ``history_size`` pairs of length-``n`` vectors, holding none."""
    return LbfgsMemory(
        old_dirs=jnp.zeros([history_size, n], dtype), old_stps=jnp.zeros([history_size, n], dtype),
        ro=jnp.zeros([history_size], dtype), h_diag=jnp.ones([], dtype),
        size=zero_count(), head=zero_count())


def remember(memory: LbfgsMemory, s: jax.Array, y: jax.Array,
             curvature_threshold=CURVATURE_THRESHOLD) -> LbfgsMemory:
    """Add the pair ``(s, y)`` if ``<y, s> > curvature_threshold``, dropping the oldest when full.

    A stored pair also sets ``h_diag = <y, s> / <y, y>``, the scale of the initial inverse
    Hessian. A pair failing the curvature test leaves the memory unchanged (torch's rule).
    """
    history_size = memory.ro.shape[0]
    ys = jnp.dot(y, s)
    accept = ys > curvature_threshold
    slot = memory.head

    def write(buffer, row):
        return buffer.at[slot].set(jnp.where(accept, row, buffer[slot]))

    return LbfgsMemory(
        old_dirs=write(memory.old_dirs, y),
        old_stps=write(memory.old_stps, s),
        ro=write(memory.ro, 1.0 / ys),
        h_diag=jnp.where(accept, ys / jnp.dot(y, y), memory.h_diag),
        size=jnp.where(accept, jnp.minimum(memory.size + 1, history_size), memory.size),
        head=jnp.where(accept, (slot + 1) % history_size, slot).astype(jnp.int32),
    )


def lbfgs_direction(memory: LbfgsMemory, grad: jax.Array) -> jax.Array:
    """The quasi-Newton descent direction ``d = -H g`` by the two-loop recursion.

    ``q = -g``; newest to oldest: ``a_i = rho_i <s_i, q>``, ``q -= a_i y_i``; then
    ``r = h_diag q``; oldest to newest: ``b_i = rho_i <y_i, r>``, ``r += (a_i - b_i) s_i``.
    Only the ``size`` stored pairs are visited (a dynamic trip count), in the order torch
    uses, so the arithmetic matches torch's ``LBFGS`` operation for operation.
    """
    history_size = memory.ro.shape[0]
    oldest = memory.head - memory.size  # may be negative; slots are taken modulo m

    def newest_first(i, carry):
        q, alphas = carry
        slot = (memory.head - 1 - i + history_size) % history_size
        alpha = jnp.dot(memory.old_stps[slot], q) * memory.ro[slot]
        return q - alpha * memory.old_dirs[slot], alphas.at[slot].set(alpha)

    q, alphas = jax.lax.fori_loop(0, memory.size, newest_first,
                                  (-grad, jnp.zeros_like(memory.ro)))

    def oldest_first(i, r):
        slot = (oldest + i + history_size) % history_size
        beta = jnp.dot(memory.old_dirs[slot], r) * memory.ro[slot]
        return r + (alphas[slot] - beta) * memory.old_stps[slot]

    return jax.lax.fori_loop(0, memory.size, oldest_first, q * memory.h_diag)


def first_step_scale(grad: jax.Array) -> jax.Array:
    """torch's first-iteration step factor ``min(1, 1 / ||g||_1)``."""
    return jnp.minimum(1.0, 1.0 / jnp.sum(jnp.abs(grad)))


class ScaleByLbfgsState(NamedTuple):
    """The state of :func:`scale_by_lbfgs`; ``n`` is the number of params (all leaves,
    flattened), float arrays have the params' flat dtype.

    Attributes:
      count: an int32 scalar, the updates made.
      params: ``(n,)``, the params at the last update (for :math:`s = x - x_{prev}`).
      grad: ``(n,)``, the incoming updates (the gradient) at the last update (for
        :math:`y = g - g_{prev}`).
      memory: the :class:`LbfgsMemory` of curvature pairs.
    """

    count: jax.Array
    params: jax.Array
    grad: jax.Array
    memory: LbfgsMemory


def scale_by_lbfgs(history_size: int = 100, scale_init_precond: bool = True,
                   flip_sign: bool = True,
                   curvature_threshold: float = CURVATURE_THRESHOLD) -> GradientTransformation:
    """Precondition the gradient by the L-BFGS inverse-Hessian estimate: ``u <- -H g``.

    Each update first stores the pair ``s = x - x_prev``, ``y = g - g_prev`` (if
    ``<y, s> > curvature_threshold``; the oldest of ``history_size`` pairs is dropped), then
    returns ``d = -H g`` from the two-loop recursion with ``H_0 = (<y, s> / <y, y>) I`` of the
    newest pair. On the first update ``d = -g``, times ``min(1, 1 / ||g||_1)`` with
    ``scale_init_precond`` (torch's first step length, moved into the direction). ``d`` is
    a descent direction ready for a line search: ``chain(scale_by_lbfgs(),
    zoom_linesearch())`` is one torch L-BFGS iteration per update (``lbfgs`` runs up to
    ``max_iter`` of them per update). ``flip_sign=False`` returns ``+H g`` instead.

    Equivalents: torch ``LBFGS``'s direction (``d`` in ``step``). ``optax.scale_by_lbfgs``
    returns ``+H g`` (use ``flip_sign=False``); it also stores every pair with ``<y, s> != 0``
    (curvature_threshold 0 up to that detail), and scales the first step by ``min(1,
    1/||g||_2)`` (the l2 norm; torch and this use l1); with ``memory_size=m`` it equals this
    with ``history_size=m`` wherever those differences do not bite.

    Args:
      history_size: pairs kept (torch ``history_size``; optax ``memory_size``).
      scale_init_precond: scale the first direction by ``min(1, 1 / ||g||_1)``.
      flip_sign: return the descent direction ``-H g`` (default) rather than ``+H g``.
      curvature_threshold: store a pair only if ``<y, s>`` exceeds this (torch: 1e-10).

    Returns:
      A :class:`GradientTransformation` whose state is a :class:`ScaleByLbfgsState`; its
        ``update`` needs ``params`` and returns the direction with the structure of the
        updates.

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> f = lambda p: (p[0] - 1.0) ** 2 + 10.0 * (p[1] + 2.0) ** 2
        >>> params = jnp.zeros(2)
        >>> direction = optxform.scale_by_lbfgs()
        >>> d, _ = direction.update(jax.grad(f)(params), direction.init(params), params)
        >>> d  # the first direction: -g / ||g||_1, with g = (-2, 40)
        Array([ 0.04761905, -0.95238096], dtype=float32)
        >>> tx = optxform.chain(optxform.scale_by_lbfgs(), optxform.zoom_linesearch())
        >>> state = tx.init(params)
        >>> for _ in range(6):
        ...     value, grad = jax.value_and_grad(f)(params)
        ...     updates, state = tx.update(grad, state, params, value=value, grad=grad,
        ...                                value_fn=f)
        ...     params = optxform.apply_updates(params, updates)
        >>> print(jnp.round(params, 4))
        [ 1. -2.]
    """
    check_integer("history_size", history_size, minimum=1)
    check_non_negative("curvature_threshold", curvature_threshold)
    sign = 1.0 if flip_sign else -1.0

    def init(params):
        dtype = otu.flat_dtype(params)
        x = otu.ravel(params, dtype)
        return ScaleByLbfgsState(count=zero_count(), params=jnp.zeros_like(x),
                                 grad=jnp.zeros_like(x),
                                 memory=empty_memory(history_size, x.shape[0], dtype))

    def update(updates, state, params=None, **extra):
        del extra
        require_params(params, updates, "scale_by_lbfgs")  # s = x - x_prev needs x
        dtype = otu.flat_dtype(params)
        x = otu.ravel(params, dtype)
        g = otu.ravel(updates, dtype)
        first = state.count == 0
        s = jnp.where(first, jnp.zeros_like(x), x - state.params)
        memory = remember(state.memory, s, g - state.grad, curvature_threshold)
        d = lbfgs_direction(memory, g)
        if scale_init_precond:
            d = jnp.where(first, d * first_step_scale(g), d)
        new_state = ScaleByLbfgsState(count=increment(state.count), params=x, grad=g,
                                      memory=memory)
        return otu.unravel_like(sign * d, updates), new_state

    return GradientTransformation(init, update)
