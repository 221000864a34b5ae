"""The lion optimizer alias."""

from __future__ import annotations

from jax.typing import ArrayLike, DTypeLike

from optxform.core import GradientTransformation, ScalarOrSchedule
from optxform.core.base import declares_hyperparameters
from optxform.core.validation import check_learning_rate, check_non_negative, check_range
from optxform.optimizers.recipe import recipe
from optxform.transforms.scaling import scale_by_learning_rate
from optxform.transforms.sign import scale_by_lion
from optxform.transforms.weight_decay import add_decayed_weights

__all__ = ["lion"]


@declares_hyperparameters("learning_rate", "b1", "b2", "weight_decay")
def lion(learning_rate: ScalarOrSchedule = 1e-4, b1: ArrayLike = 0.9, b2: ArrayLike = 0.99,
         weight_decay: ArrayLike = 0.0, *,
         mu_dtype: DTypeLike | None = None) -> GradientTransformation:
    r"""Lion, "EvoLved Sign Momentum" (Chen et al. 2023), with decoupled weight decay.

    .. math::

        u_t &= \operatorname{sign}\big((1-\beta_1)\, g_t + \beta_1 m_{t-1}\big) \\
        m_t &= (1-\beta_2)\, g_t + \beta_2 m_{t-1}, \qquad m_0 = 0 \\
        \theta_t &= \theta_{t-1} - \eta_t\,(u_t + \lambda\,\theta_{t-1})

    Every element moves by exactly :math:`\eta` (plus decay) per step, so Lion wants a
    learning rate 3-10x smaller than AdamW's and a weight decay 3-10x larger.

    Args:
      learning_rate: :math:`\eta`, a number or a schedule.
      b1: :math:`\beta_1 \in [0, 1)`, the interpolation weight of the update.
      b2: :math:`\beta_2 \in [0, 1)`, the decay of the momentum.
      weight_decay: :math:`\lambda \ge 0`, decoupled (multiplied by the learning rate,
        not by the sign).
      mu_dtype: storage dtype of the momentum (optax's option); default the param dtype.

    Returns:
      A :class:`GradientTransformation` whose state is a dict keyed by the chain members'
        roles: ``"lion"`` (:class:`ScaleByLionState`), ``"decay"`` (:class:`EmptyState`)
        and ``"lr"`` (:class:`ScaleByLearningRateState`).

    Chain members: ``scale_by_lion(b1, b2)``, ``add_decayed_weights(weight_decay)``
    (a no-op at the number  0), ``scale_by_learning_rate``. State: the momentum in the param
    dtype, an int32 counter.

    Equivalents: ``optax.lion(learning_rate, b1, b2, weight_decay=weight_decay)`` (optax's
    default ``weight_decay`` is 1e-3, ours is 0); torch.optim has no Lion.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.lion(1e-3)
        >>> params = {"w": jnp.ones(2)}
        >>> updates, _ = tx.update({"w": jnp.array([3.0, -2.0])}, tx.init(params), params)
        >>> updates["w"]
        Array([-0.001,  0.001], dtype=float32)
    """
    check_learning_rate(learning_rate)
    check_range("b1", b1, 0.0, 1.0)
    check_range("b2", b2, 0.0, 1.0)
    check_non_negative("weight_decay", weight_decay)

    return recipe(("lion", scale_by_lion(b1=b1, b2=b2, mu_dtype=mu_dtype)),
                  ("decay", add_decayed_weights(weight_decay)),
                  ("lr", scale_by_learning_rate(learning_rate)))
