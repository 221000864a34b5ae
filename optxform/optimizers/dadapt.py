r"""Learning-rate-free aliases: prodigy, dadapt_adam, dadapt_sgd.

Each is a chain of roles: ``"decay"`` (coupled L2, ``add_decayed_weights``: a no-op unless
``decouple=False`` and a weight decay is given), the estimating block
(``scale_by_prodigy``, ``scale_by_dadapt_adam``, ``scale_by_dadapt_sgd``), which emits
the whole step since the learning rate and the decoupled weight decay are scaled by the
estimate :math:`d`, and ``"descend"`` (``scale(-1.)``). D-Adaptation SGD keeps its weight
decay inside its block: the reference takes the first gradient's norm without it.
"""

from __future__ import annotations

import math

from jax.typing import ArrayLike

from optxform.core import GradientTransformation, ScalarOrSchedule
from optxform.core.base import declares_hyperparameters
from optxform.core.validation import check_flag
from optxform.optimizers.recipe import recipe
from optxform.transforms.dadapt import (scale_by_dadapt_adam, scale_by_dadapt_sgd,
                                        scale_by_prodigy)
from optxform.transforms.scaling import scale
from optxform.transforms.weight_decay import add_decayed_weights

__all__ = ["dadapt_adam", "dadapt_sgd", "prodigy"]


def _split_decay(weight_decay: ArrayLike, decouple: bool) -> tuple[ArrayLike, ArrayLike]:
    """``(coupled, decoupled)`` weight decay: the one ``decouple`` selects, and 0."""
    check_flag("decouple", decouple)
    return (0.0, weight_decay) if decouple else (weight_decay, 0.0)


@declares_hyperparameters("learning_rate", "b1", "b2", "eps", "weight_decay", "d_coef")
def prodigy(learning_rate: ScalarOrSchedule = 1.0, b1: ArrayLike = 0.9, b2: ArrayLike = 0.999,
            b3: ArrayLike | None = None, eps: ArrayLike = 1e-8, weight_decay: ArrayLike = 0.0,
            decouple: bool = True, use_bias_correction: bool = False,
            safeguard_warmup: bool = False, d0: ArrayLike = 1e-6, d_coef: ArrayLike = 1.0,
            growth_rate: float = math.inf) -> GradientTransformation:
    r"""Prodigy (Mishchenko & Defazio 2024): Adam with an estimated step size.

    .. math::

        g_k &\leftarrow \nabla f(x_k) + \omega x_k \quad(\text{decouple=False}) \\
        x_{k+1} &= x_k - d_k \eta_k \rho_k \Bigl(\frac{m_k}{\sqrt{v_k} + d_{k+1}\epsilon}
                   + \omega x_k\Bigr) \quad(\text{the } \omega \text{ term with decouple})

    with Adam's moments of :math:`d`-scaled gradients :math:`m_k, v_k`, the estimate
    :math:`d_{k+1} = \min(d_{\max}, \gamma d_k)` grown from
    :math:`\hat d = c\, r_k / \|s_k\|_1` (:math:`r_k`, :math:`s_k`: EMAs with
    :math:`\beta_3` of :math:`\langle g_k, x_0 - x_k\rangle` and :math:`g_k`, weighted by
    :math:`d_k/d_0` and the step size), and :math:`\rho_k` Adam's bias correction
    (``use_bias_correction``) or 1; see :func:`~optxform.scale_by_prodigy` for every term.
    Leave ``learning_rate`` at 1 unless training is unstable.

    Args:
      learning_rate: :math:`\eta > 0`, a multiplier of the estimated step; a number or a
        schedule (torch ``lr``).
      b1, b2: :math:`\beta_1, \beta_2 \in [0, 1)` (torch ``betas``).
      b3: :math:`\beta_3 \in [0, 1]`, the decay of the estimate's sums; ``None``:
        :math:`\sqrt{\beta_2}` (torch ``beta3``).
      eps: :math:`\epsilon > 0`, scaled by :math:`d`.
      weight_decay: :math:`\omega \ge 0`.
      decouple: AdamW-style decay scaled by the step size (default); ``False``: L2 added
        to the gradient.
      use_bias_correction: Adam's bias correction in the step size.
      safeguard_warmup: leave the learning rate out of the estimate's denominator (helps
        with a warm-up schedule).
      d0: :math:`d_0 > 0`, the initial estimate.
      d_coef: :math:`c > 0`, a multiplier of the estimate (the preferred knob to tune).
      growth_rate: :math:`\gamma > 0`, the largest factor :math:`d` grows by per step
        (``inf``: unlimited).

    Returns:
      A ``GradientTransformation``. Chain members: ``add_decayed_weights`` (``"decay"``,
      coupled: a no-op with ``decouple``), ``scale_by_prodigy`` (``"prodigy"``; the
      decoupled decay is inside, scaled by the estimated step), ``scale(-1.)``
      (``"descend"``). State: the moments and :math:`x_0` in the param dtype, :math:`s`
      and :math:`v` in float32 or wider, the estimate's scalars in the step dtype
      (float64 under ``jax_enable_x64``), int32 counters.

    Reference: ``prodigyopt.Prodigy(params, lr, betas=(b1, b2), beta3=b3, eps,
    weight_decay, decouple, use_bias_correction, safeguard_warmup, d0, d_coef,
    growth_rate)`` 1.1.2 (``fsdp_in_use`` is not needed: under a sharded ``jit`` the sums
    are global; ``slice_p`` is not offered). https://arxiv.org/abs/2306.06101

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.prodigy()
        >>> params = jnp.array([1.0, -2.0])
        >>> state = tx.init(params)
        >>> for _ in range(20):  # the gradient of |x|^2 / 2 is x
        ...     updates, state = tx.update(params, state, params)
        ...     params = optxform.apply_updates(params, updates)
        >>> params
        Array([-0.14945641, -1.2662587 ], dtype=float32)
        >>> optxform.tree_get(state, "d")  # the estimated distance to the minimum
        Array(0.48600584, dtype=float32)
    """
    coupled, decoupled = _split_decay(weight_decay, decouple)
    return recipe(("decay", add_decayed_weights(coupled)),
                  ("prodigy", scale_by_prodigy(
                      learning_rate, b1, b2, b3, eps, decoupled,
                      use_bias_correction=use_bias_correction,
                      safeguard_warmup=safeguard_warmup, d0=d0, d_coef=d_coef,
                      growth_rate=growth_rate)),
                  ("descend", scale(-1.0)))


@declares_hyperparameters("learning_rate", "b1", "b2", "eps", "weight_decay")
def dadapt_adam(learning_rate: ScalarOrSchedule = 1.0, b1: ArrayLike = 0.9,
                b2: ArrayLike = 0.999, eps: ArrayLike = 1e-8, weight_decay: ArrayLike = 0.0,
                decouple: bool = False, use_bias_correction: bool = False,
                d0: ArrayLike = 1e-6, growth_rate: float = math.inf) -> GradientTransformation:
    r"""D-Adaptation Adam (Defazio & Mishchenko 2023): Adam with an estimated step size.

    .. math::

        g_k &\leftarrow \nabla f(x_k) + \omega x_k \quad(\text{decouple=False}) \\
        x_{k+1} &= x_k - \frac{m_k}{\sqrt{v_k} + \epsilon}
                   - d_k \eta_k \rho_k\, \omega x_k \quad(\text{the last term with decouple})

    where :math:`m_k` averages :math:`d_k \eta_k \rho_k (1-\beta_1) g_k` (the step size is
    inside the first moment), :math:`v_k` is Adam's second moment, and the estimate
    :math:`d_{k+1} = \max(d_k, \min(\hat d, \gamma d_k))` comes from
    :math:`\hat d = r_k / ((1-\sqrt{\beta_2})\|s_k\|_1)`; see
    :func:`~optxform.scale_by_dadapt_adam` for every term.

    Args:
      learning_rate: :math:`\eta > 0`, a multiplier of the estimated step; a number or a
        schedule (torch ``lr``).
      b1, b2: :math:`\beta_1, \beta_2 \in [0, 1)` (torch ``betas``).
      eps: :math:`\epsilon > 0`.
      weight_decay: :math:`\omega \ge 0`.
      decouple: AdamW-style decay scaled by the step size; ``False`` (default): L2 added
        to the gradient.
      use_bias_correction: Adam's bias correction in the step size.
      d0: :math:`d_0 > 0`, the initial estimate.
      growth_rate: :math:`\gamma > 0`, the largest factor :math:`d` grows by per step
        (``inf``: unlimited).

    Returns:
      A ``GradientTransformation``. Chain members: ``add_decayed_weights`` (``"decay"``,
      coupled: a no-op with ``decouple``), ``scale_by_dadapt_adam`` (``"dadapt_adam"``;
      the decoupled decay is inside), ``scale(-1.)`` (``"descend"``). State: the first
      moment in the param dtype, :math:`v` and :math:`s` in float32 or wider, the
      estimate's scalars in the step dtype, int32 counters.

    Reference: ``dadaptation.DAdaptAdam(params, lr, betas=(b1, b2), eps, weight_decay,
    decouple=decouple, use_bias_correction, d0, growth_rate)`` 3.2 (``log_every`` is not
    offered: read ``d`` from the state; ``fsdp_in_use`` is not needed; the per-group
    ``layer_scale`` is 1). https://arxiv.org/abs/2301.07733

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.dadapt_adam()
        >>> def step(params, state):  # the gradient of |x|^2 / 2 is x
        ...     updates, state = tx.update(params, state, params)
        ...     return optxform.apply_updates(params, updates), state
        >>> params = jnp.array([1.0, -2.0])
        >>> state = tx.init(params)
        >>> for _ in range(20):
        ...     params, state = step(params, state)
        >>> params, optxform.tree_get(state, "d")
        (Array([ 0.28451312, -0.4045307 ], dtype=float32), Array(3.7150483, dtype=float32))
    """
    coupled, decoupled = _split_decay(weight_decay, decouple)
    return recipe(("decay", add_decayed_weights(coupled)),
                  ("dadapt_adam", scale_by_dadapt_adam(
                      learning_rate, b1, b2, eps, decoupled,
                      use_bias_correction=use_bias_correction, d0=d0,
                      growth_rate=growth_rate)),
                  ("descend", scale(-1.0)))


@declares_hyperparameters("learning_rate", "momentum", "weight_decay")
def dadapt_sgd(learning_rate: ScalarOrSchedule = 1.0, momentum: ArrayLike = 0.0,
               weight_decay: ArrayLike = 0.0, d0: ArrayLike = 1e-6,
               growth_rate: float = math.inf) -> GradientTransformation:
    r"""D-Adaptation SGD (Defazio & Mishchenko 2023): dual averaging with an estimated step.

    .. math::

        s_k &= s_{k-1} + \frac{d_k \eta_k}{\|g_0\|}\,(g_k + \omega x_k), \qquad
        x_{k+1} = \mu x_k + (1 - \mu)(x_0 - s_k)

    with the estimate :math:`d_{k+1} = \max(d_k, \min(2 r_k / \|s_k\|_2, \gamma d_k))`,
    :math:`r_k = \sum_{i \le k} \tfrac{d_i\eta_i}{\|g_0\|}\langle g_i + \omega x_i,
    s_{i-1}\rangle`; see :func:`~optxform.scale_by_dadapt_sgd` for every term.

    Args:
      learning_rate: :math:`\eta > 0`, a multiplier of the estimated step; a number or a
        schedule (torch ``lr``).
      momentum: :math:`\mu \in [0, 1)`, the averaging of the iterates.
      weight_decay: :math:`\omega \ge 0`, coupled L2 (the first gradient's norm
        :math:`\|g_0\|` leaves it out, as the reference does).
      d0: :math:`d_0 > 0`, the initial estimate.
      growth_rate: :math:`\gamma > 0`, the largest factor :math:`d` grows by per step
        (``inf``: unlimited).

    Returns:
      A ``GradientTransformation``. Chain members: ``scale_by_dadapt_sgd``
      (``"dadapt_sgd"``, the weight decay inside) and ``scale(-1.)`` (``"descend"``).
      State: :math:`s` in float32 or wider, :math:`x_0` in the param dtype, the estimate's
      scalars in the step dtype, int32 counters.

    Reference: ``dadaptation.DAdaptSGD(params, lr, momentum, weight_decay, d0,
    growth_rate)`` 3.2 (``log_every`` is not offered: read ``d`` from the state;
    ``fsdp_in_use`` is not needed). https://arxiv.org/abs/2301.07733

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.dadapt_sgd(momentum=0.9)
        >>> params = {"w": jnp.array([1.0, -2.0])}
        >>> state = tx.init(params)
        >>> for _ in range(50):  # the gradient of |x|^2 / 2 is x
        ...     updates, state = tx.update(params, state, params)
        ...     params = optxform.apply_updates(params, updates)
        >>> params["w"], optxform.tree_get(state, "d")
        (Array([ 0.17691183, -0.35382366], dtype=float32), Array(6.938244, dtype=float32))
    """
    return recipe(("dadapt_sgd", scale_by_dadapt_sgd(learning_rate, momentum, weight_decay,
                                                     d0, growth_rate)),
                  ("descend", scale(-1.0)))
