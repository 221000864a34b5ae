"""The adan optimizer alias."""

from __future__ import annotations

from jax.typing import ArrayLike, DTypeLike

from optxform.core import GradientTransformation, ScalarOrSchedule
from optxform.core.base import declares_hyperparameters
from optxform.core.validation import check_flag, check_learning_rate
from optxform.optimizers.recipe import gradient_prelude, recipe
from optxform.transforms.adan import scale_by_adan
from optxform.transforms.scaling import scale_by_learning_rate
from optxform.transforms.weight_decay import (add_decoupled_weight_decay,
                                              add_proximal_weight_decay)

__all__ = ["adan"]


@declares_hyperparameters("learning_rate", "b1", "b2", "b3", "eps", "weight_decay")
def adan(learning_rate: ScalarOrSchedule = 1e-3, b1: ArrayLike = 0.98, b2: ArrayLike = 0.92,
         b3: ArrayLike = 0.99, weight_decay: ArrayLike = 0.0, weight_decouple: bool = False,
         max_grad_norm: ArrayLike = 0.0, eps: ArrayLike = 1e-8, maximize: bool = False, *,
         mu_dtype: DTypeLike | None = None,
         nu_dtype: DTypeLike | None = None) -> GradientTransformation:
    r"""Adan, "Adaptive Nesterov Momentum" (Xie et al. 2022), as ``pytorch-optimizer``'s ``Adan``.

    .. math::

        g_t &\leftarrow \pm\nabla f(\theta_{t-1})\cdot
              \min\bigl(1,\ c / (\|\nabla f\|_2 + \epsilon)\bigr)
              \quad(\text{clip only with } c > 0) \\
        \Delta_t &= g_t - g_{t-1}\ (\Delta_1 = 0), \quad
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        d_t = \beta_2 d_{t-1} + (1-\beta_2) \Delta_t \\
        n_t &= \beta_3 n_{t-1} + (1-\beta_3)(g_t + \beta_2\Delta_t)^2, \qquad
        s_t = \eta_t\, \frac{m_t/(1-\beta_1^t) + \beta_2\, d_t/(1-\beta_2^t)}
                          {\sqrt{n_t}/\sqrt{1-\beta_3^t} + \epsilon} \\
        \theta_t &= \frac{\theta_{t-1} - s_t}{1 + \eta_t\lambda}
        \ \text{(default)}, \qquad
        \theta_t = \theta_{t-1}(1 - \eta_t\lambda) - s_t\ \text{(weight\_decouple)}

    Args:
      learning_rate: :math:`\eta \ge 0`, a number or a schedule (reference ``lr``).
      b1, b2, b3: :math:`\beta_1, \beta_2, \beta_3 \in [0, 1)` (reference ``betas``), the
        decays of the gradient, difference and squared-term averages: one minus the
        paper's :math:`\beta`\ s.
      weight_decay: :math:`\lambda \ge 0`.
      weight_decouple: decay the params by :math:`1 - \eta\lambda` before the step instead
        of the proximal division after it.
      max_grad_norm: :math:`c \ge 0`, the global gradient norm to clip to; 0: no clipping.
      eps: :math:`\epsilon \ge 0`, in the denominator and in the clip ratio.
      maximize: ascend the objective instead. As in the reference, the first gradient
        difference is then :math:`2 g_1` rather than 0 (it records the first previous
        gradient before the sign flip).
      mu_dtype, nu_dtype: storage dtypes of the first-order averages (``mu``, ``delta``)
        and of ``nu``; default the param dtype and float32 or wider. Not in the reference.

    Returns:
      A ``GradientTransformation``: a named chain ``sign``: ``scale(±1.)`` (maximize),
      ``adan``: :func:`~optxform.scale_by_adan` (clip and moments), ``lr``:
      ``scale_by_learning_rate(learning_rate)``, ``decay``:
      :func:`~optxform.add_proximal_weight_decay` or, with ``weight_decouple``,
      :func:`~optxform.add_decoupled_weight_decay` (a no-op at the number 0). State: ``mu``,
      ``delta``, ``prev`` in the param dtype, ``nu`` float32 or wider, int32 counters.

    Equivalents: ``pytorch_optimizer.Adan(params, lr, betas=(b1, b2, b3), weight_decay,
    weight_decouple, max_grad_norm, eps=eps, maximize=maximize)`` (4.1.0).
    ``optax.adan`` follows another convention (it weights the difference by
    :math:`1 - \beta_2`, decays by ``add_decayed_weights`` and does not clip).
    Reference: Xie et al. 2022, https://arxiv.org/abs/2208.06677.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.adan(0.1)
        >>> params = {"w": jnp.array([1.0, -1.0])}
        >>> updates, state = tx.update({"w": jnp.array([0.3, -2.0])}, tx.init(params), params)
        >>> [round(float(u), 4) for u in updates["w"]]   # first step: -lr * sign(g)
        [-0.1, 0.1]
    """
    check_learning_rate(learning_rate)
    check_flag("weight_decouple", weight_decouple)
    check_flag("maximize", maximize)
    decay = add_decoupled_weight_decay if weight_decouple else add_proximal_weight_decay
    return recipe(*gradient_prelude(maximize),
                  ("adan", scale_by_adan(b1, b2, b3, eps, max_grad_norm,
                                         first_difference_doubled=bool(maximize),
                                         mu_dtype=mu_dtype, nu_dtype=nu_dtype)),
                  ("lr", scale_by_learning_rate(learning_rate)),
                  ("decay", decay(weight_decay, learning_rate)))
