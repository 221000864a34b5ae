r"""Schedule-Free aliases: schedule_free_adamw, schedule_free_sgd (the ``schedulefree`` package).

Each is a named chain of roles: ``"rms"`` (AdamW only: Adam's bias-corrected second
moment, no first moment), ``"decay"`` (``weight_decay * y`` added at the training point,
after the normaliser, as the package does; a no-op at the number 0) and
``"schedule_free"`` (the interpolation, with the learning rate, warm-up and averaging
weights inside). The params are the training point :math:`y`;
:func:`~optxform.schedule_free_eval_params` gives the evaluation point :math:`x`.
"""

from __future__ import annotations

from jax.typing import ArrayLike, DTypeLike

from optxform.core import GradientTransformation, ScalarOrSchedule
from optxform.core.base import declares_hyperparameters
from optxform.core.validation import (check_integer, check_learning_rate, check_non_negative,
                                      check_range)
from optxform.optimizers.recipe import recipe
from optxform.transforms.schedule_free import (scale_by_bias_corrected_rms,
                                               scale_by_schedule_free)
from optxform.transforms.weight_decay import add_decayed_weights

__all__ = ["schedule_free_adamw", "schedule_free_sgd"]


def _check_schedule(learning_rate, weight_decay, warmup_steps, r, weight_lr_power) -> None:
    check_learning_rate(learning_rate)
    check_non_negative("weight_decay", weight_decay)
    check_integer("warmup_steps", warmup_steps, minimum=0)
    check_non_negative("r", r)
    check_non_negative("weight_lr_power", weight_lr_power)


def _interpolation(learning_rate, b1, weight_decay, warmup_steps, r,
                   weight_lr_power) -> list[tuple[str, GradientTransformation]]:
    """The members after the direction: decay at y, then the Schedule-Free step."""
    return [("decay", add_decayed_weights(weight_decay)),
            ("schedule_free", scale_by_schedule_free(learning_rate, b1, warmup_steps, r,
                                                     weight_lr_power))]


@declares_hyperparameters("learning_rate", "b1", "b2", "eps", "weight_decay", "r",
                          "weight_lr_power")
def schedule_free_adamw(learning_rate: ScalarOrSchedule = 0.0025, b1: ArrayLike = 0.9,
                        b2: ArrayLike = 0.999, eps: ArrayLike = 1e-8,
                        weight_decay: ArrayLike = 0.0, warmup_steps: int = 0,
                        r: ArrayLike = 0.0, weight_lr_power: ArrayLike = 2.0, *,
                        nu_dtype: DTypeLike | None = None) -> GradientTransformation:
    r"""Schedule-Free AdamW (Defazio et al. 2024), exactly as ``schedulefree.AdamWScheduleFree``.

    With :math:`t` the step (1 for the first update), :math:`y` the params and :math:`z`
    kept in the state (:math:`z_0 = y_0`):

    .. math::

        v_t &= \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2, \qquad
        d_t = \frac{g_t}{\sqrt{v_t / (1 - \beta_2^t)} + \epsilon} + \lambda\, y_{t-1} \\
        \gamma_t &= \gamma \min(t / T_{\text{warmup}}, 1), \quad
        w_t = t^{\,r} \big(\max_{i \le t} \gamma_i\big)^{p}, \quad
        c_t = w_t / \textstyle\sum_{i \le t} w_i \\
        y_t &= \operatorname{lerp}(y_{t-1}, z_{t-1}, c_t)
              + \gamma_t\big(\beta_1 (1 - c_t) - 1\big)\, d_t, \qquad
        z_t = z_{t-1} - \gamma_t\, d_t

    and the evaluation point :math:`x_t = \operatorname{lerp}(y_t, z_t, 1 - 1/\beta_1)`
    (:func:`~optxform.schedule_free_eval_params`). The gradient :math:`g_t` is taken at
    :math:`y_{t-1}`, the params; there is no first moment (the interpolation is the
    momentum) and no learning-rate schedule is needed.

    Args:
      learning_rate: :math:`\gamma \ge 0` (the package's ``lr``), a number or a schedule.
      b1: :math:`\beta_1 \in (0, 1)`, the interpolation (``betas[0]``).
      b2: :math:`\beta_2 \in [0, 1)`, the second moment's decay (``betas[1]``).
      eps: :math:`\epsilon \ge 0`, added after the square root.
      weight_decay: :math:`\lambda \ge 0`, added to the normalised gradient at :math:`y`.
      warmup_steps: :math:`T_{\text{warmup}}`, an integer ``>= 0`` (0: no warm-up).
      r: :math:`r \ge 0`, the polynomial averaging weight's power.
      weight_lr_power: :math:`p \ge 0`, the power of the largest learning rate in the
        averaging weights.
      nu_dtype: storage dtype of :math:`v`; ``None``: float32 or wider.

    Returns:
      A ``GradientTransformation`` (a named chain). Members:
      ``"rms"``: ``scale_by_bias_corrected_rms(b2, eps)``; ``"decay"``:
      ``add_decayed_weights(weight_decay)``; ``"schedule_free"``:
      ``scale_by_schedule_free(learning_rate, b1, warmup_steps, r, weight_lr_power)``.
      State: ``v`` (float32 or wider), ``z`` (param dtype), int32 counters, and ``b1``,
      ``lr_max``, ``weight_sum`` (float32, float64 under x64). Its update needs the params.

    Equivalents: ``schedulefree.AdamWScheduleFree(params, lr, betas=(b1, b2), eps,
    weight_decay, warmup_steps, r, weight_lr_power)`` in train mode (its params are
    :math:`y`; after ``eval()`` they are :math:`x`);
    ``optax.contrib.schedule_free_adamw`` (no ``r``; it rebuilds :math:`y` through
    :math:`x`, so its float32 trajectory drifts from the package's).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.schedule_free_adamw(1e-2)
        >>> params = {"w": jnp.array([1.0, -1.0])}
        >>> updates, state = tx.update({"w": jnp.array([3.0, -2.0])}, tx.init(params), params)
        >>> optxform.apply_updates(params, updates)["w"]   # y_1 = y_0 - lr sign(g)
        Array([ 0.99, -0.99], dtype=float32)
    """
    _check_schedule(learning_rate, weight_decay, warmup_steps, r, weight_lr_power)
    check_range("b1", b1, 0.0, 1.0, low_closed=False)
    check_range("b2", b2, 0.0, 1.0)
    check_non_negative("eps", eps)
    return recipe(("rms", scale_by_bias_corrected_rms(b2, eps, nu_dtype)),
                  *_interpolation(learning_rate, b1, weight_decay, warmup_steps, r,
                                  weight_lr_power))


@declares_hyperparameters("learning_rate", "momentum", "weight_decay", "r", "weight_lr_power")
def schedule_free_sgd(learning_rate: ScalarOrSchedule = 1.0, momentum: ArrayLike = 0.9,
                      weight_decay: ArrayLike = 0.0, warmup_steps: int = 0,
                      r: ArrayLike = 0.0,
                      weight_lr_power: ArrayLike = 2.0) -> GradientTransformation:
    r"""Schedule-Free SGD (Defazio et al. 2024), exactly as ``schedulefree.SGDScheduleFree``.

    With :math:`t` the step (1 for the first update), :math:`y` the params and :math:`z`
    kept in the state (:math:`z_0 = y_0`), :math:`d_t = g_t + \lambda y_{t-1}`,

    .. math::

        \gamma_t &= \gamma \min(t / T_{\text{warmup}}, 1), \quad
        w_t = t^{\,r} \big(\max_{i \le t} \gamma_i\big)^{p}, \quad
        c_t = w_t / \textstyle\sum_{i \le t} w_i \\
        y_t &= \operatorname{lerp}(y_{t-1}, z_{t-1}, c_t)
              + \gamma_t\big(\beta (1 - c_t) - 1\big)\, d_t, \qquad
        z_t = z_{t-1} - \gamma_t\, d_t

    with :math:`\beta` = ``momentum``; the evaluation point is
    :math:`x_t = \operatorname{lerp}(y_t, z_t, 1 - 1/\beta)`
    (:func:`~optxform.schedule_free_eval_params`).

    Args:
      learning_rate: :math:`\gamma \ge 0` (the package's ``lr``, default 1.0), a number
        or a schedule.
      momentum: :math:`\beta \in (0, 1)`, the interpolation.
      weight_decay: :math:`\lambda \ge 0`, added to the gradient at :math:`y`.
      warmup_steps: :math:`T_{\text{warmup}}`, an integer ``>= 0`` (0: no warm-up).
      r: :math:`r \ge 0`, the polynomial averaging weight's power.
      weight_lr_power: :math:`p \ge 0`, the power of the largest learning rate in the
        averaging weights.

    Returns:
      A ``GradientTransformation`` (a named chain). Members: ``"decay"``:
      ``add_decayed_weights(weight_decay)``; ``"schedule_free"``:
      ``scale_by_schedule_free(learning_rate, momentum, warmup_steps, r,
      weight_lr_power)``. State: ``z`` (param dtype), an int32 counter, and ``b1``,
      ``lr_max``, ``weight_sum`` (float32, float64 under x64). Its update needs the params.

    Equivalents: ``schedulefree.SGDScheduleFree(params, lr, momentum, weight_decay,
    warmup_steps, r, weight_lr_power)`` in train mode; ``optax.contrib.schedule_free_sgd``
    (no ``r``; :math:`y` rebuilt through :math:`x`).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.schedule_free_sgd(learning_rate=0.1)
        >>> params = {"w": jnp.array([1.0, 2.0])}
        >>> updates, state = tx.update({"w": jnp.array([1.0, -1.0])}, tx.init(params), params)
        >>> optxform.apply_updates(params, updates)["w"]   # c_1 = 1: y_1 = y_0 - lr g
        Array([0.9, 2.1], dtype=float32)
    """
    _check_schedule(learning_rate, weight_decay, warmup_steps, r, weight_lr_power)
    check_range("momentum", momentum, 0.0, 1.0, low_closed=False)
    return recipe(*_interpolation(learning_rate, momentum, weight_decay, warmup_steps, r,
                                  weight_lr_power))
