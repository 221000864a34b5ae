r"""The adafactor alias (torch.optim.Adafactor)."""

from __future__ import annotations

from jax.typing import ArrayLike, DTypeLike

from optxform.core import GradientTransformation, ScalarOrSchedule
from optxform.core.base import declares_hyperparameters
from optxform.core.validation import check_learning_rate, check_non_negative
from optxform.optimizers.recipe import gradient_prelude, recipe
from optxform.transforms.weight_decay import add_decoupled_weight_decay
from optxform.transforms.factored import scale_by_factored_rms
from optxform.transforms.scaling import scale_by_learning_rate

__all__ = ["adafactor"]


@declares_hyperparameters("learning_rate", "beta2_decay", "d", "weight_decay")
def adafactor(learning_rate: ScalarOrSchedule = 1e-2, beta2_decay: ArrayLike = -0.8,
              eps: tuple[float | None, float] = (None, 1e-3), d: ArrayLike = 1.0,
              weight_decay: ArrayLike = 0.0, maximize: bool = False, *,
              nu_dtype: DTypeLike | None = None) -> GradientTransformation:
    r"""Adafactor with torch's conventions: factored second moments, relative step size.

    .. math::

        \hat\beta_{2,t} &= 1 - t^{\tau}, \qquad
        \rho_t = \min(\eta_t, 1/\sqrt t), \qquad
        \alpha_t = \max\bigl(\epsilon_2, \operatorname{RMS}(\theta_{t-1})\bigr)\, \rho_t \\
        R_t &= \hat\beta_{2,t} R_{t-1}
               + (1 - \hat\beta_{2,t})\operatorname{mean}_{\text{cols}}(G_t^2), \quad
        C_t = \hat\beta_{2,t} C_{t-1}
              + (1 - \hat\beta_{2,t})\operatorname{mean}_{\text{rows}}(G_t^2) \\
        \hat V_t &= \frac{R_t C_t}{\max(\operatorname{mean}_{\text{rows}} R_t, \epsilon_1)}
        \ (\text{dim} \ge 2), \qquad
        \hat V_t = \hat\beta_{2,t} \hat V_{t-1} + (1 - \hat\beta_{2,t}) G_t^2
        \ (\text{dim} \le 1) \\
        U_t &= G_t / \sqrt{\max(\hat V_t, \epsilon_1^2)}, \qquad
        \hat U_t = U_t / \max\bigl(1, \operatorname{RMS}(U_t)/d\bigr) \\
        \theta_t &= \theta_{t-1}(1 - \eta_t\lambda) - \alpha_t \hat U_t

    with :math:`G_t = \pm\nabla f(\theta_{t-1})` (``-`` with maximize). Params with two or
    more dims are factored over their last two axes. torch's quirks: the learning rate only
    caps the relative step :math:`\rho_t` and scales the (decoupled) weight decay;
    :math:`\epsilon_1` defaults to the machine epsilon of the param dtype and is applied
    after the factors (not added to :math:`G^2`); :math:`\operatorname{RMS}(\theta)` is taken
    before the decay.

    Args:
      learning_rate: :math:`\eta \ge 0`, a number or a schedule (torch ``lr``, default 1e-2).
      beta2_decay: :math:`\tau \le 0` (default ``-0.8``).
      eps: :math:`(\epsilon_1, \epsilon_2)`; ``eps[0] = None`` means the dtype's machine
        epsilon; both ``>= 0``.
      d: the update clipping threshold, ``>= 1``.
      weight_decay: :math:`\lambda \ge 0`, decoupled: ``theta *= 1 - lr * weight_decay``.
      maximize: ascend the objective instead.
      nu_dtype: storage dtype of the factored second moments (e.g. ``jnp.bfloat16``);
        default float32 or wider. Not in torch.

    Returns:
      A :class:`GradientTransformation` whose state is a dict keyed by the chain members'
        roles: ``"sign"`` (:class:`EmptyState`), ``"factored_rms"``
        (:class:`ScaleByFactoredRmsState`), ``"lr"`` (:class:`ScaleByLearningRateState`)
        and ``"decay"`` (:class:`DecoupledWeightDecayState`).

    Chain: ``scale(±1.)`` (maximize), ``scale_by_factored_rms(beta2_decay, eps, d,
    learning_rate)`` (everything but the final ``-lr`` factor),
    ``scale_by_learning_rate(learning_rate)``, ``add_decoupled_weight_decay(weight_decay,
    learning_rate)`` (a no-op when ``weight_decay`` is the number  0). State: see
    :func:`scale_by_factored_rms` (factors in float32 or wider, where torch keeps the
    param dtype; int32 counters). Complex params raise ``ValueError``, as in torch.

    Equivalents: ``torch.optim.Adafactor(params, lr, beta2_decay, eps, d, weight_decay,
    maximize=maximize)``. ``optax.adafactor`` follows the paper and differs (epsilon added
    to :math:`G^2`, factoring only dims >= 128, momentum option, no :math:`\min(\eta,
    1/\sqrt t)` cap).
    Reference: Shazeer & Stern, 2018, https://arxiv.org/abs/1804.04235.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.adafactor(1e-2)
        >>> params = {"w": jnp.ones((2, 3))}
        >>> updates, state = tx.update({"w": jnp.ones((2, 3))}, tx.init(params), params)
        >>> updates["w"]   # -lr * RMS(w) * sign(g) on the first step
        Array([[-0.01, -0.01, -0.01],
               [-0.01, -0.01, -0.01]], dtype=float32)
    """
    check_learning_rate(learning_rate)
    check_non_negative("weight_decay", weight_decay)
    return recipe(*gradient_prelude(maximize),
                  ("factored_rms", scale_by_factored_rms(beta2_decay, eps, d,
                                                         learning_rate=learning_rate,
                                                         nu_dtype=nu_dtype)),
                  ("lr", scale_by_learning_rate(learning_rate)),
                  ("decay", add_decoupled_weight_decay(weight_decay, learning_rate)))
