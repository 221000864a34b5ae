r"""Adan (Xie et al. 2022): Nesterov-style momentum from gradient differences.

One declared rule, :func:`scale_by_adan`, of kind ``"global"``: with ``max_grad_norm`` it
first rescales the whole gradient tree by one clip ratio (a reduction over every leaf),
then runs three moving averages per element. The float32 arithmetic follows
``pytorch-optimizer``'s ``Adan`` (4.1.0, its batched ``foreach`` path) step by step; the
learning rate and weight decay are separate chain members (``optxform/optimizers/adan.py``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from optxform import tree as otu
from optxform.core import GradientTransformation
from optxform.core.validation import check_flag
from optxform.rules import Buffer, Hyperparameter, Leaf, Rule, Step, beta, lift, non_negative
from optxform.tree.numerics import (as_f32, bias_correction, divide, ema_of_square, is_zero,
                                    lerp, one_minus)
from optxform.tree.math import unfused

__all__ = ["ScaleByAdanState", "scale_by_adan"]


class ScaleByAdanState(NamedTuple):
    """The state of :func:`scale_by_adan`.

    Attributes:
      count: int32 updates made so far (saturating).
      mu: the gradient average (the reference's ``exp_avg``): param dtype, or ``mu_dtype``.
      delta: the gradient-difference average (``exp_avg_diff``): like ``mu``.
      nu: the squared corrected-gradient average (``exp_avg_sq``): float32 or wider, or
        ``nu_dtype``.
      prev: the previous (clipped, sign-flipped) gradient: param dtype.
    """

    count: jax.Array  # type: ignore[assignment]  # (shadows tuple.count)
    mu: Any
    delta: Any
    nu: Any
    prev: Any


def _clip_ratio(updates: Any, params: Any, h: dict) -> dict:
    r"""The reference's clip ratio :math:`\min(1, c / (\|g\|_2 + \epsilon))`, in float32.

    As ``pytorch-optimizer``'s ``get_global_gradient_norm``: each leaf's norm in its own
    dtype, then squared and summed in float32 (float64 gradients too), so the ratio is a
    float32 number whatever the params' dtype.
    """
    del params
    max_norm = h["max_grad_norm"]
    if is_zero(max_norm):
        return {}
    total = jnp.zeros([], jnp.float32)
    for g in otu.leaves(updates):
        g = g.astype(otu.at_least_float32(g.dtype))
        norm = jnp.sqrt(jnp.sum(jnp.square(g))).astype(jnp.float32)
        total = total + unfused(norm * norm)  # squared, then summed in order
    norm = jnp.sqrt(total) + as_f32(h["eps"])
    ratio = jnp.minimum(jnp.reciprocal(norm) * as_f32(max_norm), jnp.ones([], jnp.float32))
    # An array max_grad_norm of 0 (injected) turns clipping off, as the number 0 does.
    return {"clip": jnp.where(as_f32(max_norm) > 0, ratio, jnp.ones([], jnp.float32))}


def _adan_step(st: Step) -> tuple[dict, dict]:
    h, t = st.h, st.t
    b1, b2, b3 = h["b1"], h["b2"], h["b3"]
    return {"w1": one_minus(b1), "w2": one_minus(b2), "b2": b2, "b3": b3,
            "w3": one_minus(b3), "eps": h["eps"],
            "bc1": bias_correction(b1, t), "bc2": bias_correction(b2, t),
            "bc3_sqrt": jnp.sqrt(bias_correction(b3, t)),
            "first": (t == 1).astype(jnp.float32), **st.reduced}, {}


def _adan_leaf(x: Leaf) -> tuple[jax.Array, dict]:
    s, b = x.s, x.buffers
    g = x.g * s["clip"] if "clip" in s else x.g
    # The first difference: 0 (the reference's previous gradient starts at g_1), or 2 g_1
    # with the reference's maximize (it records g_1 before flipping its sign).
    first = g + g if x.opt["first_difference_doubled"] else jnp.zeros_like(g)
    diff = jnp.where(s["first"].astype(bool), first, g - b["prev"])
    mu = lerp(b["mu"], g, s["w1"])
    delta = lerp(b["delta"], diff, s["w2"])
    corrected = unfused(diff * s["b2"]) + g            # g_t + b2 (g_t - g_{t-1})
    nu = ema_of_square(b["nu"], corrected, s["b3"], s["w3"])
    denom = divide(jnp.sqrt(nu), s["bc3_sqrt"]) + s["eps"]
    u = divide(mu, s["bc1"]) / denom + divide(delta * s["b2"], s["bc2"]) / denom
    return u, {"mu": mu, "delta": delta, "nu": nu, "prev": g}


ADAN = Rule(
    name="scale_by_adan", kind="global", state=ScaleByAdanState,
    hyperparameters=(beta("b1"), beta("b2"), beta("b3"), non_negative("eps"),
                     non_negative("max_grad_norm")),
    buffers=(Buffer("mu", dtype_option="mu_dtype"), Buffer("delta", dtype_option="mu_dtype"),
             Buffer("nu", "accumulator", dtype_option="nu_dtype"), Buffer("prev")),
    options=("first_difference_doubled",),
    reduce=_clip_ratio, per_step=_adan_step, leaf=_adan_leaf)


def scale_by_adan(b1: ArrayLike = 0.98, b2: ArrayLike = 0.92, b3: ArrayLike = 0.99,
                  eps: ArrayLike = 1e-8, max_grad_norm: ArrayLike = 0.0, *,
                  first_difference_doubled: bool = False,
                  mu_dtype: DTypeLike | None = None,
                  nu_dtype: DTypeLike | None = None) -> GradientTransformation:
    r"""Rescale updates by Adan's three moments (``pytorch-optimizer``'s ``Adan`` direction).

    With :math:`g_t` the gradient, first clipped by one ratio over the whole tree when
    ``max_grad_norm`` :math:`c > 0`:

    .. math::

        g_t &\leftarrow g_t \cdot \min\bigl(1,\ c / (\|g_t\|_2 + \epsilon)\bigr) \\
        \Delta_t &= g_t - g_{t-1}\quad (\Delta_1 = 0) \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1)\, g_t, \qquad
        d_t = \beta_2 d_{t-1} + (1 - \beta_2)\, \Delta_t \\
        n_t &= \beta_3 n_{t-1} + (1 - \beta_3)\,(g_t + \beta_2 \Delta_t)^2 \\
        u_t &= \frac{m_t / (1 - \beta_1^t) + \beta_2\, d_t / (1 - \beta_2^t)}
                    {\sqrt{n_t / (1 - \beta_3^t)} + \epsilon}

    (:math:`\sqrt{n_t}` is divided by :math:`\sqrt{1 - \beta_3^t}` before :math:`\epsilon`
    is added, as the reference does). The betas are the reference's, one minus the paper's
    (the paper writes :math:`m_k = (1 - \beta_1) m_{k-1} + \beta_1 g_k` with
    :math:`\beta_1 = 0.02`); the paper has no bias corrections and starts the moments at
    the first gradient.

    Args:
      b1, b2: :math:`\beta_1, \beta_2 \in [0, 1)`, decays of the gradient and difference
        averages.
      b3: :math:`\beta_3 \in [0, 1)`, decay of the squared corrected gradient.
      eps: :math:`\epsilon \ge 0`, in the denominator and in the clip ratio.
      max_grad_norm: :math:`c \ge 0`; 0 turns clipping off. The ratio is computed in
        float32 (each leaf's norm squared and summed in float32, as the reference does,
        float64 gradients included).
      first_difference_doubled: take :math:`\Delta_1 = 2 g_1` instead of 0: what the
        reference does with ``maximize=True`` (it records its first previous gradient
        before flipping the gradient's sign); the ``adan`` alias sets it with ``maximize``.
      mu_dtype: storage dtype of ``mu`` and ``delta``; ``None``: the param dtype.
      nu_dtype: storage dtype of ``nu``; ``None``: float32 or wider.

    Returns:
      A ``GradientTransformation`` (kind ``"global"``) whose state is
      :class:`ScaleByAdanState`.

    Equivalent: the direction of ``pytorch_optimizer.Adan`` (4.1.0). ``optax.scale_by_adan``
    weights the difference by :math:`1 - \beta_2` (0.08) where the paper and the reference
    weight it by :math:`\beta_2` (0.92, the paper's :math:`1 - \beta_2`), and does not clip.
    Reference: Xie et al. 2022, https://arxiv.org/abs/2208.06677.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.scale_by_adan()
        >>> params = {"w": jnp.array([1.0, -1.0])}
        >>> updates, state = tx.update({"w": jnp.array([0.5, -2.0])}, tx.init(params), params)
        >>> [round(float(u), 4) for u in updates["w"]]   # first step: sign(g)
        [1.0, -1.0]
    """
    check_flag("first_difference_doubled", first_difference_doubled)
    return lift(ADAN, b1=b1, b2=b2, b3=b3, eps=eps, max_grad_norm=max_grad_norm,
                first_difference_doubled=bool(first_difference_doubled), mu_dtype=mu_dtype,
                nu_dtype=nu_dtype)
