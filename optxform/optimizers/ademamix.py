"""The ademamix optimizer alias (``pytorch-optimizer``'s ``AdEMAMix``)."""

from __future__ import annotations

from jax.typing import ArrayLike, DTypeLike

from optxform.core import GradientTransformation, ScalarOrSchedule
from optxform.core.base import declares_hyperparameters
from optxform.core.validation import check_learning_rate
from optxform.optimizers.recipe import gradient_prelude, recipe, split_weight_decay
from optxform.transforms.ademamix import scale_by_ademamix
from optxform.transforms.scaling import scale_by_learning_rate

__all__ = ["ademamix"]


@declares_hyperparameters("learning_rate", "b1", "b2", "b3", "alpha", "eps", "weight_decay")
def ademamix(learning_rate: ScalarOrSchedule = 1e-3, b1: ArrayLike = 0.9,
             b2: ArrayLike = 0.999, b3: ArrayLike = 0.9999, weight_decay: ArrayLike = 0.0,
             weight_decouple: bool = False, fixed_decay: bool = False,
             alpha: ArrayLike = 5.0, t_alpha_beta3: ArrayLike | None = None,
             eps: ArrayLike = 1e-8, maximize: bool = False, *,
             mu_dtype: DTypeLike | None = None,
             nu_dtype: DTypeLike | None = None) -> GradientTransformation:
    r"""AdEMAMix: Adam's fast momentum mixed with a much slower one.

    With :math:`g_t = \pm\nabla f(\theta_{t-1})` (:math:`+\ \lambda\theta_{t-1}` with coupled
    decay, the default):

    .. math::

        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
        m^{slow}_t = \beta_3(t)\, m^{slow}_{t-1} + (1 - \beta_3(t))\, g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        \theta_t &= \theta_{t-1} - \eta_t\, \frac{m_t / (1 - \beta_1^t)
                    + \alpha(t)\, m^{slow}_t}{\sqrt{v_t} / \sqrt{1 - \beta_2^t} + \epsilon}
                    \ \bigl[-\ \eta_t\lambda\,\theta_{t-1}\ \text{decoupled}\bigr]

    where :math:`\alpha(t)` and :math:`\beta_3(t)` warm up over ``t_alpha_beta3`` steps
    (linearly, and along the half-life, from :math:`\beta_1`; see
    :func:`~optxform.scale_by_ademamix`), or are constant without it.

    Args:
      learning_rate: :math:`\eta \ge 0`, a number or a schedule (reference ``lr``).
      b1, b2, b3: :math:`\beta_1, \beta_2, \beta_3 \in [0, 1)`: the fast momentum, the
        second moment, the slow momentum (reference ``betas=(b1, b2, b3)``).
      weight_decay: :math:`\lambda \ge 0`.
      weight_decouple: decay the params (:math:`\theta \leftarrow \theta(1 - \eta\lambda)`)
        instead of adding :math:`\lambda\theta` to the gradient (the reference's default
        is coupled).
      fixed_decay: with ``weight_decouple``, :math:`\theta \leftarrow \theta(1 - \lambda)`;
        ignored for coupled decay.
      alpha: :math:`\alpha \ge 0`, the weight of the slow momentum.
      t_alpha_beta3: warm-up length of :math:`\alpha` and :math:`\beta_3` in steps
        (``> 0``), or ``None`` for none.
      eps: :math:`\epsilon \ge 0`.
      maximize: ascend the objective instead.
      mu_dtype, nu_dtype: storage dtypes of the momenta (``None``: the param dtype) and of
        the second moment (``None``: float32 or wider).

    Returns:
      A :class:`~optxform.GradientTransformation`: a named chain ``sign`` (``scale(±1)``),
      ``decay`` (coupled ``add_decayed_weights``), ``ademamix``
      (:func:`~optxform.scale_by_ademamix`), ``lr`` (``scale_by_learning_rate``), and with
      ``weight_decouple`` ``decay`` (``add_decoupled_weight_decay``) after it instead.
      Complex params are refused, as by the reference.

    Equivalents: ``pytorch_optimizer.AdEMAMix(params, lr, betas=(b1, b2, b3),
    weight_decay, weight_decouple, fixed_decay, alpha, t_alpha_beta3, eps,
    maximize=maximize)`` (4.1.0). ``optax.contrib.ademamix`` decays like AdamW and takes
    the warm-ups as schedules.
    Reference: Pagliardini et al., 2024, https://arxiv.org/abs/2409.03137.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.ademamix(0.1, alpha=0.0)   # without the slow momentum: Adam
        >>> params = {"w": jnp.array([1.0])}
        >>> updates, state = tx.update({"w": jnp.array([2.0])}, tx.init(params), params)
        >>> round(float(updates["w"][0]), 4)
        -0.1
        >>> sorted(state)
        ['ademamix', 'decay', 'lr', 'sign']
    """
    check_learning_rate(learning_rate)
    before, after = split_weight_decay(weight_decay, learning_rate, weight_decouple,
                                       fixed_decay)
    return recipe(*gradient_prelude(maximize), *before,
                  ("ademamix", scale_by_ademamix(b1, b2, b3, alpha, t_alpha_beta3, eps,
                                                 mu_dtype, nu_dtype)),
                  ("lr", scale_by_learning_rate(learning_rate)), *after)
