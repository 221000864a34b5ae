"""Weight decay: coupled (``u + wd * params``), decoupled, torch's way (``params * (1 - lr wd)``),
and proximal (``(params + step) / (1 + lr wd)``, Adan's).

All are declared rules that read the params and take a mask (a bool pytree matching the
params or a prefix of it, or a function of params returning one; see
``optxform/tree/masks.py``). Where the mask is False the update passes unchanged.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from optxform.core import EmptyState, GradientTransformation, ScalarOrSchedule
from optxform.core.validation import check_integer, check_non_negative
from optxform.rules import Hyperparameter, Leaf, Rule, Step, lift
from optxform.tree.numerics import as_f32, divide, is_number

__all__ = ["DecoupledWeightDecayState", "ProximalWeightDecayState", "add_decayed_weights",
           "add_decoupled_weight_decay", "add_decoupled_weight_decay_after_step",
           "add_proximal_weight_decay"]


def _add_decayed_weights_leaf(x: Leaf) -> tuple[jax.Array, dict]:
    return x.g + x.s["weight_decay"] * x.p, {}


ADD_DECAYED_WEIGHTS = Rule(
    name="add_decayed_weights", kind="elementwise", state=EmptyState,
    hyperparameters=(Hyperparameter("weight_decay", check_non_negative),),
    reads_params=True, masked=True, counts_steps=False, neutral_when_zero="weight_decay",
    leaf=_add_decayed_weights_leaf)


def add_decayed_weights(weight_decay: ArrayLike = 0.0,
                        mask: Any | Callable[[Any], Any] | None = None) -> GradientTransformation:
    r"""``u <- u + weight_decay * params`` where ``mask`` is True (everywhere without a mask).

    .. math::

        u \leftarrow u + \lambda\,\theta

    Before the moment estimates this is torch's coupled L2 penalty (``Adam(weight_decay=)``,
    ``SGD(weight_decay=)``); after them and before the learning rate it is decoupled decay
    (``AdamW``). A ``weight_decay`` of the number 0 returns the updates unchanged (the
    member, and so the state's structure, stays). Needs ``params`` in ``update``.
    Equivalent: ``optax.add_decayed_weights``.

    Args:
      weight_decay: :math:`\lambda \ge 0`, a number or a scalar array.
      mask: which params decay: a pytree of bools matching the params (or a prefix of
        them), or a function of the params returning one; ``None``: all of them. Elsewhere
        the updates pass unchanged.

    Returns:
      A :class:`GradientTransformation` whose state is an :class:`EmptyState`.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.add_decayed_weights(0.1, mask={"w": True, "b": False})
        >>> params = {"w": jnp.array([1.0, -2.0]), "b": jnp.ones(1)}
        >>> grads = {"w": jnp.zeros(2), "b": jnp.zeros(1)}
        >>> updates, _ = tx.update(grads, tx.init(params), params)
        >>> updates
        {'b': Array([0.], dtype=float32), 'w': Array([ 0.1, -0.2], dtype=float32)}
    """
    return lift(ADD_DECAYED_WEIGHTS, weight_decay=weight_decay, mask=mask)


class DecoupledWeightDecayState(NamedTuple):
    """The state of :func:`add_decoupled_weight_decay`.

    Attributes:
      count: int32 scalar, the number of updates made so far: the step a learning-rate
        schedule is evaluated at (kept for a constant learning rate too, so the state's
        structure does not depend on it).
    """

    count: jax.Array


def _lr_times_decay(st: Step) -> float | jax.Array:
    """``lr * wd``: for numbers in float64 on the host, as torch computes ``1 - lr * wd``
    (rounded once, to the compute dtype, by ``mul_``), else in float32."""
    lr, wd = st.h["learning_rate"], st.h["weight_decay"]
    if is_number(wd) and is_number(lr):
        return lr * wd
    return as_f32(lr) * as_f32(wd)


def _decay_rule(name: str, state: type, per_step, leaf, options: tuple[str, ...] = ()) -> Rule:
    """A decay applied after the learning rate: it reads the params and takes a mask."""
    return Rule(
        name=name, kind="elementwise", state=state,
        hyperparameters=(Hyperparameter("weight_decay", check_non_negative),
                         Hyperparameter("learning_rate", check_non_negative, schedule=True)),
        options=options, reads_params=True, masked=True, neutral_when_zero="weight_decay",
        per_step=per_step, leaf=leaf)


def _decoupled_step(st: Step) -> tuple[dict, dict]:
    return {"factor": 1.0 - _lr_times_decay(st)}, {}


def _decoupled_leaf(x: Leaf) -> tuple[jax.Array, dict]:
    p = x.p
    # ``p - p * shrink`` is the correctly rounded ``p * factor`` (whether or not the
    # compiler fuses it into an fma); subtracting ``p`` again is exact.
    shrink = 1.0 - x.s["factor"]  # exact (Sterbenz) for a factor in [0.5, 1]
    delta = (p - p * shrink) - p
    return x.g + delta, {}


DECOUPLED_WEIGHT_DECAY = _decay_rule("add_decoupled_weight_decay", DecoupledWeightDecayState,
                                     _decoupled_step, _decoupled_leaf)


def add_decoupled_weight_decay(weight_decay: ArrayLike, learning_rate: ScalarOrSchedule = 1.0,
                               mask: Any | Callable[[Any], Any] | None = None
                               ) -> GradientTransformation:
    r"""Shrink the params by ``1 - lr * weight_decay``, placed *after* the learning rate.

    .. math::

        u \leftarrow u + \bigl(\operatorname{fl}(1 - \eta_t \lambda)\,\theta - \theta\bigr)
          \;=\; u - \eta_t \lambda\, \theta \ \text{(in exact arithmetic)}

    This is torch's decoupled decay ``param.mul_(1 - lr * weight_decay)`` (AdamW, NAdam and
    RAdam with ``decoupled_weight_decay=True``, Adafactor), reproduced with torch's float32
    rounding: torch rounds the factor :math:`1 - \eta\lambda` to float32 (a bias of up to
    3e-8 per step, always in the same direction) and rounds :math:`\theta(1 - \eta\lambda)`
    before adding the step. Computing :math:`u - \eta\lambda\theta` instead (optax's
    ``add_decayed_weights`` before the learning rate) is the same math, but drifts from
    torch's float32 trajectory beyond the 1e-5 parity tolerance within 100 steps (measured
    on the AdamW parity problem: 1.2-1.7 times the tolerance; 0.1-0.4 times with this
    member). After this member, ``apply_updates`` yields
    :math:`\operatorname{fl}(\operatorname{fl}(\theta(1 - \eta\lambda)) + \text{step})`
    as torch does, up to the rounding of the small sum ``step + delta``.

    Args:
      weight_decay: :math:`\lambda \ge 0`.
      learning_rate: :math:`\eta`, a number or a schedule ``step -> lr``; use the same one as
        the chain's ``scale_by_learning_rate`` (the schedule is evaluated at this member's
        own step count, which advances in lockstep).
      mask: which params decay: a bool pytree (a prefix of params) or a function of params.

    Returns:
      A :class:`GradientTransformation` whose state is a
        :class:`DecoupledWeightDecayState` (an int32 ``count``, kept for a constant
        learning rate too). Its ``update`` needs ``params``.

    Equivalent in exact arithmetic: ``optax.add_decayed_weights`` followed by
    ``optax.scale_by_learning_rate``.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.add_decoupled_weight_decay(0.5, learning_rate=0.5)
        >>> params = {"w": jnp.array([2.0, -4.0])}
        >>> updates, _ = tx.update({"w": jnp.zeros(2)}, tx.init(params), params)
        >>> updates["w"]  # -lr * weight_decay * params
        Array([-0.5,  1. ], dtype=float32)
    """
    return lift(DECOUPLED_WEIGHT_DECAY, weight_decay=weight_decay,
                learning_rate=learning_rate, mask=mask)


def _after_step_step(st: Step) -> tuple[dict, dict]:
    scalars, _ = _decoupled_step(st)
    return {**scalars, "active": st.t >= st.opt["first_step"]}, {}


def _after_step_leaf(x: Leaf) -> tuple[jax.Array, dict]:
    p = x.p
    assert p is not None  # the rule reads params
    moved = p + x.g                      # the params after the step so far
    shrink = 1.0 - x.s["factor"]
    decayed = (moved - moved * shrink) - p
    return jnp.where(x.s["active"].astype(bool), decayed, x.g), {}


DECOUPLED_WEIGHT_DECAY_AFTER_STEP = _decay_rule(
    "add_decoupled_weight_decay_after_step", DecoupledWeightDecayState,
    _after_step_step, _after_step_leaf, options=("first_step",))


def add_decoupled_weight_decay_after_step(
        weight_decay: ArrayLike, learning_rate: ScalarOrSchedule = 1.0, first_step: int = 1,
        mask: Any | Callable[[Any], Any] | None = None) -> GradientTransformation:
    r"""Shrink the params *after* the step: :math:`\theta \leftarrow (\theta + u)(1 - \eta_t\lambda)`.

    .. math::

        u \leftarrow \operatorname{fl}\bigl((\theta + u)(1 - \eta_t \lambda)\bigr) - \theta
        \quad (t \ge \text{first\_step}), \qquad u \text{ unchanged before}

    Unlike :func:`add_decoupled_weight_decay` (torch's AdamW: ``param.mul_`` before the
    step is added) the decay also shrinks the step itself, by :math:`\eta_t\lambda u`: the
    order of ``pytorch_optimizer.SOAP``, which calls ``p.mul_(1 - lr * wd)`` after
    ``p.add_(update)``, and skips both on its first step (``first_step=2``).

    Args:
      weight_decay: :math:`\lambda \ge 0`.
      learning_rate: :math:`\eta`, a number or a schedule (the chain's learning rate).
      first_step: the first update (counting from 1) that decays.
      mask: which params decay: a bool pytree (a prefix of params) or a function of params.

    Returns:
      A :class:`GradientTransformation` whose state is a :class:`DecoupledWeightDecayState`.
      Its ``update`` needs ``params``.

    Equivalent: the weight decay of ``pytorch_optimizer.SOAP``; in exact arithmetic
    :func:`scale` by :math:`1 - \eta\lambda` followed by :func:`add_decoupled_weight_decay`.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.add_decoupled_weight_decay_after_step(0.5, learning_rate=0.5)
        >>> params = {"w": jnp.array([2.0, -4.0])}
        >>> updates, _ = tx.update({"w": jnp.array([2.0, 0.0])}, tx.init(params), params)
        >>> updates["w"]  # (params + u) * 0.75 - params
        Array([1., 1.], dtype=float32)
    """
    check_integer("first_step", first_step, minimum=1)
    return lift(DECOUPLED_WEIGHT_DECAY_AFTER_STEP, weight_decay=weight_decay,
                learning_rate=learning_rate, first_step=first_step, mask=mask)


class ProximalWeightDecayState(NamedTuple):
    """The state of :func:`add_proximal_weight_decay`.

    Attributes:
      count: int32 updates made so far: the step a learning-rate schedule is read at.
    """

    count: jax.Array


def _proximal_step(st: Step) -> tuple[dict, dict]:
    return {"divisor": 1.0 + _lr_times_decay(st)}, {}


def _proximal_leaf(x: Leaf) -> tuple[jax.Array, dict]:
    # The new param rounded as the reference rounds it, minus the old one: exact wherever
    # the two are within a factor 2 (Sterbenz), so ``apply_updates`` lands on it.
    p = x.p
    assert p is not None  # the rule reads params
    return divide(p + x.g, x.s["divisor"]) - p, {}


PROXIMAL_WEIGHT_DECAY = _decay_rule("add_proximal_weight_decay", ProximalWeightDecayState,
                                    _proximal_step, _proximal_leaf)


def add_proximal_weight_decay(weight_decay: ArrayLike, learning_rate: ScalarOrSchedule = 1.0,
                              mask: Any | Callable | None = None) -> GradientTransformation:
    r"""Proximal weight decay: divide the stepped params by ``1 + lr * weight_decay``.

    Placed *after* the learning rate, where the update :math:`u` is the step itself:

    .. math::

        u \leftarrow \frac{\theta + u}{1 + \eta_t \lambda} - \theta, \qquad
        \text{so}\quad \theta_t = \frac{\theta_{t-1} + u}{1 + \eta_t \lambda}

    the proximal step of the penalty :math:`\tfrac{\lambda}{2}\|\theta\|^2` (Adan's
    default decay, Xie et al. 2022, Algorithm 1; ``pytorch-optimizer``'s ``Adan`` with
    ``weight_decouple=False``: ``p.div_(1 + lr * weight_decay)`` after the step). To first
    order in :math:`\eta\lambda` it is decoupled decay applied after the step.

    Args:
      weight_decay: :math:`\lambda \ge 0`; the number 0 passes updates through.
      learning_rate: :math:`\eta`, a number or a schedule ``step -> lr``; use the chain's
        own (a schedule is evaluated at this member's step count, in lockstep).
      mask: which params decay: a bool pytree (a prefix of params) or a function of params.

    Returns:
      A ``GradientTransformation`` whose state is :class:`ProximalWeightDecayState`.

    Equivalent: no optax transform (optax's ``adan`` decays by ``add_decayed_weights``).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.add_proximal_weight_decay(1.0, learning_rate=1.0)
        >>> params = {"w": jnp.array([3.0])}
        >>> updates, _ = tx.update({"w": jnp.array([1.0])}, tx.init(params), params)
        >>> updates["w"]   # (3 + 1) / 2 - 3
        Array([-1.], dtype=float32)
    """
    return lift(PROXIMAL_WEIGHT_DECAY, weight_decay=weight_decay,
                learning_rate=learning_rate, mask=mask)
