r"""AdEMAMix (Pagliardini et al. 2024): Adam plus a second, much slower momentum.

One declared :class:`~optxform.rules.Rule`, lifted by :func:`~optxform.rules.lift`. The
arithmetic follows ``pytorch-optimizer`` 4.1.0's ``AdEMAMix``: ``lerp_`` for both
momenta, ``mul_`` + ``addcmul_`` for the second moment, ``sqrt / sqrt(1 - beta2^t) + eps``
for the denominator, and its warm-up of :math:`\alpha` and :math:`\beta_3` over
``t_alpha_beta3`` steps.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from optxform.core import GradientTransformation, Updates
from optxform.core.validation import check_positive, concrete_value
from optxform.rules import Buffer, Hyperparameter, Leaf, Rule, Step, beta, lift, non_negative
from optxform.tree.numerics import (bias_correction, ema_of_square, lerp, one_minus,
                                    step_dtype, wide_log)

__all__ = ["ScaleByAdemamixState", "scale_by_ademamix"]


class ScaleByAdemamixState(NamedTuple):
    """The state of :func:`scale_by_ademamix`.

    Attributes:
      count: int32 steps taken, saturating.
      mu: the fast momentum (reference ``exp_avg``), in the param dtype or ``mu_dtype``.
      nu: the second moment (reference ``exp_avg_sq``), float32 or wider, or ``nu_dtype``.
      mu_slow: the slow momentum (reference ``exp_avg_slow``), like ``mu``.
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count
    mu: Updates       # fast momentum m1 (``exp_avg``): param dtype, or mu_dtype
    nu: Updates       # second moment (``exp_avg_sq``): float32 or wider, or nu_dtype
    mu_slow: Updates  # slow momentum m2 (``exp_avg_slow``): param dtype, or mu_dtype


def _warm_up(h: dict, t: jax.Array) -> tuple:
    r""":math:`\alpha(t)` and :math:`1 - \beta_3(t)` over ``t_alpha_beta3`` steps.

    :math:`\alpha(t) = \min(t\alpha/T, \alpha)`; :math:`\beta_3(t) = \min(\exp(\frac{\ln
    \beta_1 \ln\beta_3}{(1 - t/T)\ln\beta_3 + (t/T)\ln\beta_1}), \beta_3)`, a linear
    interpolation of the half-life from :math:`\beta_1`'s to :math:`\beta_3`'s. The weight
    :math:`1 - \beta_3(t)` is taken as ``-expm1`` of the exponent: in float32,
    ``1 - exp(x)`` would lose three digits of a weight near 1e-4.
    """
    period = h["t_alpha_beta3"]
    if period is None:
        return h["alpha"], one_minus(h["b3"])
    dtype = step_dtype()
    t, period, alpha = (jnp.asarray(v, dtype) for v in (t, period, h["alpha"]))
    log_b1, log_b3 = wide_log(h["b1"]), wide_log(h["b3"])
    s = t / period
    exponent = log_b1 * log_b3 / ((1.0 - s) * log_b3 + s * log_b1)
    w3 = jnp.maximum(-jnp.expm1(exponent), jnp.asarray(one_minus(h["b3"]), dtype))
    return jnp.minimum(t * alpha / period, alpha), w3


def _ademamix_step(st: Step) -> tuple[dict, dict]:
    h = st.h
    alpha, w3 = _warm_up(h, st.t)
    return {"w1": one_minus(h["b1"]), "b2": h["b2"], "w2": one_minus(h["b2"]), "w3": w3,
            "alpha": alpha, "eps": h["eps"], "bc1": bias_correction(h["b1"], st.t),
            "bc2_sqrt": jnp.sqrt(bias_correction(h["b2"], st.t))}, {}


def _ademamix_leaf(x: Leaf) -> tuple[jax.Array, dict]:
    s, g = x.s, x.g
    mu = lerp(x.buffers["mu"], g, s["w1"])
    nu = ema_of_square(x.buffers["nu"], g, s["b2"], s["w2"])
    mu_slow = lerp(x.buffers["mu_slow"], g, s["w3"])
    denom = jnp.sqrt(nu) / s["bc2_sqrt"] + s["eps"]
    return (mu / s["bc1"] + s["alpha"] * mu_slow) / denom, \
        {"mu": mu, "nu": nu, "mu_slow": mu_slow}


ADEMAMIX = Rule(
    name="scale_by_ademamix", kind="elementwise", state=ScaleByAdemamixState,
    hyperparameters=(beta("b1"), beta("b2"), beta("b3"), non_negative("alpha"),
                     Hyperparameter("t_alpha_beta3", check_positive, optional=True),
                     non_negative("eps")),
    buffers=(Buffer("mu", "param", dtype_option="mu_dtype"),
             Buffer("nu", "accumulator", dtype_option="nu_dtype"),
             Buffer("mu_slow", "param", dtype_option="mu_dtype")),
    complex_params="reject", per_step=_ademamix_step, leaf=_ademamix_leaf)


def scale_by_ademamix(b1: ArrayLike = 0.9, b2: ArrayLike = 0.999, b3: ArrayLike = 0.9999,
                      alpha: ArrayLike = 5.0, t_alpha_beta3: ArrayLike | None = None,
                      eps: ArrayLike = 1e-8, mu_dtype: DTypeLike | None = None,
                      nu_dtype: DTypeLike | None = None) -> GradientTransformation:
    r"""Rescale updates by AdEMAMix's mixture of a fast and a slow momentum.

    .. math::

        m_t &= \operatorname{lerp}(m_{t-1}, g_t, 1 - \beta_1), \qquad
        m^{slow}_t = \operatorname{lerp}(m^{slow}_{t-1}, g_t, 1 - \beta_3(t)) \\
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2 \\
        u_t &= \frac{m_t / (1 - \beta_1^t) + \alpha(t)\, m^{slow}_t}
                    {\sqrt{v_t} / \sqrt{1 - \beta_2^t} + \epsilon}

    The slow momentum is not bias-corrected. Without ``t_alpha_beta3``,
    :math:`\alpha(t) = \alpha` and :math:`\beta_3(t) = \beta_3`; with it (:math:`T`),

    .. math::

        \alpha(t) = \min\Bigl(\frac{t\alpha}{T}, \alpha\Bigr), \qquad
        \beta_3(t) = \min\Bigl(\exp\frac{\ln\beta_1 \ln\beta_3}
                     {(1 - t/T)\ln\beta_3 + (t/T)\ln\beta_1},\ \beta_3\Bigr)

    (the half-life :math:`-\ln 2/\ln\beta_3(t)` grows linearly from :math:`\beta_1`'s to
    :math:`\beta_3`'s). Chain it with ``scale_by_learning_rate(lr)``.

    Args:
      b1: :math:`\beta_1 \in [0, 1)`, decay of the fast momentum (``> 0`` with a warm-up).
      b2: :math:`\beta_2 \in [0, 1)`, decay of the second moment.
      b3: :math:`\beta_3 \in [0, 1)`, decay of the slow momentum (``> 0`` with a warm-up).
      alpha: :math:`\alpha \ge 0`, the weight of the slow momentum.
      t_alpha_beta3: :math:`T > 0`, the warm-up length of :math:`\alpha` and
        :math:`\beta_3` in steps; ``None``: no warm-up.
      eps: :math:`\epsilon \ge 0`, added to the bias-corrected root.
      mu_dtype: storage dtype of both momenta; ``None``: the param dtype.
      nu_dtype: storage dtype of ``nu``; ``None``: float32 or wider.

    Returns:
      A :class:`~optxform.GradientTransformation` whose state is a
      :class:`ScaleByAdemamixState` (int32 ``count``, ``mu``, ``nu``, ``mu_slow``).
      Complex params are refused (as by the reference).

    Equivalents: the direction of ``pytorch_optimizer.AdEMAMix`` (4.1.0);
    ``optax.contrib.scale_by_ademamix`` takes the two warm-ups as schedules.
    Reference: Pagliardini et al., 2024, https://arxiv.org/abs/2409.03137.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.scale_by_ademamix(alpha=0.0)   # without the slow momentum: Adam
        >>> g = {"w": jnp.array([0.5, -2.0])}
        >>> u, state = tx.update(g, tx.init(g))
        >>> u["w"]
        Array([ 1., -1.], dtype=float32)
    """
    if t_alpha_beta3 is not None:
        for name, value in (("b1", b1), ("b3", b3)):
            if concrete_value(value) == 0.0:
                raise ValueError(f"Invalid {name}: {value!r} ({name} must be > 0 with "
                                 "t_alpha_beta3: the warm-up interpolates log(b1) and "
                                 "log(b3))")
    return lift(ADEMAMIX, b1=b1, b2=b2, b3=b3, alpha=alpha, t_alpha_beta3=t_alpha_beta3,
                eps=eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype)
