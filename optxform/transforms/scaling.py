"""Multiplying updates by a constant, a learning rate, or a schedule."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from optxform.core import EmptyState, GradientTransformation, ScalarOrSchedule, Schedule
from optxform.core.validation import check_non_negative
from optxform.rules import Hyperparameter, Leaf, Rule, Step, lift
from optxform.tree.numerics import is_number

__all__ = ["ScaleByLearningRateState", "ScaleByScheduleState", "scale",
           "scale_by_learning_rate", "scale_by_schedule"]


def _scaled(x: Leaf) -> tuple[jax.Array, dict]:
    return x.g * x.s["factor"], {}


def _scaled_unless_one(x: Leaf) -> tuple[jax.Array, dict]:
    return (x.g, {}) if x.opt["identity"] else _scaled(x)


SCALE = Rule(name="scale", kind="elementwise", state=EmptyState, counts_steps=False,
             hyperparameters=(Hyperparameter("factor"),), options=("identity",),
             leaf=_scaled_unless_one)


def scale(factor: ArrayLike) -> GradientTransformation:
    r"""``u <- factor * u`` (optax.scale). ``scale(-1.)`` flips the sign (torch ``maximize``).

    .. math::

        u \leftarrow c\, u

    The number 1 passes the updates through as they are (the member stays in its chain).
    torch has no separate counterpart: ``maximize=True`` is ``scale(-1.)`` before the
    optimizer's other members. Equivalent: ``optax.scale(step_size)``.

    Args:
      factor: :math:`c`, a number or a scalar array (any sign).

    Returns:
      A :class:`GradientTransformation` whose state is an :class:`EmptyState`.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.scale(-2.0)
        >>> updates, _ = tx.update({"w": jnp.array([1.0, -0.5])}, tx.init(None))
        >>> updates["w"]
        Array([-2.,  1.], dtype=float32)
    """
    # The number 1 (an alias's ``sign`` member without maximize) leaves the updates as
    # they are; the member and its (empty) state stay.
    return lift(SCALE, factor=factor, identity=is_number(factor) and factor == 1)


class ScaleByScheduleState(NamedTuple):
    """The state of :func:`scale_by_schedule`.

    Attributes:
      count: int32 scalar, the number of updates made so far (the schedule's argument for
        the next update).
    """

    count: jax.Array


SCALE_BY_SCHEDULE = Rule(name="scale_by_schedule", kind="elementwise",
                         state=ScaleByScheduleState,
                         hyperparameters=(Hyperparameter("factor", schedule=True),),
                         leaf=_scaled)


def scale_by_schedule(step_size_fn: Schedule) -> GradientTransformation:
    r"""``u <- step_size_fn(count) * u`` with ``count`` = updates made so far (optax.scale_by_schedule).

    .. math::

        u_t \leftarrow s(t - 1)\, u_t \qquad (t = 1, 2, \dots)

    The schedule is read at the number of updates already made, so the first update uses
    ``step_size_fn(0)``; the sign is kept (unlike :func:`scale_by_learning_rate`). torch
    equivalent: a ``LambdaLR`` multiplier. Equivalent: ``optax.scale_by_schedule``.

    Args:
      step_size_fn: :math:`s`, a schedule ``count -> factor`` (e.g.
        ``optxform.linear_schedule(...)``).

    Returns:
      A :class:`GradientTransformation` whose state is a :class:`ScaleByScheduleState`
        (an int32 ``count``).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.scale_by_schedule(optxform.linear_schedule(1.0, 0.0, 4))
        >>> state = tx.init(None)
        >>> for _ in range(3):
        ...     updates, state = tx.update({"w": jnp.ones(1)}, state)
        >>> updates["w"]  # the third update uses the schedule at count 2
        Array([0.5], dtype=float32)
    """
    return lift(SCALE_BY_SCHEDULE, factor=step_size_fn)


class ScaleByLearningRateState(NamedTuple):
    """The state of :func:`scale_by_learning_rate`.

    Attributes:
      count: int32 scalar, the number of updates made so far: the step a learning-rate
        schedule is evaluated at (kept for a constant learning rate too).
    """

    count: jax.Array


def _learning_rate_step(st: Step) -> tuple[dict, dict]:
    # A Python number stays one, rounded once to the compute dtype (float64 params: float64).
    lr = st.h["learning_rate"]
    return {"factor": -lr if st.opt["flip_sign"] else lr}, {}


SCALE_BY_LEARNING_RATE = Rule(
    name="scale_by_learning_rate", kind="elementwise", state=ScaleByLearningRateState,
    hyperparameters=(Hyperparameter("learning_rate", check_non_negative, schedule=True),),
    options=("flip_sign",), per_step=_learning_rate_step, leaf=_scaled)


def scale_by_learning_rate(learning_rate: ScalarOrSchedule,
                           flip_sign: bool = True) -> GradientTransformation:
    r"""``u <- -lr * u`` (or ``+lr * u`` with ``flip_sign=False``); ``lr`` a number or ``step -> lr``.

    .. math::

        u_t \leftarrow -\eta_t\, u_t \qquad (+\eta_t\, u_t \text{ with flip\_sign=False})

    The state holds the step count whether ``learning_rate`` is a number or a schedule, so
    the state's structure does not depend on the argument's type. A schedule is evaluated at
    the number of updates already made (0 for the first step), matching the learning rate
    torch's scheduler has in force for that ``optimizer.step()``. A Python number is
    rounded once to the compute dtype (float64 params keep a float64 learning rate).
    Equivalent: ``optax.scale_by_learning_rate``; torch's ``param.add_(update, alpha=-lr)``.

    Args:
      learning_rate: :math:`\eta_t \ge 0`, a number or a schedule ``count -> lr``.
      flip_sign: multiply by :math:`-\eta_t` (descent, the default) rather than
        :math:`+\eta_t`.

    Returns:
      A :class:`GradientTransformation` whose state is a :class:`ScaleByLearningRateState`
        (an int32 ``count``).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.scale_by_learning_rate(0.5)
        >>> updates, _ = tx.update({"w": jnp.array([1.0, -2.0])}, tx.init(None))
        >>> updates["w"]
        Array([-0.5,  1. ], dtype=float32)
    """
    return lift(SCALE_BY_LEARNING_RATE, learning_rate=learning_rate, flip_sign=bool(flip_sign))
