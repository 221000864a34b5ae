"""The adagrad optimizer alias."""

from __future__ import annotations

import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from optxform.core import GradientTransformation, ScalarOrSchedule
from optxform.core.base import declares_hyperparameters
from optxform.core.validation import check_learning_rate, check_non_negative
from optxform.optimizers.recipe import gradient_prelude, recipe
from optxform.tree.numerics import is_zero
from optxform.transforms.rms import scale_by_adagrad
from optxform.transforms.scaling import scale_by_learning_rate

__all__ = ["adagrad"]


def _decayed_learning_rate(learning_rate, lr_decay):
    """torch Adagrad's ``clr = lr / (1 + (t - 1) * lr_decay)`` as a schedule of the count."""

    def schedule(count):
        lr = learning_rate(count) if callable(learning_rate) else learning_rate
        lr = jnp.asarray(lr, jnp.float32)
        steps = jnp.asarray(count).astype(jnp.float32)
        return lr / (1.0 + steps * jnp.asarray(lr_decay, jnp.float32))

    return schedule


@declares_hyperparameters(
    "learning_rate", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")
def adagrad(learning_rate: ScalarOrSchedule = 1e-2, lr_decay: ArrayLike = 0.0,
            weight_decay: ArrayLike = 0.0, initial_accumulator_value: ArrayLike = 0.0,
            eps: ArrayLike = 1e-10, maximize: bool = False, *,
            nu_dtype: DTypeLike | None = None) -> GradientTransformation:
    r"""Adagrad (Duchi et al. 2011) as torch implements it.

    .. math::

        g_t &\leftarrow \pm\nabla f(\theta_{t-1}) + \lambda\,\theta_{t-1} \\
        \tilde\eta_t &= \eta_t / (1 + (t-1)\,\delta) \\
        s_t &= s_{t-1} + g_t^2, \qquad s_0 = \text{initial\_accumulator\_value} \\
        \theta_t &= \theta_{t-1} - \tilde\eta_t\, g_t / (\sqrt{s_t} + \epsilon)

    Args:
      learning_rate: :math:`\eta`, a number or a schedule (torch ``lr``).
      lr_decay: :math:`\delta \ge 0`; the learning rate at step :math:`t` (1-based) is
        divided by :math:`1 + (t-1)\delta`.
      weight_decay: :math:`\lambda \ge 0`, coupled L2.
      initial_accumulator_value: :math:`s_0 \ge 0`.
      eps: :math:`\epsilon \ge 0`, added after the square root.
      maximize: ascend the objective instead.
      nu_dtype: storage dtype of the sum of squares; default float32 or wider. Not in torch.

    Returns:
      A :class:`GradientTransformation` whose state is a dict keyed by the chain members'
        roles: ``"sign"`` and ``"decay"`` (:class:`EmptyState`), ``"adagrad"``
        (:class:`ScaleByAdagradState`) and ``"lr"`` (:class:`ScaleByLearningRateState`).

    Chain members: ``scale(±1.)`` (maximize), ``add_decayed_weights(weight_decay)`` (a no-op at
    the number  0), ``scale_by_adagrad(initial_accumulator_value, eps)``,
    ``scale_by_learning_rate`` (``lr_decay`` is the schedule
    ``count -> lr / (1 + count * lr_decay)``; with ``lr_decay`` the number 0 the learning
    rate is passed as given). State: the sum float32 or wider, an int32 counter.

    Equivalents: ``torch.optim.Adagrad(params, lr, lr_decay, weight_decay,
    initial_accumulator_value, eps, maximize=maximize)``. Differences from
    ``optax.adagrad``: optax defaults to ``initial_accumulator_value=0.1, eps=1e-7``, puts
    eps inside the square root and has no ``lr_decay``.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.adagrad(0.1)
        >>> params = {"w": jnp.ones(2)}
        >>> updates, _ = tx.update({"w": 3 * jnp.ones(2)}, tx.init(params), params)
        >>> updates["w"]  # -lr * g / sqrt(g^2) on the first step
        Array([-0.1, -0.1], dtype=float32)
    """
    check_learning_rate(learning_rate)
    check_non_negative("lr_decay", lr_decay)
    check_non_negative("weight_decay", weight_decay)
    check_non_negative("initial_accumulator_value", initial_accumulator_value)
    check_non_negative("eps", eps)

    lr = learning_rate if is_zero(lr_decay) else _decayed_learning_rate(learning_rate, lr_decay)
    return recipe(*gradient_prelude(maximize, weight_decay),
                  ("adagrad", scale_by_adagrad(
                      initial_accumulator_value=initial_accumulator_value, eps=eps,
                      nu_dtype=nu_dtype)),
                  ("lr", scale_by_learning_rate(lr)))
