r"""AdaBelief (Zhuang et al. 2020): Adam whose second moment tracks :math:`(g - m)^2`.

One declared :class:`~optxform.rules.Rule`, lifted by :func:`~optxform.rules.lift`. The
arithmetic follows ``pytorch-optimizer`` 4.1.0's ``AdaBelief``: ``lerp_`` for the mean,
``mul_`` + ``addcmul_`` + ``add_(eps)`` for the "belief" :math:`s_t`, AMSBound's running
maximum, and RAdam's rectification with its threshold and its fallback to SGD.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from optxform.core import GradientTransformation, Updates
from optxform.core.validation import check_flag, check_range
from optxform.rules import Buffer, Hyperparameter, Leaf, Rule, Step, beta, lift, non_negative
from optxform.tree.numerics import (bias_correction, ema_of_square, is_number, lerp,
                                    one_minus, sma_length, step_dtype, wide_log)

__all__ = ["ScaleByBeliefState", "scale_by_belief"]


class ScaleByBeliefState(NamedTuple):
    """The state of :func:`scale_by_belief`.

    Attributes:
      count: int32 steps taken, saturating.
      mu: the mean of the gradients (reference ``exp_avg``), in the param dtype or
        ``mu_dtype``.
      nu: the belief :math:`s_t` (reference ``exp_avg_var``), float32 or wider, or
        ``nu_dtype``.
      nu_max: with ``ams_bound`` the running maximum of :math:`s_t` (reference
        ``max_exp_avg_var``), like ``nu``; else ``None``.
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count
    mu: Updates       # mean of the gradients (``exp_avg``): param dtype, or mu_dtype
    nu: Updates       # belief s_t (``exp_avg_var``): float32 or wider, or nu_dtype
    nu_max: Updates   # ams_bound: running maximum of s_t (``max_exp_avg_var``); else None


def _rectification(h: dict, t: jax.Array, bc1, bc2, degenerated_to_sgd: bool) -> dict:
    r"""The rectified step's scalars: ``scale`` multiplies :math:`m_t/(\sqrt{s_t}+\epsilon)`
    where ``adaptive`` (:math:`\rho_t \ge` threshold), :math:`m_t` elsewhere.

    :math:`\rho_t` is RAdam's SMA length (see :func:`optxform.tree.numerics.sma_length`);
    the rectification term carries :math:`\sqrt{1 - \beta_2^t}`, since the rectified
    denominator is not bias-corrected.
    """
    dtype = step_dtype()
    b2 = h["b2"]
    rho_inf = 2.0 / (1.0 - b2) - 1.0 if is_number(b2) else (
        2.0 / (1.0 - jnp.asarray(b2, dtype)) - 1.0)
    rho = sma_length(jnp.asarray(rho_inf, dtype), -jnp.asarray(wide_log(b2), dtype),
                     t.astype(dtype))
    adaptive = rho >= jnp.asarray(h["n_sma_threshold"], dtype)
    safe = jnp.where(adaptive, rho, rho_inf)  # keeps the unused branch finite
    rect = jnp.sqrt(bc2 * (safe - 4.0) / (rho_inf - 4.0) * (safe - 2.0) / safe
                    * rho_inf / (rho_inf - 2.0))
    fallback = 1.0 / bc1 if degenerated_to_sgd else jnp.zeros_like(bc1)  # SGD, or no step
    return {"adaptive": adaptive, "scale": jnp.where(adaptive, rect / bc1, fallback)}


def _belief_step(st: Step) -> tuple[dict, dict]:
    h = st.h
    bc1, bc2 = bias_correction(h["b1"], st.t), bias_correction(h["b2"], st.t)
    s = {"w1": one_minus(h["b1"]), "b2": h["b2"], "w2": one_minus(h["b2"]), "eps": h["eps"]}
    if st.opt["rectify"]:
        s.update(_rectification(h, st.t, bc1, bc2, st.opt["degenerated_to_sgd"]))
    else:
        s.update(scale=1.0 / bc1, bc2_sqrt=jnp.sqrt(bc2))
    return s, {}


def _belief_leaf(x: Leaf) -> tuple[jax.Array, dict]:
    s, g = x.s, x.g
    mu = lerp(x.buffers["mu"], g, s["w1"])
    residual = g - mu
    nu = ema_of_square(x.buffers["nu"], residual, s["b2"], s["w2"]) + s["eps"]
    nu_max, v = None, nu
    if x.opt["ams_bound"]:
        nu_max = v = jnp.maximum(x.buffers["nu_max"], nu)
    new = {"mu": mu, "nu": nu, "nu_max": nu_max}
    if not x.opt["rectify"]:
        return (mu / (jnp.sqrt(v) / s["bc2_sqrt"] + s["eps"])) * s["scale"], new
    adapted = (mu / (jnp.sqrt(v) + s["eps"])) * s["scale"]
    return jnp.where(s["adaptive"].astype(bool), adapted, mu * s["scale"]), new


BELIEF = Rule(
    name="scale_by_belief", kind="elementwise", state=ScaleByBeliefState,
    hyperparameters=(beta("b1"), beta("b2"), non_negative("eps"),
                     Hyperparameter("n_sma_threshold",
                                    lambda n, v: check_range(n, v, 4.0, float("inf")))),
    buffers=(Buffer("mu", "param", dtype_option="mu_dtype"),
             Buffer("nu", "accumulator", dtype_option="nu_dtype"),
             Buffer("nu_max", "accumulator", dtype_option="nu_dtype", enabled_by="ams_bound")),
    options=("rectify", "degenerated_to_sgd", "ams_bound"),
    per_step=_belief_step, leaf=_belief_leaf)


def scale_by_belief(b1: ArrayLike = 0.9, b2: ArrayLike = 0.999, eps: ArrayLike = 1e-16,
                    rectify: bool = False, n_sma_threshold: ArrayLike = 5,
                    degenerated_to_sgd: bool = True, ams_bound: bool = False,
                    mu_dtype: DTypeLike | None = None,
                    nu_dtype: DTypeLike | None = None) -> GradientTransformation:
    r"""Rescale updates by AdaBelief's "belief" in the gradient: the spread of :math:`g - m`.

    .. math::

        m_t &= \operatorname{lerp}(m_{t-1}, g_t, 1 - \beta_1) \\
        s_t &= \beta_2 s_{t-1} + (1 - \beta_2)(g_t - m_t)^2 + \epsilon, \qquad
        \hat s_t = \max(\hat s_{t-1}, s_t)\ \text{(ams\_bound)},\ s_t\ \text{otherwise} \\
        u_t &= \frac{m_t / (1 - \beta_1^t)}{\sqrt{\hat s_t} / \sqrt{1 - \beta_2^t} + \epsilon}

    With ``rectify`` (RAdam's rectification, :math:`\rho_\infty = 2/(1 - \beta_2) - 1`,
    :math:`\rho_t = \rho_\infty - 2t\beta_2^t/(1 - \beta_2^t)`):

    .. math::

        u_t = \begin{cases}
          \dfrac{r_t}{1 - \beta_1^t}\, \dfrac{m_t}{\sqrt{\hat s_t} + \epsilon},\quad
          r_t = \sqrt{(1 - \beta_2^t) \frac{(\rho_t - 4)(\rho_t - 2)\rho_\infty}
                       {(\rho_\infty - 4)(\rho_\infty - 2)\rho_t}}
            & \rho_t \ge \text{n\_sma\_threshold} \\
          m_t / (1 - \beta_1^t) & \text{otherwise, with degenerated\_to\_sgd} \\
          0 & \text{otherwise}
        \end{cases}

    :math:`\epsilon` enters twice: inside :math:`s_t` (each step) and added to the root.
    Chain it with ``scale_by_learning_rate(lr)``.

    Args:
      b1: :math:`\beta_1 \in [0, 1)`, decay of the mean.
      b2: :math:`\beta_2 \in [0, 1)`, decay of the belief.
      eps: :math:`\epsilon \ge 0`.
      rectify: RAdam's rectified update.
      n_sma_threshold: rectify from :math:`\rho_t \ge` this (``>= 4``, where the
        rectification term is real); used with ``rectify`` only.
      degenerated_to_sgd: with ``rectify``, below the threshold take the momentum step
        :math:`m_t / (1 - \beta_1^t)` (else no step at all).
      ams_bound: normalise by the running maximum of :math:`s_t` (AMSGrad's bound).
      mu_dtype, nu_dtype: storage dtypes of the mean (``None``: the param dtype) and of
        the belief and its maximum (``None``: float32 or wider).

    Returns:
      A :class:`~optxform.GradientTransformation` whose state is a
      :class:`ScaleByBeliefState` (int32 ``count``, ``mu``, ``nu``, and ``nu_max`` with
      ``ams_bound``, else ``None``).

    Equivalents: the direction of ``pytorch_optimizer.AdaBelief`` (4.1.0);
    ``optax.scale_by_belief(b1, b2, eps, eps_root=eps)`` without the options (it adds
    ``eps_root`` to :math:`s_t` the same way).
    Reference: Zhuang et al., 2020, https://arxiv.org/abs/2010.07468.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.scale_by_belief()
        >>> g = {"w": jnp.array([0.5, -2.0])}
        >>> u, state = tx.update(g, tx.init(g))
        >>> [round(float(x), 6) for x in u["w"]]   # sign(g) / b1: (g - m_1)^2 = (b1 g)^2
        [1.111111, -1.111111]
    """
    for name, flag in (("rectify", rectify), ("degenerated_to_sgd", degenerated_to_sgd),
                       ("ams_bound", ams_bound)):
        check_flag(name, flag)
    return lift(BELIEF, b1=b1, b2=b2, eps=eps, n_sma_threshold=n_sma_threshold,
                rectify=rectify, degenerated_to_sgd=degenerated_to_sgd, ams_bound=ams_bound,
                mu_dtype=mu_dtype, nu_dtype=nu_dtype)
