"""The rmsprop optimizer alias."""

from __future__ import annotations

from jax.typing import ArrayLike, DTypeLike

from optxform.core import GradientTransformation, ScalarOrSchedule
from optxform.core.base import declares_hyperparameters
from optxform.core.validation import (check_flag, check_learning_rate, check_non_negative,
                                      check_range)
from optxform.optimizers.recipe import gradient_prelude, recipe
from optxform.tree.numerics import is_zero
from optxform.transforms.momentum import trace
from optxform.transforms.rms import scale_by_rms
from optxform.transforms.scaling import scale_by_learning_rate

__all__ = ["rmsprop"]


@declares_hyperparameters("learning_rate", "alpha", "eps", "weight_decay", "momentum")
def rmsprop(learning_rate: ScalarOrSchedule = 1e-2, alpha: ArrayLike = 0.99, eps: ArrayLike = 1e-8,
            weight_decay: ArrayLike = 0.0, momentum: ArrayLike = 0.0, centered: bool = False,
            maximize: bool = False, *, nu_dtype: DTypeLike | None = None,
            accumulator_dtype: DTypeLike | None = None) -> GradientTransformation:
    r"""RMSprop in torch's convention: eps added after the square root, zero-started state.

    .. math::

        g_t &\leftarrow \pm\nabla f(\theta_{t-1}) + \lambda\,\theta_{t-1} \\
        v_t &= \alpha\, v_{t-1} + (1-\alpha)\, g_t^2, \qquad v_0 = 0 \\
        \bar g_t &= \bar g_{t-1} + (1-\alpha)(g_t - \bar g_{t-1}) \quad\text{(centered)} \\
        d_t &= g_t \big/ \big(\sqrt{v_t - \bar g_t^{\,2}} + \epsilon\big)
               \quad(\bar g \equiv 0 \text{ unless centered}) \\
        b_t &= \mu\, b_{t-1} + d_t,\ b_0 = 0 \quad\text{(momentum)} \\
        \theta_t &= \theta_{t-1} - \eta_t\, b_t
                    \quad(\text{or } - \eta_t d_t \text{ without momentum})

    Args:
      learning_rate: :math:`\eta`, a number or a schedule (torch ``lr``).
      alpha: :math:`\alpha \in [0, 1]`, the decay of the squared-gradient average.
      eps: :math:`\epsilon \ge 0`, added outside the square root.
      weight_decay: :math:`\lambda \ge 0`, coupled L2.
      momentum: :math:`\mu \ge 0`; ``0`` (a Python number) means no buffer.
      centered: normalise by an estimate of the variance instead of the second moment.
      maximize: ascend the objective instead.
      nu_dtype: storage dtype of the square average (and, centered, the gradient
        average); default float32 or wider. Not in torch.
      accumulator_dtype: storage dtype of the momentum buffer; default the param dtype.

    Returns:
      A :class:`GradientTransformation` whose state is a dict keyed by the chain members'
        roles: ``"sign"`` and ``"decay"`` (:class:`EmptyState`), ``"rms"``
        (:class:`ScaleByRmsState`, or :class:`ScaleByCenteredRmsState` when centered),
        ``"momentum_buffer"`` (:class:`TraceState`; only when ``momentum`` is not the
        number 0) and ``"lr"`` (:class:`ScaleByLearningRateState`).

    Chain members, in order: ``scale(±1.)`` (maximize), ``add_decayed_weights(weight_decay)``
    (a no-op at the number  0), ``scale_by_rms(alpha, eps, eps_in_sqrt=False, centered)``,
    ``trace(momentum)`` (a no-op at the number 0; torch's RMSprop buffer starts at zero, which
    for dampening 0 is the same as starting at the first value), ``scale_by_learning_rate``.
    State dtypes: the RMS accumulators float32 or wider, the momentum buffer the param
    dtype, counters int32.

    Equivalents: ``torch.optim.RMSprop(params, lr, alpha, eps, weight_decay, momentum,
    centered, maximize=maximize)``. Differences from ``optax.rmsprop``: optax defaults to
    ``decay=0.9`` and puts eps inside the root (``eps_in_sqrt=True``); optax's
    ``rmsprop(lr, decay, eps, centered=..., momentum=...)`` equals the chain
    ``scale_by_rms(decay, eps, eps_in_sqrt=True, centered)``, ``trace(momentum)``,
    ``scale_by_learning_rate(lr)``.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.rmsprop(0.01)
        >>> params = {"w": jnp.ones(2)}
        >>> updates, _ = tx.update({"w": jnp.ones(2)}, tx.init(params), params)
        >>> [round(float(u), 6) for u in updates["w"]]  # -lr * g / sqrt(0.01 * g^2)
        [-0.1, -0.1]
    """
    check_learning_rate(learning_rate)
    check_flag("centered", centered)
    check_range("alpha", alpha, 0.0, 1.0, high_closed=True)
    check_non_negative("eps", eps)
    check_non_negative("weight_decay", weight_decay)
    check_non_negative("momentum", momentum)

    members = gradient_prelude(maximize, weight_decay)
    members.append(("rms", scale_by_rms(decay=alpha, eps=eps, eps_in_sqrt=False,
                                        centered=centered, nu_dtype=nu_dtype)))
    if not is_zero(momentum):
        members.append(("momentum_buffer",
                        trace(momentum, accumulator_dtype=accumulator_dtype)))
    members.append(("lr", scale_by_learning_rate(learning_rate)))
    return recipe(*members)
