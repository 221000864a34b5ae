r"""Factored second moments: torch.optim.Adafactor's update direction.

The second moment of a matrix-shaped gradient is kept as a row mean and a column mean
(memory O(m + n) instead of O(mn)), over the last two axes of any param with two or more
dims; 0-D and 1-D params keep an ordinary (unfactored) moving average. The arithmetic
follows torch's single-tensor code (``lerp_`` with torch's small/large weight formulas,
``norm(...).square_()`` for the row/column means, ``clamp_`` + ``rsqrt_``). It is a
declared "matrix" :class:`~optxform.rules.Rule` (its buffers are shaped from each param's
shape) lifted into a transform by :func:`~optxform.rules.lift`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from optxform.core import GradientTransformation, ScalarOrSchedule, Updates
from optxform.core.validation import check_non_negative, check_range
from optxform.rules import Buffer, Hyperparameter, Leaf, Rule, Step, lift
from optxform.tree.numerics import as_f32, is_number, lerp

__all__ = ["ScaleByFactoredRmsState", "scale_by_factored_rms"]


def _mean_square(g, axis: int):
    """``(g * g).mean(axis)`` computed as torch does: ``norm(g, dim=axis) ** 2 / size``."""
    norm = jnp.sqrt(jnp.sum(g * g, axis=axis, keepdims=True))
    return jnp.square(norm) / jnp.asarray(g.shape[axis], g.dtype)


def _rms(x):
    """``||x||_2 / sqrt(numel)`` (torch: ``x.norm(2) / x.numel() ** 0.5``)."""
    return jnp.sqrt(jnp.sum(x * x)) / jnp.sqrt(jnp.asarray(x.size, x.dtype))


# Buffer shapes as functions of the param's shape: factors over the last two axes for two
# or more dims, a full moment otherwise; the unused slots are empty ``(0,)`` arrays.
def _row_shape(shape):
    return (*shape[:-1], 1) if len(shape) >= 2 else (0,)


def _col_shape(shape):
    return (*shape[:-2], 1, shape[-1]) if len(shape) >= 2 else (0,)


def _full_shape(shape):
    return (0,) if len(shape) >= 2 else shape


class ScaleByFactoredRmsState(NamedTuple):
    """The state of :func:`scale_by_factored_rms` (torch Adafactor's, by other names).

    Every param has a leaf in each of ``row``, ``col`` and ``v``; the slots a param does
    not use are empty ``(0,)`` arrays. All three are float32 or wider (or ``nu_dtype``).

    Attributes:
      count: int32 scalar, the number of updates made so far (torch's ``step``),
        saturating.
      row: for a param with two or more dims, the moving average of the row means of
        :math:`G^2`, shape ``[..., m, 1]`` (torch's ``row_var``); else ``(0,)``.
      col: for a param with two or more dims, the moving average of the column means of
        :math:`G^2`, shape ``[..., 1, n]`` (torch's ``col_var``); else ``(0,)``.
      v: for a 0-D or 1-D param, the moving average of :math:`G^2`, the param's shape
        (torch's ``variance``); else ``(0,)``.
    """

    count: jax.Array
    row: Updates
    col: Updates
    v: Updates


def _factored_step(st: Step) -> tuple[dict, dict]:
    h = st.h
    t = st.t.astype(jnp.float32)
    lr, eps1 = h["learning_rate"], h["eps1"]
    relative = (jnp.ones([], jnp.float32) if lr is None
                else jnp.minimum(1.0, 1.0 / (as_f32(lr) * jnp.sqrt(t))))
    # torch squares eps1 in float64 before the float32 clamp (1e-30 ** 2 -> 0).
    eps1_sq = None if eps1 is None else (eps1 * eps1 if is_number(eps1)
                                         else jnp.square(jnp.asarray(eps1)))
    return {"weight": jnp.power(t, as_f32(h["beta2_decay"])),  # 1 - beta2_t
            "relative": relative, "eps1": eps1, "eps1_sq": eps1_sq, "eps2": h["eps2"],
            "d": h["d"]}, {}


def _factored_leaf(x: Leaf) -> tuple[jax.Array, dict]:
    s, g = x.s, x.g
    row, col, v = x.buffers["row"], x.buffers["col"], x.buffers["v"]
    if g.size == 0:
        return g, {"row": row, "col": col, "v": v}
    if s["eps1"] is None:  # torch: the machine epsilon of the param's dtype
        e1 = float(jnp.finfo(x.dtype).eps)
        eps1, eps1_sq = jnp.asarray(e1, g.dtype), jnp.asarray(e1 * e1, g.dtype)
    else:
        eps1, eps1_sq = s["eps1"], s["eps1_sq"]
    if g.ndim >= 2:
        row = lerp(row, _mean_square(g, -1), s["weight"])
        col = lerp(col, _mean_square(g, -2), s["weight"])
        var = (row * col) / jnp.maximum(jnp.mean(row, axis=-2, keepdims=True), eps1)
    else:
        v = lerp(v, g * g, s["weight"])
        var = v
    u = jax.lax.rsqrt(jnp.maximum(var, eps1_sq)) * g
    clip = jnp.maximum(1.0, _rms(u) / s["d"])
    param_scale = jnp.maximum(s["eps2"], _rms(x.p))
    return u * (param_scale * s["relative"] / clip), {"row": row, "col": col, "v": v}


FACTORED_RMS = Rule(
    # Factors are means over a leaf's rows and columns: the rule needs the leaf's shape.
    name="scale_by_factored_rms", kind="matrix", state=ScaleByFactoredRmsState,
    hyperparameters=(
        Hyperparameter("beta2_decay", lambda n, v: check_range(
            n, v, -float("inf"), 0.0, low_closed=False, high_closed=True)),
        Hyperparameter("eps1", lambda n, v: check_non_negative("eps[0]", v), optional=True),
        Hyperparameter("eps2", lambda n, v: check_non_negative("eps[1]", v)),
        Hyperparameter("d", lambda n, v: check_range(n, v, 1.0, float("inf"))),
        Hyperparameter("learning_rate", check_non_negative, schedule=True, optional=True)),
    buffers=(Buffer("row", "accumulator", dtype_option="nu_dtype", shape=_row_shape),
             Buffer("col", "accumulator", dtype_option="nu_dtype", shape=_col_shape),
             Buffer("v", "accumulator", dtype_option="nu_dtype", shape=_full_shape)),
    reads_params=True, complex_params="reject",  # torch's Adafactor rejects complex params
    per_step=_factored_step, leaf=_factored_leaf)


def scale_by_factored_rms(beta2_decay: ArrayLike = -0.8,
                          eps: tuple[float | None, float] = (None, 1e-3), d: ArrayLike = 1.0,
                          learning_rate: ScalarOrSchedule | None = None, *,
                          nu_dtype: DTypeLike | None = None) -> GradientTransformation:
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
      nu_dtype: storage dtype of the factors and of the unfactored moment (e.g.
        ``jnp.bfloat16``); ``None``: float32 or wider. Not in torch.

    Returns:
      A :class:`GradientTransformation` whose state is a
        :class:`ScaleByFactoredRmsState`; the factors are kept in float32 or wider by
        default (torch keeps them in the param dtype, where a float16 mean of squares
        overflows at a gradient of 256) and computed in float32 or wider; unused slots are
        empty ``(0,)`` arrays so every leaf has the same three fields.

    Needs ``params`` in ``update``. Complex params raise ``ValueError``, as torch's
    Adafactor rejects them.

    Equivalent: the direction of ``torch.optim.Adafactor``. ``optax.scale_by_factored_rms``
    follows the paper instead (:math:`\epsilon` added to :math:`G^2`, factoring only dims
    of at least 128, a ``decay_rate`` schedule ``1 - t^{-0.8}`` and no clipping or param
    scaling inside the block), so the two differ.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.scale_by_factored_rms()
        >>> params = {"w": jnp.ones((2, 3)), "b": jnp.ones(3)}
        >>> state = tx.init(params)
        >>> state.row["w"].shape, state.col["w"].shape, state.v["b"].shape
        ((2, 1), (1, 3), (3,))
        >>> grads = {"w": jnp.full((2, 3), 2.0), "b": jnp.array([1.0, -2.0, 3.0])}
        >>> updates, state = tx.update(grads, state, params)
        >>> updates["b"]  # the first step: RMS(params) * sign(g)
        Array([ 1., -1.,  1.], dtype=float32)
    """
    if not (isinstance(eps, (tuple, list)) and len(eps) == 2):
        raise ValueError(f"Invalid eps: {eps!r} (eps must be a pair (eps1, eps2))")
    return lift(FACTORED_RMS, beta2_decay=beta2_decay, eps1=eps[0], eps2=eps[1], d=d,
                learning_rate=learning_rate, nu_dtype=nu_dtype)
