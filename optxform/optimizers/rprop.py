"""The rprop optimizer alias."""

from __future__ import annotations

from optxform.core import GradientTransformation, ScalarOrSchedule
from optxform.core.base import declares_hyperparameters
from optxform.core.validation import check_learning_rate, concrete_value
from optxform.optimizers.recipe import gradient_prelude, recipe
from optxform.transforms.scaling import scale
from optxform.transforms.sign import scale_by_rprop

__all__ = ["rprop"]


def _pair(name: str, value) -> tuple:
    try:
        first, second = value
    except (TypeError, ValueError):
        raise ValueError(f"Invalid {name}: {value!r} ({name} must be a pair)") from None
    return first, second


@declares_hyperparameters("learning_rate")
def rprop(learning_rate: ScalarOrSchedule = 1e-2, etas: tuple[float, float] = (0.5, 1.2),
          step_sizes: tuple[float, float] = (1e-6, 50.0),
          maximize: bool = False) -> GradientTransformation:
    r"""Rprop as torch implements it: per-element step sizes adapted from gradient signs.

    Per element, with :math:`s = \operatorname{sign}(g_t\, g'_{t-1})`:

    .. math::

        \Delta_t &= \operatorname{clip}(\Delta_{t-1}\cdot\{\eta^+ \text{ if } s>0;\
                    \eta^- \text{ if } s<0;\ 1 \text{ otherwise}\},
                    \ \Delta_{\min}, \Delta_{\max}), \qquad \Delta_0 = \text{lr} \\
        g'_t &= 0 \text{ if } s < 0 \text{ else } g_t, \qquad g'_0 = 0 \\
        \theta_t &= \theta_{t-1} - \operatorname{sign}(g'_t)\,\Delta_t

    torch's quirks, kept: the learning rate is only the initial step size; after a sign
    change the element does not move and its stored gradient is zeroed, so the next step
    size is left unchanged; the step-size factor comes from the sign of the *product*
    (which is 0 if the product underflows).

    Args:
      learning_rate: the initial step size (torch ``lr``); a schedule is read at step 0.
      etas: ``(eta_minus, eta_plus)`` with ``0 < eta_minus < 1 < eta_plus``.
      step_sizes: ``(min, max)`` step sizes with ``0 <= min <= max``.
      maximize: ascend the objective instead.

    Returns:
      A :class:`GradientTransformation` whose state is a dict keyed by the chain members'
        roles: ``"sign"`` and ``"descend"`` (:class:`EmptyState`) and ``"rprop"``
        (:class:`ScaleByRpropState`).

    Chain members: ``scale(±1.)`` (maximize), ``scale_by_rprop(learning_rate, *etas,
    *step_sizes)``, ``scale(-1.)`` (descent). State: step sizes float32 or wider, the
    previous masked gradient in the param dtype.

    Equivalents: ``torch.optim.Rprop(params, lr, etas, step_sizes, maximize=maximize)``.
    ``optax.rprop`` differs: it emits each update one step late (see
    :func:`optxform.scale_by_rprop`).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.rprop(0.01)
        >>> params = {"w": jnp.ones(2)}
        >>> updates, _ = tx.update({"w": jnp.array([3.0, -2.0])}, tx.init(params), params)
        >>> updates["w"]
        Array([-0.01,  0.01], dtype=float32)
    """
    check_learning_rate(learning_rate)
    eta_minus, eta_plus = _pair("etas", etas)
    low, high = _pair("step_sizes", step_sizes)
    em, ep = concrete_value(eta_minus), concrete_value(eta_plus)
    if (em is not None and not 0.0 < em < 1.0) or (ep is not None and not ep > 1.0):
        raise ValueError(f"Invalid etas: {etas!r} (etas must satisfy "
                         "0 < eta_minus < 1 < eta_plus)")
    lo, hi = concrete_value(low), concrete_value(high)
    if (lo is not None and not lo >= 0.0) or (hi is not None and not hi >= 0.0) or (
            lo is not None and hi is not None and lo > hi):
        raise ValueError(f"Invalid step_sizes: {step_sizes!r} (step_sizes must satisfy "
                         "0 <= min <= max)")

    return recipe(*gradient_prelude(maximize),
                  ("rprop", scale_by_rprop(learning_rate, eta_minus=eta_minus,
                                           eta_plus=eta_plus, min_step_size=low,
                                           max_step_size=high)),
                  ("descend", scale(-1.0)))
