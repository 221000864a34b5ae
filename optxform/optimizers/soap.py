"""The soap optimizer alias (``pytorch_optimizer.SOAP``)."""

from __future__ import annotations

from typing import Literal

from jax.typing import ArrayLike

from optxform.core import GradientTransformation, ScalarOrSchedule
from optxform.core.base import declares_hyperparameters
from optxform.core.validation import check_learning_rate, check_non_negative
from optxform.optimizers.recipe import gradient_prelude, recipe
from optxform.transforms.scaling import scale_by_learning_rate
from optxform.transforms.soap import scale_by_soap
from optxform.transforms.weight_decay import add_decoupled_weight_decay_after_step

__all__ = ["soap"]


@declares_hyperparameters("learning_rate", "b1", "b2", "weight_decay", "eps")
def soap(learning_rate: ScalarOrSchedule = 3e-3, b1: ArrayLike = 0.95, b2: ArrayLike = 0.95,
         shampoo_beta: ArrayLike | None = None, weight_decay: ArrayLike = 1e-2,
         precondition_frequency: int = 10, max_precondition_dim: int = 10000,
         merge_dims: bool = False, precondition_1d: bool = False, correct_bias: bool = True,
         normalize_gradient: bool = False,
         data_format: Literal["channels_first", "channels_last"] = "channels_first",
         eps: ArrayLike = 1e-8, maximize: bool = False) -> GradientTransformation:
    r"""SOAP, "ShampoO with Adam in the Preconditioner's eigenbasis" (Vyas et al. 2024),
    as ``pytorch_optimizer.SOAP``.

    .. math::

        u_t &= c_t \cdot \mathrm{Adam}_{Q}(g_t), \qquad
        c_t = \frac{\sqrt{1-\beta_2^{t-1}}}{1-\beta_1^{t-1}} \\
        \theta_t &= \big(\theta_{t-1} - \eta_t\, u_t\big)\,(1 - \eta_t\lambda)

    :math:`\mathrm{Adam}_Q` is Adam's direction computed in the rotated coordinates
    :math:`G \times_k Q_k^\top` and rotated back, where :math:`Q_k` are the eigenvectors of
    an EMA of each axis's statistic :math:`G_{(k)}G_{(k)}^\top`, refreshed every
    ``precondition_frequency`` updates by one power iteration (:func:`scale_by_soap` has
    the full update). The first update only builds the bases: the params do not move (no
    decay either), hence the bias corrections at :math:`t-1`. The decay multiplies the
    params *after* the step.

    Args:
      learning_rate: :math:`\eta_t`, a number or a schedule.
      b1, b2: Adam's decay rates (the reference's ``betas``).
      shampoo_beta: EMA rate of the statistics; ``None``: ``b2``.
      weight_decay: :math:`\lambda \ge 0`, decoupled, applied after the step.
      precondition_frequency: updates between refreshes of the bases.
      max_precondition_dim: axes longer than this are not preconditioned.
      merge_dims: merge small adjacent axes (product within ``max_precondition_dim``).
      precondition_1d: precondition vectors too.
      correct_bias: Adam's bias corrections (as :math:`c_t`).
      normalize_gradient: divide the direction by its RMS (plus ``eps``).
      data_format: layout of 4-D params for ``merge_dims`` (``"channels_first"`` or
        ``"channels_last"``).
      eps: Adam's :math:`\varepsilon`.
      maximize: ascend instead.

    Returns:
      A ``GradientTransformation``: a named chain ``sign`` (maximize), ``soap``
      (:func:`scale_by_soap`), ``lr``, ``decay``
      (:func:`add_decoupled_weight_decay_after_step` from the second update). Its
      ``update`` needs ``params``.

    Equivalents: ``pytorch_optimizer.SOAP(params, lr, betas=(b1, b2), shampoo_beta,
    weight_decay, precondition_frequency, max_precondition_dim, merge_dims,
    precondition_1d, correct_bias, normalize_gradient, data_format, eps, maximize)``
    (same defaults); no torch.optim or optax counterpart.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.soap(learning_rate=0.1, weight_decay=0.0)
        >>> params = {"w": jnp.zeros((2, 2))}
        >>> state = tx.init(params)
        >>> for g in ([[1.0, 0.0], [0.0, 2.0]], [[2.0, 0.0], [0.0, 1.0]]):
        ...     updates, state = tx.update({"w": jnp.array(g)}, state, params)
        >>> jnp.round(updates["w"] / 0.1)  # Adam's first step: -lr * sign, in units of lr
        Array([[-1., -0.],
               [-0., -1.]], dtype=float32)
    """
    check_learning_rate(learning_rate)
    check_non_negative("weight_decay", weight_decay)
    return recipe(*gradient_prelude(maximize),
                  ("soap", scale_by_soap(b1, b2, shampoo_beta, eps, precondition_frequency,
                                         max_precondition_dim, merge_dims, precondition_1d,
                                         correct_bias, normalize_gradient, data_format)),
                  ("lr", scale_by_learning_rate(learning_rate)),
                  ("decay", add_decoupled_weight_decay_after_step(
                      weight_decay, learning_rate, first_step=2)))
