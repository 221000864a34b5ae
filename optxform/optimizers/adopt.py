"""The adopt optimizer alias (``pytorch-optimizer``'s ``ADOPT``)."""

from __future__ import annotations

from jax.typing import ArrayLike, DTypeLike

from optxform.core import GradientTransformation, ScalarOrSchedule
from optxform.core.base import declares_hyperparameters
from optxform.core.validation import check_learning_rate
from optxform.optimizers.recipe import gradient_prelude, recipe, split_weight_decay
from optxform.transforms.adopt import ClipLambda, _fourth_root, scale_by_adopt
from optxform.transforms.scaling import scale_by_learning_rate

__all__ = ["adopt"]


@declares_hyperparameters("learning_rate", "b1", "b2", "eps", "weight_decay")
def adopt(learning_rate: ScalarOrSchedule = 1e-3, b1: ArrayLike = 0.9, b2: ArrayLike = 0.9999,
          clip_lambda: ClipLambda | None = _fourth_root, weight_decay: ArrayLike = 0.0,
          weight_decouple: bool = False, fixed_decay: bool = False, eps: ArrayLike = 1e-6,
          maximize: bool = False, *, mu_dtype: DTypeLike | None = None,
          nu_dtype: DTypeLike | None = None) -> GradientTransformation:
    r"""ADOPT: Adam normalised by the previous second moment, converging for any :math:`\beta_2`.

    With :math:`g_t = \pm\nabla f(\theta_{t-1})` (:math:`+\ \lambda\theta_{t-1}` with coupled
    decay): the first step records :math:`v_1 = g_1^2` and leaves :math:`\theta` alone (but
    for decoupled decay); each later step

    .. math::

        m_t &= \beta_1 m_{t-1} + (1 - \beta_1)\,\operatorname{clip}\Bigl(
               \frac{g_t}{\max(\sqrt{v_{t-1}},\ \epsilon)},\ \pm c(t)\Bigr) \\
        \theta_t &= \theta_{t-1} - \eta_t\, m_t
                    \ \bigl[-\ \eta_t\lambda\,\theta_{t-1}\ \text{decoupled}\bigr] \\
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2

    with :math:`c(t)` = ``clip_lambda(t)``, :math:`t^{1/4}` by default (:math:`t = 2` at
    the first update).

    Args:
      learning_rate: :math:`\eta \ge 0`, a number or a schedule (reference ``lr``).
      b1, b2: :math:`\beta_1, \beta_2 \in [0, 1)` (reference ``betas``).
      clip_lambda: ``step -> clip bound``, called with the step number as a JAX float
        scalar (use ``jnp`` or operators, not ``math``); ``None``: no clipping.
      weight_decay: :math:`\lambda \ge 0`.
      weight_decouple: decay the params (:math:`\theta \leftarrow \theta(1 - \eta\lambda)`,
        also at the first step) instead of adding :math:`\lambda\theta` to the gradient.
      fixed_decay: with ``weight_decouple``, :math:`\theta \leftarrow \theta(1 - \lambda)`
        (not scaled by the learning rate); ignored for coupled decay.
      eps: :math:`\epsilon \ge 0`, the floor of :math:`\sqrt{v}`.
      maximize: ascend the objective instead.
      mu_dtype, nu_dtype: storage dtypes of the moments; ``None``: the param dtype for
        ``mu``, float32 or wider for ``nu``.

    Returns:
      A :class:`~optxform.GradientTransformation`: a named chain ``sign`` (``scale(±1)``),
      ``decay`` (coupled ``add_decayed_weights``, before the rule), ``adopt``
      (:func:`~optxform.scale_by_adopt`), ``lr`` (``scale_by_learning_rate``), and with
      ``weight_decouple`` ``decay`` (``add_decoupled_weight_decay``) after it instead.

    Equivalents: ``pytorch_optimizer.ADOPT(params, lr, betas=(b1, b2), clip_lambda,
    weight_decay, weight_decouple, fixed_decay, eps=eps, maximize=maximize)`` (4.1.0);
    ``optax.contrib.adopt`` clips with :math:`c(t - 1)` (the paper's indexing).
    Reference: Taniguchi et al., 2024, https://arxiv.org/abs/2411.02853.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.adopt(0.1)
        >>> params = {"w": jnp.array([1.0])}
        >>> state = tx.init(params)
        >>> for g in (2.0, 1.0):   # step 1 records v = 4; step 2 moves by 0.1 * 0.1 * 1 / 2
        ...     updates, state = tx.update({"w": jnp.array([g])}, state, params)
        >>> round(float(updates["w"][0]), 6)
        -0.005
    """
    check_learning_rate(learning_rate)
    before, after = split_weight_decay(weight_decay, learning_rate, weight_decouple,
                                       fixed_decay)
    return recipe(*gradient_prelude(maximize), *before,
                  ("adopt", scale_by_adopt(b1, b2, eps, clip_lambda, mu_dtype, nu_dtype)),
                  ("lr", scale_by_learning_rate(learning_rate)), *after)
