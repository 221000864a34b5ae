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
    """``u <- factor * u`` (optax.scale). ``scale(-1.)`` flips the sign (torch ``maximize``)."""
    # The number 1 (an alias's ``sign`` member without maximize) leaves the updates as
    # they are; the member and its (empty) state stay.
    return lift(SCALE, factor=factor, identity=is_number(factor) and factor == 1)


class ScaleByScheduleState(NamedTuple):
    count: jax.Array  # int32: how many updates have been made


SCALE_BY_SCHEDULE = Rule(name="scale_by_schedule", kind="elementwise",
                         state=ScaleByScheduleState,
                         hyperparameters=(Hyperparameter("factor", schedule=True),),
                         leaf=_scaled)


def scale_by_schedule(step_size_fn: Schedule) -> GradientTransformation:
    """``u <- step_size_fn(count) * u`` with ``count`` = updates made so far (optax.scale_by_schedule)."""
    return lift(SCALE_BY_SCHEDULE, factor=step_size_fn)


class ScaleByLearningRateState(NamedTuple):
    count: jax.Array  # int32: the step a schedule is evaluated at (kept for a constant too)


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
    """``u <- -lr * u`` (or ``+lr * u`` with ``flip_sign=False``); ``lr`` a number or ``step -> lr``.

    The state holds the step count whether ``learning_rate`` is a number or a schedule, so
    the state's structure does not depend on the argument's type. A schedule is evaluated at
    the number of updates already made (0 for the first step), matching the learning rate
    torch's scheduler has in force for that ``optimizer.step()``.
    Equivalent: ``optax.scale_by_learning_rate``.
    """
    return lift(SCALE_BY_LEARNING_RATE, learning_rate=learning_rate, flip_sign=bool(flip_sign))
