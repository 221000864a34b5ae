"""The asgd optimizer alias."""

from __future__ import annotations

from jax.typing import ArrayLike

from optxform.core import GradientTransformation, ScalarOrSchedule
from optxform.core.base import declares_hyperparameters
from optxform.core.validation import check_learning_rate, check_non_negative
from optxform.optimizers.recipe import gradient_prelude, recipe
from optxform.transforms.averaging import asgd_averaging, asgd_learning_rate
from optxform.transforms.scaling import scale_by_learning_rate
from optxform.transforms.weight_decay import add_decayed_weights

__all__ = ["asgd"]


@declares_hyperparameters("learning_rate", "lambd", "alpha", "t0", "weight_decay")
def asgd(learning_rate: ScalarOrSchedule = 1e-2, lambd: ArrayLike = 1e-4, alpha: ArrayLike = 0.75,
         t0: ArrayLike = 1e6, weight_decay: ArrayLike = 0.0,
         maximize: bool = False) -> GradientTransformation:
    r"""Averaged SGD as torch implements it: decaying step size, decay term, iterate average.

    .. math::

        g_t &\leftarrow \pm\nabla f(\theta_{t-1}) + \lambda_{wd}\,\theta_{t-1} \\
        \eta_t &= \text{lr} / (1 + \lambda\,\text{lr}\,(t-1))^{\alpha} \\
        \theta_t &= \theta_{t-1}\,(1 - \lambda\eta_t) - \eta_t\, g_t \\
        \mu_t &= 1 / \max(1,\ t - 1 - t_0) \\
        \bar\theta_t &= \bar\theta_{t-1} + \mu_t (\theta_t - \bar\theta_{t-1})
                        \quad(= \theta_t \text{ while } \mu_t = 1)

    torch's quirks, kept: :math:`\eta` and :math:`\mu` used at step :math:`t` are computed
    from the step count :math:`t-1` (at the end of the previous step), so the first step
    uses ``lr`` and weight 1; the average is a plain copy of the iterate for the first
    ``t0 + 1`` steps. The params the optimizer moves are the plain iterates; the averaged
    params (torch's ``state['ax']``) are read with ``optxform.asgd_average(state)``.

    Args:
      learning_rate: ``lr``, a number or a schedule (``eta`` then uses the schedule's
        value at the same step).
      lambd: :math:`\lambda \ge 0`, the decay term (also damps the step size).
      alpha: :math:`\alpha \ge 0`, the power of the step-size decay.
      t0: :math:`t_0 \ge 0`, the step at which averaging starts.
      weight_decay: :math:`\lambda_{wd} \ge 0`, coupled L2.
      maximize: ascend the objective instead.

    Returns:
      A :class:`GradientTransformation` whose state is a dict keyed by the chain members'
        roles: ``"sign"``, ``"decay"`` and ``"lambd_decay"`` (:class:`EmptyState`),
        ``"lr"`` (:class:`ScaleByLearningRateState`) and ``"averaging"``
        (:class:`AsgdAveragingState`, which holds the average :func:`asgd_average` reads).

    Chain members: ``scale(±1.)`` (maximize), ``add_decayed_weights(weight_decay)`` (a no-op at
    the number  0), ``add_decayed_weights(lambd)`` (the decay term; a no-op at the number 0),
    ``scale_by_learning_rate(asgd_learning_rate(learning_rate, lambd, alpha))``,
    ``asgd_averaging(t0)``. State: ``ax`` in the param dtype, int32 counters.

    Equivalents: ``torch.optim.ASGD(params, lr, lambd, alpha, t0, weight_decay,
    maximize=maximize)``; optax has none.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.asgd(0.1, t0=0)
        >>> params = {"w": jnp.ones(2)}
        >>> state = tx.init(params)
        >>> updates, state = tx.update({"w": jnp.ones(2)}, state, params)
        >>> params = optxform.apply_updates(params, updates)
        >>> optxform.asgd_average(state)["w"].shape
        (2,)
    """
    check_learning_rate(learning_rate)
    check_non_negative("lambd", lambd)
    check_non_negative("alpha", alpha)
    check_non_negative("t0", t0)
    check_non_negative("weight_decay", weight_decay)

    return recipe(*gradient_prelude(maximize, weight_decay),
                  ("lambd_decay", add_decayed_weights(lambd)),
                  ("lr",
                   scale_by_learning_rate(asgd_learning_rate(learning_rate, lambd, alpha))),
                  ("averaging", asgd_averaging(t0)))
