"""Momentum: torch's momentum buffer (trace), a declared elementwise rule."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from optxform.core import GradientTransformation
from optxform.core.validation import check_flag, check_non_negative, check_range
from optxform.rules import Buffer, Hyperparameter, Leaf, Rule, Step, lift
from optxform.tree.math import unfused
from optxform.tree.numerics import is_number, one_minus

__all__ = ["TraceState", "trace"]


class TraceState(NamedTuple):
    """The state of :func:`trace` (torch's ``momentum_buffer``).

    Attributes:
      count: int32 scalar, the number of updates made so far (saturating); 0 means the
        buffer is still unset and the next update starts it at the gradient.
      trace: the momentum buffer :math:`b`, a tree like the params, in the param dtype (or
        ``accumulator_dtype``; a complex param's as its real view, with a trailing axis
        of 2).
    """

    count: jax.Array
    trace: object


def _trace_step(st: Step) -> tuple[dict, dict]:
    decay = st.h["decay"]
    first = st.count == 0
    if not is_number(decay):  # an injected decay of 0 passes updates through, as torch's
        first = jnp.logical_or(first, jnp.asarray(decay) == 0)  # momentum=0 does
    return {"decay": decay, "w": one_minus(st.h["dampening"]),
            "first": first.astype(jnp.float32)}, {}


def _trace_leaf(x: Leaf) -> tuple[jax.Array, dict]:
    s, g = x.s, x.g
    # torch: buf.mul_(m).add_(g, alpha=1 - dampening), i.e. the product m * buf rounded,
    # then one fused multiply-add.
    kept = unfused(s["decay"] * x.buffers["trace"])
    new = kept + g if "dampening" in x.zero else kept + s["w"] * g
    buf = jnp.where(s["first"].astype(bool), g, new)
    u = g + s["decay"] * buf if x.opt["nesterov"] else buf
    return u, {"trace": buf}


TRACE = Rule(
    name="trace", kind="elementwise", state=TraceState,
    hyperparameters=(Hyperparameter("decay", check_non_negative),
                     Hyperparameter("dampening",
                                    lambda n, v: check_range(n, v, 0.0, 1.0, high_closed=True))),
    buffers=(Buffer("trace", "param", dtype_option="accumulator_dtype"),), options=("nesterov",),
    neutral_when_zero="decay", per_step=_trace_step, leaf=_trace_leaf)


def trace(decay: ArrayLike = 0.9, dampening: ArrayLike = 0.0, nesterov: bool = False,
          accumulator_dtype: DTypeLike | None = None) -> GradientTransformation:
    r"""torch's momentum buffer: ``b <- decay * b + (1 - dampening) * g``, started at ``g``.

    .. math::

        b_1 = g_1, \qquad b_t = \mu\, b_{t-1} + (1 - \tau)\, g_t \quad (t > 1),

        u_t = g_t + \mu\, b_t \ \text{(nesterov)} \quad\text{else}\quad u_t = b_t,

    with :math:`\mu` = ``decay`` and :math:`\tau` = ``dampening``. The quirk that sets this
    apart from the textbook rule is torch's: the buffer starts *at* the first gradient (not
    at ``(1 - dampening) * g``); with ``dampening=0`` the two coincide, and then this equals
    ``optax.trace(decay, nesterov)``. ``decay=0`` passes updates through unchanged whatever
    ``dampening`` is, as torch does for ``momentum=0`` (given as the number 0, the buffer
    is then left as it is). A complex param is treated as torch does, as its real and
    imaginary parts (``torch.view_as_real``).

    Args:
      decay: the momentum coefficient :math:`\mu \ge 0` (torch ``momentum``).
      dampening: :math:`\tau \in [0, 1]`; scales the incoming gradient by :math:`1 - \tau`
        from the second step on.
      nesterov: return ``g + decay * b`` instead of ``b`` (torch ``nesterov=True``).
      accumulator_dtype: storage dtype of the buffer (optax's name); ``None``: the param
        dtype.

    Returns:
      A :class:`GradientTransformation` whose state is a :class:`TraceState`; ``trace``
        leaves take the param dtype (like torch's ``momentum_buffer``; a complex param's
        as its real view, with a trailing axis of 2), ``count`` is a saturating int32.

    The update is computed in float32 or wider.
    Equivalent: the momentum part of ``torch.optim.SGD``; ``optax.trace`` (dampening 0).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.trace(decay=0.5, dampening=0.5)
        >>> state = tx.init({"w": jnp.zeros(1)})
        >>> for g in (2.0, 4.0):  # b_1 = g_1, then b_2 = 0.5 * b_1 + (1 - 0.5) * g_2
        ...     updates, state = tx.update({"w": jnp.array([g])}, state)
        ...     print(updates["w"])
        [2.]
        [3.]
    """
    check_flag("nesterov", nesterov)
    return lift(TRACE, decay=decay, dampening=dampening, nesterov=bool(nesterov),
                accumulator_dtype=accumulator_dtype)
