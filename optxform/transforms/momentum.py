"""Momentum: torch's momentum buffer (trace)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from optxform import tree as otu
from optxform.core import GradientTransformation
from optxform.core.counters import increment, zero_count
from optxform.core.validation import check_non_negative

__all__ = ["TraceState", "trace"]


class TraceState(NamedTuple):
    count: jax.Array  # int32: updates made so far (0 means the buffer is still unset)
    trace: object     # the momentum buffer, one leaf per param, in the param's dtype


def trace(decay=0.9, dampening=0.0, nesterov: bool = False) -> GradientTransformation:
    r"""torch's momentum buffer: ``b <- decay * b + (1 - dampening) * g``, started at ``g``.

    .. math::

        b_1 = g_1, \qquad b_t = \mu\, b_{t-1} + (1 - \tau)\, g_t \quad (t > 1),

        u_t = g_t + \mu\, b_t \ \text{(nesterov)} \quad\text{else}\quad u_t = b_t,

    with :math:`\mu` = ``decay`` and :math:`\tau` = ``dampening``. The quirk that sets this
    apart from the textbook rule is torch's: the buffer starts *at* the first gradient (not
    at ``(1 - dampening) * g``); with ``dampening=0`` the two coincide, and then this equals
    ``optax.trace(decay, nesterov)``. ``decay=0`` passes updates through unchanged whatever
    ``dampening`` is, as torch does for ``momentum=0``.

    Args:
      decay: the momentum coefficient :math:`\mu \ge 0` (torch ``momentum``).
      dampening: :math:`\tau`; scales the incoming gradient from the second step on.
      nesterov: return ``g + decay * b`` instead of ``b`` (torch ``nesterov=True``).

    State: :class:`TraceState`; ``trace`` leaves take the param dtype (like torch's
    ``momentum_buffer``), ``count`` is a saturating int32.
    Equivalent: the momentum part of ``torch.optim.SGD``; ``optax.trace`` (dampening 0).
    """
    check_non_negative("decay", decay)
    no_dampening = isinstance(dampening, (int, float)) and dampening == 0

    def init(params):
        return TraceState(count=zero_count(), trace=otu.zeros_like(params))

    def update(updates, state, params=None, **extra):
        del params, extra
        first = state.count == 0
        if not (isinstance(decay, (int, float)) and decay != 0):
            first = jnp.logical_or(first, jnp.asarray(decay) == 0)

        def buffer(g, b):
            b = b.astype(g.dtype)
            d = otu.as_dtype_of(decay, g)
            # torch: buf.mul_(m).add_(g, alpha=1 - dampening), i.e. the product m * buf
            # rounded, then one fused multiply-add.
            if no_dampening:
                new = otu.unfused(d * b) + g
            else:
                new = otu.unfused(d * b) + otu.as_dtype_of(1.0 - dampening, g) * g
            return jnp.where(first, g, new)

        new_trace = otu.tree_map(buffer, updates, state.trace)
        if nesterov:
            updates = otu.tree_map(lambda g, b: g + otu.as_dtype_of(decay, g) * b,
                                   updates, new_trace)
        else:
            updates = new_trace
        new_state = TraceState(count=increment(state.count),
                               trace=otu.cast_like(new_trace, state.trace))
        return updates, new_state

    return GradientTransformation(init, update)
