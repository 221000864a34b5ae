"""The adadelta optimizer alias."""

from __future__ import annotations

from jax.typing import ArrayLike, DTypeLike

from optxform.core import GradientTransformation, ScalarOrSchedule
from optxform.core.base import declares_hyperparameters
from optxform.core.validation import check_learning_rate, check_non_negative, check_range
from optxform.optimizers.recipe import gradient_prelude, recipe
from optxform.transforms.rms import scale_by_adadelta
from optxform.transforms.scaling import scale_by_learning_rate

__all__ = ["adadelta"]


@declares_hyperparameters("learning_rate", "rho", "eps", "weight_decay")
def adadelta(learning_rate: ScalarOrSchedule = 1.0, rho: ArrayLike = 0.9, eps: ArrayLike = 1e-6,
             weight_decay: ArrayLike = 0.0, maximize: bool = False, *,
             nu_dtype: DTypeLike | None = None) -> GradientTransformation:
    r"""Adadelta (Zeiler 2012) as torch implements it, with a learning rate on top.

    .. math::

        g_t &\leftarrow \pm\nabla f(\theta_{t-1}) + \lambda\,\theta_{t-1} \\
        v_t &= \rho\, v_{t-1} + (1-\rho)\, g_t^2 \\
        \Delta_t &= \sqrt{a_{t-1} + \epsilon}\,\big/\sqrt{v_t + \epsilon}\;\cdot g_t \\
        a_t &= \rho\, a_{t-1} + (1-\rho)\, \Delta_t^2 \\
        \theta_t &= \theta_{t-1} - \eta_t\, \Delta_t

    The paper has no learning rate; torch multiplies by ``lr`` (default 1.0, i.e. none).

    Args:
      learning_rate: :math:`\eta`, a number or a schedule (torch ``lr``).
      rho: :math:`\rho \in [0, 1]`, the decay of both running averages.
      eps: :math:`\epsilon \ge 0`, inside both square roots.
      weight_decay: :math:`\lambda \ge 0`, coupled L2.
      maximize: ascend the objective instead.
      nu_dtype: storage dtype of both averages; default float32 or wider. Not in torch.

    Returns:
      A :class:`GradientTransformation` whose state is a dict keyed by the chain members'
        roles: ``"sign"`` and ``"decay"`` (:class:`EmptyState`), ``"adadelta"``
        (:class:`ScaleByAdadeltaState`) and ``"lr"`` (:class:`ScaleByLearningRateState`).

    Chain members: ``scale(±1.)`` (maximize), ``add_decayed_weights(weight_decay)`` (a no-op at
    the number  0), ``scale_by_adadelta(rho, eps)``, ``scale_by_learning_rate``. State: two
    float32-or-wider averages and an int32 counter.

    Equivalents: ``torch.optim.Adadelta(params, lr, rho, eps, weight_decay,
    maximize=maximize)``; ``optax.adadelta(learning_rate, rho, eps, weight_decay)`` uses
    the same scaling (optax's default learning rate is ``None``, its ``weight_decay`` is
    also coupled).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.adadelta()
        >>> params = {"w": jnp.ones(2)}
        >>> updates, _ = tx.update({"w": jnp.ones(2)}, tx.init(params), params)
        >>> bool(updates["w"][0] < 0)
        True
    """
    check_learning_rate(learning_rate)
    check_range("rho", rho, 0.0, 1.0, high_closed=True)
    check_non_negative("eps", eps)
    check_non_negative("weight_decay", weight_decay)

    return recipe(*gradient_prelude(maximize, weight_decay),
                  ("adadelta", scale_by_adadelta(rho=rho, eps=eps, nu_dtype=nu_dtype)),
                  ("lr", scale_by_learning_rate(learning_rate)))
