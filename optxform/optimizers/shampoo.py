"""The shampoo optimizer alias (``pytorch_optimizer.Shampoo``, plus grafting)."""

from __future__ import annotations

from typing import Literal

from jax.typing import ArrayLike

from optxform.core import GradientTransformation, ScalarOrSchedule
from optxform.core.base import declares_hyperparameters
from optxform.core.validation import check_flag, check_learning_rate, check_non_negative
from optxform.optimizers.recipe import gradient_prelude, recipe
from optxform.transforms.scaling import scale_by_learning_rate
from optxform.transforms.shampoo import scale_by_shampoo
from optxform.transforms.weight_decay import add_decoupled_weight_decay

__all__ = ["shampoo"]


@declares_hyperparameters("learning_rate", "momentum", "weight_decay", "matrix_eps")
def shampoo(learning_rate: ScalarOrSchedule = 1e-3, momentum: ArrayLike = 0.0,
            weight_decay: ArrayLike = 0.0, weight_decouple: bool = False,
            fixed_decay: bool = False, preconditioning_compute_steps: int = 1,
            matrix_eps: ArrayLike = 1e-6, maximize: bool = False,
            grafting: Literal["adam", "rmsprop"] | None = None,
            graft_b2: ArrayLike | None = None,
            graft_eps: ArrayLike = 1e-8) -> GradientTransformation:
    r"""Shampoo (Gupta, Koren & Singer 2018), as ``pytorch_optimizer.Shampoo``, with
    optional Adam or RMSprop grafting (Distributed Shampoo).

    .. math::

        G &= (1-\mu)\, g_t + \mu\, u_{t-1} \;[+ \lambda\theta_{t-1}], \qquad
        L_k \mathrel{+}= G_{(k)} G_{(k)}^\top \\
        u_t &= G \times_0 L_0^{-1/2n} \cdots \times_{n-1} L_{n-1}^{-1/2n}
        \;[\cdot \lVert D\rVert_F / \lVert u_t\rVert_F] \\
        \theta_t &= [(1 - \eta_t\lambda)]\,\theta_{t-1} - \eta_t\, u_t

    for a param with :math:`n` axes (a matrix: :math:`L^{-1/4} G R^{-1/4}`). Brackets: the
    coupled decay (default) or, with ``weight_decouple``, the decoupled one (times
    :math:`\lambda` alone with ``fixed_decay``); the grafting rescale, where :math:`D` is
    Adam's or RMSprop's direction for :math:`G`. The momentum mixes the gradient with the
    previous *update* (the reference's buffer; unused at :math:`\mu = 0`).
    :func:`scale_by_shampoo` has the details (initial values, the SVD roots, when they
    are recomputed).

    Args:
      learning_rate: :math:`\eta_t`, a number or a schedule.
      momentum: :math:`\mu \in [0, 1)`.
      weight_decay: :math:`\lambda \ge 0`.
      weight_decouple: decoupled decay (params times :math:`1 - \eta\lambda`) instead of
        adding :math:`\lambda\theta` to the gradient.
      fixed_decay: with ``weight_decouple``, the factor is :math:`1 - \lambda`.
      preconditioning_compute_steps: updates between inverse-root computations.
      matrix_eps: :math:`\epsilon`, the statistics start at :math:`\epsilon I`.
      maximize: ascend instead.
      grafting: ``None`` (the reference), ``"adam"`` or ``"rmsprop"``: each param's update
        takes the Frobenius norm of that optimizer's direction.
      graft_b2: the grafted optimizer's second-moment decay; ``None``: 0.999 (Adam), 0.99
        (RMSprop), Distributed Shampoo's defaults.
      graft_eps: the grafted optimizer's :math:`\epsilon`.

    Returns:
      A ``GradientTransformation``: a named chain ``sign`` (maximize), ``shampoo``
      (:func:`scale_by_shampoo`, holding the coupled decay), ``lr``, ``decay`` (the
      decoupled one). Its ``update`` needs ``params``.

    Equivalents: ``pytorch_optimizer.Shampoo(params, lr, momentum, weight_decay,
    weight_decouple, fixed_decay, preconditioning_compute_steps, matrix_eps, maximize)``
    (same defaults; no grafting there); no torch.optim or optax counterpart (optax's
    contrib has no Shampoo).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.shampoo(learning_rate=0.1, matrix_eps=0.0)
        >>> params = {"w": jnp.zeros((2, 2))}
        >>> g = {"w": jnp.array([[2.0, 0.0], [0.0, 8.0]])}
        >>> updates, _ = tx.update(g, tx.init(params), params)
        >>> jnp.round(updates["w"] / 0.1)  # -lr (L R)^(-1/4) g = -lr I, in units of lr
        Array([[-1., -0.],
               [-0., -1.]], dtype=float32)
    """
    check_learning_rate(learning_rate)
    check_non_negative("weight_decay", weight_decay)
    check_flag("weight_decouple", weight_decouple)
    check_flag("fixed_decay", fixed_decay)
    coupled, decoupled = (0.0, weight_decay) if weight_decouple else (weight_decay, 0.0)
    return recipe(*gradient_prelude(maximize),
                  ("shampoo", scale_by_shampoo(momentum, coupled,
                                               preconditioning_compute_steps, matrix_eps,
                                               grafting, graft_b2, graft_eps,
                                               maximize=maximize)),
                  ("lr", scale_by_learning_rate(learning_rate)),
                  ("decay", add_decoupled_weight_decay(
                      decoupled, 1.0 if fixed_decay else learning_rate)))
