"""The mars optimizer alias."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from optxform.core import GradientTransformation, ScalarOrSchedule
from optxform.core.base import declares_hyperparameters
from optxform.core.counters import zero_count
from optxform.core.schedule import value_at
from optxform.core.validation import check_flag, check_learning_rate, check_non_negative
from optxform.optimizers.recipe import gradient_prelude, recipe
from optxform.transforms.mars import MarsType, scale_by_mars, takes_mars_step
from optxform.transforms.scaling import scale, scale_by_learning_rate
from optxform.transforms.weight_decay import add_decoupled_weight_decay
from optxform.tree.numerics import is_number
from optxform.wrappers.masked import masked

__all__ = ["mars"]


def _by_rank(optimize_1d: bool, mars_step: bool) -> Callable[[Any], Any]:
    """A mask function: True on the params that take (or do not take) the MARS step."""
    return lambda params: jax.tree.map(
        lambda p: takes_mars_step(p, optimize_1d) == mars_step, params)


def _lr_1d_ratio(learning_rate: ScalarOrSchedule, lr_1d: ArrayLike) -> Any:
    """The reference's ``lr_1d_factor = lr_1d / lr``, with the initial rate of a schedule."""
    if callable(learning_rate):
        return lr_1d / value_at(learning_rate, zero_count())
    if is_number(learning_rate) and is_number(lr_1d):
        if learning_rate == 0:
            raise ValueError("Invalid learning_rate: 0 (mars applies lr_1d as the ratio "
                             "lr_1d / learning_rate, as the reference does; expected > 0)")
        return lr_1d / learning_rate
    return jnp.asarray(lr_1d, jnp.float32) / jnp.asarray(learning_rate, jnp.float32)


@declares_hyperparameters("learning_rate", "b1", "b2", "gamma", "lr_1d", "b1_1d", "b2_1d",
                          "weight_decay", "weight_decay_1d", "eps")
def mars(learning_rate: ScalarOrSchedule = 3e-3, b1: ArrayLike = 0.95, b2: ArrayLike = 0.99,
         gamma: ArrayLike = 0.025, mars_type: MarsType = "adamw", optimize_1d: bool = False,
         lr_1d: ArrayLike = 3e-3, b1_1d: ArrayLike = 0.9, b2_1d: ArrayLike = 0.95,
         weight_decay: ArrayLike = 0.0, weight_decay_1d: ArrayLike = 0.1,
         weight_decouple: bool = True, fixed_decay: bool = False, ams_bound: bool = False,
         cautious: bool = False, eps: ArrayLike = 1e-8, maximize: bool = False, *,
         ns_dtype: DTypeLike = jnp.bfloat16, mu_dtype: DTypeLike | None = None,
         nu_dtype: DTypeLike | None = None) -> GradientTransformation:
    r"""MARS (Yuan et al. 2024), as ``pytorch-optimizer``'s ``MARS``: variance-reduced
    gradients under an AdamW, Lion or Shampoo-style step, with AdamW on the 1-D params.

    For params of rank :math:`\ge 2` (all params with ``optimize_1d``):

    .. math::

        c_t &= g_t + \gamma\,\tfrac{\beta_1}{1-\beta_1}(g_t - \tilde g_{t-1}), \qquad
        c_t \leftarrow c_t / \max(1, \|c_t\|_2), \qquad
        m_t = \beta_1 m_{t-1} + (1-\beta_1) c_t \\
        \theta_t &= \theta_{t-1}\,(1 - \eta_t\lambda) - \eta_t\, u_t(m_t, c_t)

    with :math:`u_t` the AdamW-, Lion- or Newton-Schulz-style direction of
    :func:`~optxform.scale_by_mars` (``mars_type``) and :math:`\tilde g_{t-1}` the previous
    gradient. Params of rank < 2 take AdamW (betas ``b1_1d, b2_1d``) with learning rate
    :math:`\eta_t \cdot` ``lr_1d / learning_rate`` and decay ``weight_decay_1d``.

    Args:
      learning_rate: :math:`\eta > 0`, a number or a schedule (reference ``lr``).
      b1, b2: :math:`\beta_1, \beta_2 \in [0, 1)` (reference ``betas``).
      gamma: :math:`\gamma \ge 0`, the strength of the gradient correction.
      mars_type: ``"adamw"``, ``"lion"`` or ``"shampoo"`` (Newton-Schulz orthogonalised
        momentum, run in ``ns_dtype``).
      optimize_1d: give the rank < 2 params the MARS step too.
      lr_1d: the rank < 2 params' learning rate. As in the reference it is kept as the
        ratio ``lr_1d / learning_rate`` (a schedule's value at step 0), so a schedule
        scales both; under ``inject_hyperparams`` both are injected.
      b1_1d, b2_1d: the rank < 2 params' betas (reference ``betas_1d``).
      weight_decay, weight_decay_1d: :math:`\lambda \ge 0` for each group.
      weight_decouple: decay the params (``True``, the default); with ``False`` the
        reference adds :math:`\lambda\theta` to the gradient *after* the step, where it
        only reaches the gradient kept for the next correction: reproduced as such.
      fixed_decay: decay by :math:`1 - \lambda` rather than :math:`1 - \eta\lambda`.
      ams_bound: use the running maximum of the second moment.
      cautious: mask the momentum where it disagrees with the gradient's sign.
      eps: :math:`\epsilon \ge 0`.
      maximize: ascend the objective instead.
      ns_dtype: the dtype of the Newton-Schulz iterations (the reference's ``bfloat16``).
      mu_dtype, nu_dtype: storage dtypes of the moments. Not in the reference.

    Returns:
      A ``GradientTransformation``: a named chain ``sign`` (maximize), ``mars``:
      :func:`~optxform.scale_by_mars`, ``lr``: ``scale_by_learning_rate(learning_rate)``,
      ``lr_1d``: the ratio on the rank < 2 params, ``decay`` and ``decay_1d``:
      ``add_decoupled_weight_decay`` on each group (no-ops at the number 0). State: ``mu``,
      ``prev`` in the param dtype, ``nu`` (and ``nu_max`` with ams_bound) float32 or wider,
      int32 counters.

    Equivalents: ``pytorch_optimizer.MARS(params, lr, betas=(b1, b2), gamma, mars_type,
    optimize_1d, lr_1d, betas_1d=(b1_1d, b2_1d), weight_decay, weight_decay_1d,
    weight_decouple, fixed_decay, ams_bound, cautious, eps, maximize)`` (4.1.0); optax
    has none. Reference: Yuan et al. 2024, https://arxiv.org/abs/2411.10438.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.mars(0.1, mars_type="lion")
        >>> params = {"w": jnp.ones((2, 2)), "b": jnp.zeros(2)}
        >>> grads = {"w": jnp.array([[0.5, -2.0], [3.0, 1.0]]), "b": jnp.array([1.0, -1.0])}
        >>> updates, state = tx.update(grads, tx.init(params), params)
        >>> updates["w"]   # -lr * the sign of the momentum
        Array([[-0.1,  0.1],
               [-0.1, -0.1]], dtype=float32)
    """
    check_learning_rate(learning_rate)
    check_learning_rate(lr_1d, "lr_1d")
    for name, flag in (("weight_decouple", weight_decouple), ("fixed_decay", fixed_decay),
                       ("maximize", maximize), ("optimize_1d", optimize_1d)):
        check_flag(name, flag)
    check_non_negative("weight_decay", weight_decay)
    check_non_negative("weight_decay_1d", weight_decay_1d)
    ratio = _lr_1d_ratio(learning_rate, lr_1d)
    if fixed_decay:
        decay_lr: ScalarOrSchedule = 1.0
        decay_lr_1d: ScalarOrSchedule = 1.0
    elif callable(learning_rate):
        decay_lr = learning_rate
        decay_lr_1d = lambda count: learning_rate(count) * ratio  # noqa: E731
    else:
        decay_lr, decay_lr_1d = learning_rate, learning_rate * ratio
    mars_params, other_params = _by_rank(optimize_1d, True), _by_rank(optimize_1d, False)
    decoupled = bool(weight_decouple)
    return recipe(
        *gradient_prelude(maximize),
        ("mars", scale_by_mars(b1, b2, gamma, eps, mars_type, optimize_1d, b1_1d, b2_1d,
                               ams_bound, cautious,
                               prev_weight_decay=0.0 if decoupled else weight_decay,
                               ns_dtype=ns_dtype, mu_dtype=mu_dtype, nu_dtype=nu_dtype)),
        ("lr", scale_by_learning_rate(learning_rate)),
        ("lr_1d", masked(scale(ratio), other_params)),
        ("decay", add_decoupled_weight_decay(weight_decay if decoupled else 0.0, decay_lr,
                                             mask=mars_params)),
        ("decay_1d", add_decoupled_weight_decay(weight_decay_1d if decoupled else 0.0,
                                                decay_lr_1d, mask=other_params)))
