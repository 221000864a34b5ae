r"""MARS (Yuan et al. 2024): variance-reduced gradient corrections under an Adam, Lion or
Shampoo-style step.

One declared rule, :func:`scale_by_mars`, of kind ``"matrix"``: it reads each leaf as a
whole (the correction's norm, the cautious mask's mean, the Newton-Schulz
orthogonalisation of a matrix) and branches on the leaf's rank, as the reference does:
leaves of rank 2 or more (or every leaf with ``optimize_1d``) take the MARS step, the
others a plain AdamW step with their own betas. The branch is fixed by the params' shapes,
so the state's structure is too. The float32 arithmetic follows ``pytorch-optimizer``'s
``MARS`` (4.1.0) step by step; the learning rates and weight decay are separate chain
members (``optxform/optimizers/mars.py``).
"""

from __future__ import annotations

import math
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from optxform import tree as otu
from optxform.core import GradientTransformation
from optxform.core.validation import check_dtype, check_flag, check_one_of
from optxform.rules import Buffer, Hyperparameter, Leaf, Rule, Step, beta, lift, non_negative
from optxform.tree.math import unfused
from optxform.tree.numerics import bias_correction, divide, ema_of_square, lerp, one_minus

__all__ = ["ScaleByMarsState", "scale_by_mars"]

MarsType = Literal["adamw", "lion", "shampoo"]

# The quintic Newton-Schulz coefficients of the reference (Keller Jordan's, as in Muon).
_NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
_NS_STEPS = 5


def takes_mars_step(param: Any, optimize_1d: bool) -> bool:
    """Whether a param gets the MARS step (else the 1-D AdamW step): rank >= 2 counted on
    its real view (a complex param has a trailing axis of 2), or every param with
    ``optimize_1d``."""
    rank = jnp.ndim(param) + (1 if jnp.iscomplexobj(param) else 0)
    return bool(optimize_1d) or rank >= 2


class ScaleByMarsState(NamedTuple):
    """The state of :func:`scale_by_mars`.

    Attributes:
      count: int32 updates made so far (saturating).
      mu: the corrected-gradient average (the reference's ``exp_avg``): param dtype, or
        ``mu_dtype``.
      nu: the average of its square (``exp_avg_sq``; unused by ``lion`` and by the
        ``shampoo`` matrices): float32 or wider, or ``nu_dtype``.
      prev: the previous gradient (``last_grad``): param dtype.
      nu_max: the running maximum of ``nu`` with ``ams_bound``, else ``None``.
    """

    count: jax.Array  # type: ignore[assignment]  # (shadows tuple.count)
    mu: Any
    nu: Any
    prev: Any
    nu_max: Any


def _mars_step(st: Step) -> tuple[dict, dict]:
    h, t = st.h, st.t
    b1, b2, gamma = h["b1"], h["b2"], h["gamma"]
    if st.opt["mars_type"] == "shampoo":   # the reference's per-param path
        coef = gamma * (b1 / one_minus(b1))
    else:                                  # its batched (foreach) path
        coef = gamma * b1 / one_minus(b1)
    s = {"coef": coef, "eps": h["eps"], "prev_weight_decay": h["prev_weight_decay"],
         "momentum_scale": 1.0 / one_minus(b1)}
    for suffix, (d1, d2) in {"": (b1, b2), "_1d": (h["b1_1d"], h["b2_1d"])}.items():
        s.update({"w1" + suffix: one_minus(d1), "b2" + suffix: d2, "w2" + suffix: one_minus(d2),
                  "bc1" + suffix: bias_correction(d1, t),
                  "bc2_sqrt" + suffix: jnp.sqrt(bias_correction(d2, t))})
    return s, {}


def _cautious(u: jax.Array, g: jax.Array) -> jax.Array:
    r"""The reference's cautious mask: keep :math:`u` where :math:`u g > 0`, rescaled by
    ``numel / (kept + 1)`` (``apply_cautious``, rounded as it rounds)."""
    mask = (u * g > 0).astype(u.dtype)
    scale = jnp.reciprocal(jnp.sum(mask) + 1) * u.size
    return u * (mask * scale)


def _orthogonalize(m: jax.Array, eps: jax.Array, dtype: Any) -> jax.Array:
    """The reference's ``zero_power_via_newton_schulz_5`` of a 2-D ``m``, run in ``dtype``:
    each product accumulated in float32 or wider and rounded once to ``dtype``."""
    acc = otu.at_least_float32(dtype)
    transpose = m.shape[0] > m.shape[1]
    x = (m.T if transpose else m).astype(dtype)
    norm = jnp.sqrt(jnp.sum(jnp.square(x.astype(acc)))).astype(dtype)
    x = divide(x.astype(acc), jnp.maximum(norm, eps.astype(dtype)).astype(acc)).astype(dtype)

    def product(a, b):
        return jnp.matmul(a, b, preferred_element_type=acc)

    w0, w1, w2 = _NS_COEFFICIENTS
    for _ in range(_NS_STEPS):
        a = product(x, x.T).astype(dtype)
        b = (w1 * a.astype(acc) + w2 * product(a, a)).astype(dtype)
        x = (w0 * x.astype(acc) + product(b, x)).astype(dtype)
    return x.T if transpose else x


def _adaptive(x: Leaf, u: jax.Array, c: jax.Array, suffix: str) -> tuple[jax.Array, dict]:
    """The Adam-style step of the reference (``apply_ams_bound``, then the corrections)."""
    s, b = x.s, x.buffers
    nu = ema_of_square(b["nu"], c, s["b2" + suffix], s["w2" + suffix])
    new = {"nu": nu}
    second = nu
    if x.opt["ams_bound"]:
        second = new["nu_max"] = jnp.maximum(b["nu_max"], nu)
    denom = divide(jnp.sqrt(second + 1e-15) + s["eps"], s["bc2_sqrt" + suffix]) * s["bc1" + suffix]
    return u / denom, new


def _mars_leaf(x: Leaf) -> tuple[jax.Array, dict]:
    s, b, g, opt = x.s, x.buffers, x.g, x.opt
    mars = opt["optimize_1d"] or g.ndim >= 2
    suffix = "" if mars else "_1d"
    if mars:
        c = unfused((g - b["prev"]) * s["coef"]) + g
        c = divide(c, jnp.maximum(jnp.sqrt(jnp.sum(jnp.square(c))), 1.0))
    else:
        c = g
    mu = lerp(b["mu"], c, s["w1" + suffix])
    u = _cautious(mu, g) if opt["cautious"] else mu
    new = dict(b, mu=mu)   # nu (and nu_max) kept where the step does not use them
    if mars and opt["mars_type"] == "lion":
        u = jnp.sign(u)
    elif mars and opt["mars_type"] == "shampoo" and g.ndim >= 2:
        factor = math.sqrt(max(1.0, g.shape[0] / g.shape[1]))
        m = (u * s["momentum_scale"]).reshape(g.shape[0], -1)
        o = _orthogonalize(m, s["eps"], jnp.dtype(opt["ns_dtype"]))
        o = (o.astype(otu.at_least_float32(o.dtype)) * factor).astype(o.dtype)
        u = o.reshape(g.shape).astype(g.dtype)
    else:
        u, moments = _adaptive(x, u, c, suffix)
        new.update(moments)
    # The reference's coupled weight decay (weight_decouple=False) is added to the gradient
    # after the step: it only reaches the gradient kept for the next correction.
    new["prev"] = g if "prev_weight_decay" in x.zero else (
        unfused(s["prev_weight_decay"] * x.p) + g)
    return u, new


MARS = Rule(
    name="scale_by_mars", kind="matrix", state=ScaleByMarsState,
    hyperparameters=(beta("b1"), beta("b2"), non_negative("gamma"), non_negative("eps"),
                     beta("b1_1d"), beta("b2_1d"), non_negative("prev_weight_decay")),
    buffers=(Buffer("mu", dtype_option="mu_dtype"),
             Buffer("nu", "accumulator", dtype_option="nu_dtype"),
             Buffer("prev"),
             Buffer("nu_max", "accumulator", dtype_option="nu_dtype", enabled_by="ams_bound")),
    options=("mars_type", "optimize_1d", "ams_bound", "cautious", "ns_dtype"),
    reads_params=True, per_step=_mars_step, leaf=_mars_leaf)


def scale_by_mars(b1: ArrayLike = 0.95, b2: ArrayLike = 0.99, gamma: ArrayLike = 0.025,
                  eps: ArrayLike = 1e-8, mars_type: MarsType = "adamw",
                  optimize_1d: bool = False, b1_1d: ArrayLike = 0.9, b2_1d: ArrayLike = 0.95,
                  ams_bound: bool = False, cautious: bool = False,
                  prev_weight_decay: ArrayLike = 0.0, *,
                  ns_dtype: DTypeLike = jnp.bfloat16, mu_dtype: DTypeLike | None = None,
                  nu_dtype: DTypeLike | None = None) -> GradientTransformation:
    r"""Rescale updates by MARS's corrected moments (``pytorch-optimizer``'s ``MARS`` direction).

    For a leaf of rank :math:`\ge 2` (every leaf with ``optimize_1d``), with :math:`g_t`
    the gradient and :math:`g_{t-1}` the previous one (0 at the start):

    .. math::

        c_t &= g_t + \gamma\,\frac{\beta_1}{1 - \beta_1}\,(g_t - g_{t-1}), \qquad
        c_t \leftarrow c_t / \max(1, \|c_t\|_2) \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1)\, c_t, \qquad
        \tilde m_t = \operatorname{cautious}(m_t, g_t)\ \text{or}\ m_t \\
        u_t &= \begin{cases}
          \tilde m_t\,(1-\beta_1^t)^{-1} \big/ \bigl((\sqrt{v_t + 10^{-15}} + \epsilon)
            / \sqrt{1-\beta_2^t}\bigr),
            \quad v_t = \beta_2 v_{t-1} + (1-\beta_2)\, c_t^2 & \text{adamw} \\
          \operatorname{sign}(\tilde m_t) & \text{lion} \\
          \sqrt{\max(1, n_0/n_1)}\ \operatorname{NS}_5\bigl(\tilde m_t / (1-\beta_1)\bigr)
            & \text{shampoo}
        \end{cases}

    where the norm, the cautious mask and :math:`\operatorname{NS}_5` (five quintic
    Newton-Schulz iterations towards the orthogonal polar factor, the leaf reshaped to
    :math:`n_0 \times \prod_{i>0} n_i`, run in ``ns_dtype``) are taken per leaf;
    ``shampoo`` steps a leaf of rank < 2 as ``adamw``. With ``ams_bound`` the running
    maximum of :math:`v_t` replaces it in the denominator. The cautious mask keeps
    :math:`m_t` where :math:`m_t g_t > 0` and scales it by ``size / (kept + 1)``.

    A leaf of rank < 2 without ``optimize_1d`` takes the same ``adamw`` step with
    :math:`c_t = g_t` (no correction, no normalisation) and betas ``b1_1d, b2_1d``.

    Args:
      b1, b2: :math:`\beta_1, \beta_2 \in [0, 1)`.
      gamma: :math:`\gamma \ge 0`, the strength of the gradient correction.
      eps: :math:`\epsilon \ge 0` (also the Newton-Schulz normalisation's floor).
      mars_type: ``"adamw"``, ``"lion"`` or ``"shampoo"``.
      optimize_1d: give leaves of rank < 2 the MARS step too.
      b1_1d, b2_1d: the betas of the rank < 2 leaves' AdamW step.
      ams_bound: use the running maximum of the second moment (adds ``nu_max``).
      cautious: apply the cautious mask to the momentum.
      prev_weight_decay: :math:`\lambda' \ge 0`: the gradient kept for the next correction
        is :math:`g_t + \lambda'\theta_{t-1}`. This is all the reference's coupled decay
        (``weight_decouple=False``) does: it adds the decay to the gradient after the step.
      ns_dtype: the dtype Newton-Schulz runs in (the reference's: ``bfloat16``).
      mu_dtype, nu_dtype: storage dtypes of ``mu`` and of ``nu`` (and ``nu_max``).

    Returns:
      A ``GradientTransformation`` (kind ``"matrix"``; it reads the params) whose state is
      :class:`ScaleByMarsState`.

    Equivalent: the direction of ``pytorch_optimizer.MARS`` (4.1.0); optax has none.
    Reference: Yuan et al. 2024, "MARS: Unleashing the Power of Variance Reduction for
    Training Large Models", https://arxiv.org/abs/2411.10438.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.scale_by_mars(mars_type="lion")
        >>> params = {"w": jnp.ones((2, 2))}
        >>> grads = {"w": jnp.array([[0.5, -2.0], [0.0, 1.0]])}
        >>> updates, state = tx.update(grads, tx.init(params), params)
        >>> updates["w"]
        Array([[ 1., -1.],
               [ 0.,  1.]], dtype=float32)
    """
    check_one_of("mars_type", mars_type, ("adamw", "lion", "shampoo"))
    for name, flag in (("optimize_1d", optimize_1d), ("ams_bound", ams_bound),
                       ("cautious", cautious)):
        check_flag(name, flag)
    check_dtype("ns_dtype", ns_dtype)
    if ns_dtype is None:
        raise ValueError("Invalid ns_dtype: None (expected a floating-point dtype)")
    return lift(MARS, b1=b1, b2=b2, gamma=gamma, eps=eps, b1_1d=b1_1d, b2_1d=b2_1d,
                prev_weight_decay=prev_weight_decay, mars_type=mars_type,
                optimize_1d=bool(optimize_1d), ams_bound=bool(ams_bound),
                cautious=bool(cautious), ns_dtype=jnp.dtype(ns_dtype), mu_dtype=mu_dtype,
                nu_dtype=nu_dtype)
