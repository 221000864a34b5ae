"""The sgd optimizer alias."""

from __future__ import annotations

from jax.typing import ArrayLike, DTypeLike

from optxform.core import GradientTransformation, ScalarOrSchedule
from optxform.core.base import declares_hyperparameters
from optxform.core.validation import (check_flag, check_learning_rate, check_non_negative,
                                      check_range, concrete_value)
from optxform.optimizers.recipe import gradient_prelude, recipe
from optxform.tree.numerics import is_zero
from optxform.transforms.momentum import trace
from optxform.transforms.scaling import scale_by_learning_rate

__all__ = ["sgd"]


@declares_hyperparameters("learning_rate", "momentum", "dampening", "weight_decay")
def sgd(learning_rate: ScalarOrSchedule = 1e-3, momentum: ArrayLike = 0.0,
        dampening: ArrayLike = 0.0, weight_decay: ArrayLike = 0.0, nesterov: bool = False,
        maximize: bool = False, *,
        accumulator_dtype: DTypeLike | None = None) -> GradientTransformation:
    r"""Stochastic gradient descent with torch's momentum, dampening, Nesterov and L2 decay.

    .. math::

        g_t &\leftarrow \pm\nabla f(\theta_{t-1}) + \lambda\,\theta_{t-1}
              \quad(- \text{ with maximize}) \\
        b_1 &= g_1,\qquad b_t = \mu\, b_{t-1} + (1-\tau)\, g_t \\
        d_t &= g_t + \mu\, b_t \ \text{(nesterov)}, \quad b_t \ \text{(momentum)},
              \quad g_t \ (\mu = 0) \\
        \theta_t &= \theta_{t-1} - \eta_t\, d_t

    torch's quirk: the momentum buffer starts at the first gradient (not at zero and not at
    ``(1 - dampening) g``), so dampening only acts from the second step on.

    Args:
      learning_rate: :math:`\eta`, a number or a schedule ``step -> lr`` (torch ``lr``).
      momentum: :math:`\mu \ge 0`; ``0`` (a Python number) means no momentum buffer.
      dampening: :math:`\tau \in [0, 1]`.
      weight_decay: :math:`\lambda \ge 0`, coupled L2 (added to the gradient).
      nesterov: Nesterov momentum; needs ``momentum > 0`` and ``dampening == 0``.
      maximize: ascend the objective instead.
      accumulator_dtype: storage dtype of the momentum buffer (optax's name); default the
        param dtype. Not in torch.

    Returns:
      A :class:`GradientTransformation` whose state is a dict keyed by the chain members'
        roles: ``"sign"`` and ``"decay"`` (:class:`EmptyState`), ``"momentum_buffer"``
        (:class:`TraceState`; only when ``momentum`` is not the number 0) and ``"lr"``
        (:class:`ScaleByLearningRateState`).

    Chain members, in order: ``scale(±1.)`` (maximize),
    ``add_decayed_weights(weight_decay)`` (a no-op at the number  0),
    ``trace(momentum, dampening, nesterov)`` (unless ``momentum`` is the number 0),
    ``scale_by_learning_rate(learning_rate)``. State: the momentum buffer in the param
    dtype, int32 counters.

    Equivalents: ``torch.optim.SGD(params, lr, momentum, dampening, weight_decay, nesterov,
    maximize=maximize)``; ``optax.sgd(learning_rate, momentum, nesterov)`` when
    ``dampening = weight_decay = 0`` (optax's zero-started trace coincides with torch's
    buffer then).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.sgd(0.1, momentum=0.9)
        >>> params = {"w": jnp.ones(3)}
        >>> updates, state = tx.update({"w": jnp.ones(3)}, tx.init(params), params)
        >>> updates["w"]
        Array([-0.1, -0.1, -0.1], dtype=float32)
    """
    check_learning_rate(learning_rate)
    check_flag("nesterov", nesterov)
    check_non_negative("momentum", momentum)
    check_range("dampening", dampening, 0.0, 1.0, high_closed=True)
    check_non_negative("weight_decay", weight_decay)
    if nesterov:
        m, d = concrete_value(momentum), concrete_value(dampening)
        if (m is not None and m <= 0) or (d is not None and d != 0):
            raise ValueError(
                f"Invalid nesterov: True with momentum={momentum!r}, dampening={dampening!r} "
                "(nesterov requires momentum > 0 and dampening == 0)")

    members = gradient_prelude(maximize, weight_decay)
    if not is_zero(momentum):
        members.append(("momentum_buffer", trace(momentum, dampening, nesterov,
                                                          accumulator_dtype)))
    members.append(("lr", scale_by_learning_rate(learning_rate)))
    return recipe(*members)
