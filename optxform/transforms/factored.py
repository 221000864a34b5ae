r"""Factored second moments: torch.optim.Adafactor's update direction.

The second moment of a matrix-shaped gradient is kept as a row mean and a column mean
(memory O(m + n) instead of O(mn)), over the last two axes of any param with two or more
dims; 0-D and 1-D params keep an ordinary (unfactored) moving average. The arithmetic
follows torch's single-tensor code (``lerp_`` with torch's small/large weight formulas,
``norm(...).square_()`` for the row/column means, ``clamp_`` + ``rsqrt_``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from optxform import tree as otu
from optxform.core import GradientTransformation, ScalarOrSchedule, Updates
from optxform.core.counters import increment, zero_count
from optxform.core.schedule import value_at
from optxform.core.validation import check_learning_rate, check_non_negative, check_range
from optxform.core.trees import require_params

__all__ = ["ScaleByFactoredRmsState", "scale_by_factored_rms"]


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _lerp(start, end, weight):
    """torch's ``lerp_``: ``start + w (end - start)`` if ``|w| < 0.5``, else
    ``end - (end - start)(1 - w)`` (so ``w = 1`` gives ``end`` exactly)."""
    small = jnp.abs(weight) < 0.5
    return jnp.where(small, start, end) + jnp.where(small, weight, weight - 1) * (end - start)


def _mean_square(g, axis: int):
    """``(g * g).mean(axis)`` computed as torch does: ``norm(g, dim=axis) ** 2 / size``."""
    norm = jnp.sqrt(jnp.sum(g * g, axis=axis, keepdims=True))
    return jnp.square(norm) / jnp.asarray(g.shape[axis], g.dtype)


def _rms(x):
    """``||x||_2 / sqrt(numel)`` (torch: ``x.norm(2) / x.numel() ** 0.5``)."""
    return jnp.sqrt(jnp.sum(x * x)) / jnp.sqrt(jnp.asarray(x.size, x.dtype))


class ScaleByFactoredRmsState(NamedTuple):
    count: jax.Array  # int32: updates made so far (torch's ``step``), saturating
    row: Updates      # ndim >= 2: row means of g^2, shape [..., m, 1] (``row_var``); else (0,)
    col: Updates      # ndim >= 2: column means of g^2, shape [..., 1, n] (``col_var``); else (0,)
    v: Updates        # ndim <= 1: moving average of g^2, the param's shape (``variance``);
    #                   else (0,). All three in the param dtype, as torch stores them.


def scale_by_factored_rms(beta2_decay=-0.8, eps=(None, 1e-3), d=1.0,
                          learning_rate: ScalarOrSchedule | None = None
                          ) -> GradientTransformation:
    r"""torch.optim.Adafactor's direction: factored RMS scaling, update clipping, param scale.

    With :math:`t` the step, :math:`\hat\beta_{2,t} = 1 - t^{\tau}` (:math:`\tau` =
    ``beta2_decay``), for a gradient :math:`G` with two or more dims (factored over its last
    two axes, :math:`m \times n`; leading axes are batch axes):

    .. math::

        R_t &= \operatorname{lerp}\bigl(R_{t-1}, \operatorname{mean}_{\text{cols}}(G^2),
               t^{\tau}\bigr), \qquad
        C_t = \operatorname{lerp}\bigl(C_{t-1}, \operatorname{mean}_{\text{rows}}(G^2),
               t^{\tau}\bigr) \\
        \hat V_t &= \frac{R_t C_t}{\max(\operatorname{mean}_{\text{rows}}(R_t),
                   \epsilon_1)}

    and for 0-D/1-D gradients :math:`\hat V_t = \operatorname{lerp}(\hat V_{t-1}, G^2,
    t^{\tau})`. Then

    .. math::

        U_t &= \frac{G_t}{\sqrt{\max(\hat V_t, \epsilon_1^2)}}, \qquad
        \hat U_t = \frac{U_t}{\max\bigl(1, \operatorname{RMS}(U_t)/d\bigr)} \\
        u_t &= \max\bigl(\epsilon_2, \operatorname{RMS}(\theta_{t-1})\bigr)
              \cdot \min\Bigl(1, \frac{1}{\eta_t \sqrt t}\Bigr) \cdot \hat U_t

    The alias multiplies by :math:`-\eta_t` afterwards (``scale_by_learning_rate``), giving
    torch's step :math:`-\alpha_t \hat U_t` with its relative step size
    :math:`\alpha_t = \max(\epsilon_2, \operatorname{RMS}(\theta_{t-1}))
    \min(\eta_t, 1/\sqrt t)`: torch uses the learning rate as the cap of the relative step
    :math:`\rho_t = \min(\eta_t, 1/\sqrt t)` (the paper uses 0.01). Weight decay is not part
    of this block: torch's Adafactor decays decoupled, ``theta *= 1 - lr * wd``
    (``add_decoupled_weight_decay`` after the learning rate in :func:`optxform.adafactor`).

    torch's quirks kept: :math:`\epsilon_1` is applied to the row-mean normaliser and under
    the square root (as :math:`\epsilon_1^2`), not added to :math:`G^2` as in the paper and
    optax; the means use ``norm() ** 2 / size``; :math:`\operatorname{RMS}(\theta)` is taken
    *before* weight decay; :math:`\hat\beta_{2,1} = 0`, so the first step uses :math:`G_1^2`
    exactly.

    Args:
      beta2_decay: :math:`\tau \le 0`; the second-moment weight of step :math:`t` is
        :math:`t^{\tau}`.
      eps: :math:`(\epsilon_1, \epsilon_2)`. :math:`\epsilon_1 \ge 0` or ``None`` for
        torch's default, the machine epsilon of each param's dtype
        (``jnp.finfo(dtype).eps``); :math:`\epsilon_2 \ge 0` floors the param RMS.
      d: the clipping threshold :math:`d \ge 1` on :math:`\operatorname{RMS}(U_t)`.
      learning_rate: the learning rate :math:`\eta` (a number or a schedule) the chain
        multiplies by afterwards; it caps the relative step as torch does. ``None``: no
        cap (the factor :math:`\min(1, 1/(\eta\sqrt t))` is 1).

    Needs ``params`` in ``update``. State: :class:`ScaleByFactoredRmsState`; the factors in
    the param dtype (as torch), computed in float32 or wider; unused slots are empty
    ``(0,)`` arrays so every leaf has the same three fields.

    Equivalent: the direction of ``torch.optim.Adafactor``. ``optax.scale_by_factored_rms``
    follows the paper instead (:math:`\epsilon` added to :math:`G^2`, factoring only dims
    of at least 128, a ``decay_rate`` schedule ``1 - t^{-0.8}`` and no clipping or param
    scaling inside the block), so the two differ.
    """
    if not (isinstance(eps, (tuple, list)) and len(eps) == 2):
        raise ValueError(f"Invalid eps: {eps!r} (eps must be a pair (eps1, eps2))")
    eps1, eps2 = eps
    check_range("beta2_decay", beta2_decay, -float("inf"), 0.0, low_closed=False,
                high_closed=True)
    if eps1 is not None:
        check_non_negative("eps[0]", eps1)
    check_non_negative("eps[1]", eps2)
    check_range("d", d, 1.0, float("inf"))
    if learning_rate is not None:
        check_learning_rate(learning_rate)

    def init(params):
        def empty(p):
            return jnp.zeros((0,), jnp.asarray(p).dtype)

        def reduced(p, axis):
            p = jnp.asarray(p)
            if p.ndim < 2:
                return empty(p)
            shape = list(p.shape)
            shape[axis] = 1
            return jnp.zeros(shape, p.dtype)

        return ScaleByFactoredRmsState(
            count=zero_count(),
            row=otu.tree_map(lambda p: reduced(p, -1), params),
            col=otu.tree_map(lambda p: reduced(p, -2), params),
            v=otu.tree_map(lambda p: empty(p) if jnp.ndim(p) >= 2 else jnp.zeros_like(p),
                           params))

    def update(updates, state, params=None, **extra):
        del extra
        require_params(params, updates, "scale_by_factored_rms")
        t = increment(state.count).astype(jnp.float32)
        weight = jnp.power(t, jnp.asarray(beta2_decay, jnp.float32))  # 1 - beta2_t
        if learning_rate is None:
            relative = jnp.ones([], jnp.float32)
        else:
            lr = value_at(learning_rate, state.count)
            relative = jnp.minimum(1.0, 1.0 / (lr * jnp.sqrt(t)))

        def leaf(g, p, row, col, v):
            dtype = otu.at_least_float32(g.dtype)
            if g.size == 0:
                return g, row, col, v
            if eps1 is None:  # torch: the machine epsilon of the param's dtype
                e1 = float(jnp.finfo(p.dtype).eps)
            else:
                e1 = eps1
            # torch squares eps1 in float64 before the float32 clamp (1e-30 ** 2 -> 0).
            e1_sq = jnp.asarray(e1 * e1 if _is_number(e1) else jnp.square(jnp.asarray(e1)),
                                dtype)
            e1 = jnp.asarray(e1, dtype)
            gc = g.astype(dtype)
            w = weight.astype(dtype)
            if g.ndim >= 2:
                row = _lerp(row.astype(dtype), _mean_square(gc, -1), w)
                col = _lerp(col.astype(dtype), _mean_square(gc, -2), w)
                normaliser = jnp.maximum(jnp.mean(row, axis=-2, keepdims=True), e1)
                var = (row * col) / normaliser
            else:
                v = _lerp(v.astype(dtype), gc * gc, w)
                var = v
            u = jax.lax.rsqrt(jnp.maximum(var, e1_sq)) * gc
            clip = jnp.maximum(1.0, _rms(u) / jnp.asarray(d, dtype))
            param_scale = jnp.maximum(jnp.asarray(eps2, dtype), _rms(p.astype(dtype)))
            factor = param_scale * relative.astype(dtype) / clip
            return (u * factor).astype(g.dtype), row, col, v

        leaves = []
        flat_updates, treedef = jax.tree.flatten(updates)
        flat = zip(flat_updates, treedef.flatten_up_to(params),
                   treedef.flatten_up_to(state.row), treedef.flatten_up_to(state.col),
                   treedef.flatten_up_to(state.v))
        for g, p, row, col, v in flat:
            leaves.append(leaf(g, p, row, col, v))
        new_updates = treedef.unflatten([x[0] for x in leaves])

        def store(i, old):
            return treedef.unflatten([x[i].astype(o.dtype) for x, o in
                                      zip(leaves, treedef.flatten_up_to(old))])

        new_state = ScaleByFactoredRmsState(
            count=increment(state.count), row=store(1, state.row), col=store(2, state.col),
            v=store(3, state.v))
        return new_updates, new_state

    return GradientTransformation(init, update)
