"""The adabelief optimizer alias (``pytorch-optimizer``'s ``AdaBelief``)."""

from __future__ import annotations

from jax.typing import ArrayLike, DTypeLike

from optxform.core import GradientTransformation, ScalarOrSchedule
from optxform.core.base import declares_hyperparameters
from optxform.core.validation import check_learning_rate
from optxform.optimizers.recipe import gradient_prelude, recipe, split_weight_decay
from optxform.transforms.belief import scale_by_belief
from optxform.transforms.scaling import scale_by_learning_rate

__all__ = ["adabelief"]


@declares_hyperparameters("learning_rate", "b1", "b2", "eps", "weight_decay")
def adabelief(learning_rate: ScalarOrSchedule = 1e-3, b1: ArrayLike = 0.9,
              b2: ArrayLike = 0.999, weight_decay: ArrayLike = 0.0,
              weight_decouple: bool = True, fixed_decay: bool = False, rectify: bool = False,
              n_sma_threshold: ArrayLike = 5, degenerated_to_sgd: bool = True,
              ams_bound: bool = False, eps: ArrayLike = 1e-16, maximize: bool = False, *,
              mu_dtype: DTypeLike | None = None,
              nu_dtype: DTypeLike | None = None) -> GradientTransformation:
    r"""AdaBelief: Adam normalised by the spread of the gradient around its mean.

    With :math:`g_t = \pm\nabla f(\theta_{t-1})` (:math:`+\ \lambda\theta_{t-1}` with coupled
    decay):

    .. math::

        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
        s_t = \beta_2 s_{t-1} + (1 - \beta_2)(g_t - m_t)^2 + \epsilon \\
        \theta_t &= \theta_{t-1} - \eta_t\, \frac{m_t / (1 - \beta_1^t)}
                    {\sqrt{\hat s_t} / \sqrt{1 - \beta_2^t} + \epsilon}
                    \ \bigl[-\ \eta_t\lambda\,\theta_{t-1}\ \text{decoupled, the default}\bigr]

    with :math:`\hat s_t` the running maximum of :math:`s_t` under ``ams_bound``; with
    ``rectify``, RAdam's rectified step from :math:`\rho_t \ge` ``n_sma_threshold`` and a
    momentum (SGD) step or none before (see :func:`~optxform.scale_by_belief`).

    Args:
      learning_rate: :math:`\eta \ge 0`, a number or a schedule (reference ``lr``).
      b1, b2: :math:`\beta_1, \beta_2 \in [0, 1)` (reference ``betas``).
      weight_decay: :math:`\lambda \ge 0`.
      weight_decouple: decay the params, :math:`\theta \leftarrow \theta(1 - \eta\lambda)`
        (the default), instead of adding :math:`\lambda\theta` to the gradient.
      fixed_decay: with ``weight_decouple``, :math:`\theta \leftarrow \theta(1 - \lambda)`;
        ignored for coupled decay.
      rectify: RAdam's rectified update.
      n_sma_threshold: with ``rectify``, adapt from :math:`\rho_t \ge` this (``>= 4``).
      degenerated_to_sgd: with ``rectify``, a momentum step below the threshold (else none).
      ams_bound: normalise by the running maximum of :math:`s_t`.
      eps: :math:`\epsilon \ge 0`, added to :math:`s_t` and to its root.
      maximize: ascend the objective instead.
      mu_dtype, nu_dtype: storage dtypes of the mean (``None``: the param dtype) and of
        the belief (``None``: float32 or wider).

    Returns:
      A :class:`~optxform.GradientTransformation`: a named chain ``sign`` (``scale(±1)``),
      ``decay`` (coupled ``add_decayed_weights``, with ``weight_decouple=False``),
      ``adabelief`` (:func:`~optxform.scale_by_belief`), ``lr``
      (``scale_by_learning_rate``), and ``decay`` (``add_decoupled_weight_decay``) after it
      with ``weight_decouple``.

    Equivalents: ``pytorch_optimizer.AdaBelief(params, lr, betas=(b1, b2), weight_decay,
    weight_decouple, fixed_decay, rectify, n_sma_threshold, degenerated_to_sgd,
    ams_bound, eps=eps, maximize=maximize)`` (4.1.0); ``optax.adabelief(learning_rate, b1,
    b2, eps, eps_root=eps)`` without decay and options.
    Reference: Zhuang et al., 2020, https://arxiv.org/abs/2010.07468.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.adabelief(0.1)
        >>> params = {"w": jnp.array([1.0])}
        >>> updates, state = tx.update({"w": jnp.array([2.0])}, tx.init(params), params)
        >>> round(float(updates["w"][0]), 4)   # -lr / b1 on the first step
        -0.1111
    """
    check_learning_rate(learning_rate)
    before, after = split_weight_decay(weight_decay, learning_rate, weight_decouple,
                                       fixed_decay)
    return recipe(*gradient_prelude(maximize), *before,
                  ("adabelief", scale_by_belief(b1, b2, eps, rectify, n_sma_threshold,
                                                degenerated_to_sgd, ams_bound, mu_dtype,
                                                nu_dtype)),
                  ("lr", scale_by_learning_rate(learning_rate)), *after)
