"""Multiplying updates by a constant, a learning rate, or a schedule."""

from __future__ import annotations

from typing import NamedTuple

import jax

from optxform import tree as otu
from optxform.core import EmptyState, GradientTransformation, ScalarOrSchedule, Schedule
from optxform.core.counters import increment, zero_count
from optxform.core.schedule import value_at
from optxform.core.validation import check_learning_rate

__all__ = ["ScaleByLearningRateState", "ScaleByScheduleState", "scale",
           "scale_by_learning_rate", "scale_by_schedule"]


def scale(factor) -> GradientTransformation:
    """``u <- factor * u`` (optax.scale). ``scale(-1.)`` flips the sign (torch ``maximize``)."""

    def init(params):
        del params
        return EmptyState()

    def update(updates, state, params=None, **extra):
        del params, extra
        return otu.scale(factor, updates), state

    return GradientTransformation(init, update)


class ScaleByScheduleState(NamedTuple):
    count: jax.Array  # int32: how many updates have been made


def scale_by_schedule(step_size_fn: Schedule) -> GradientTransformation:
    """``u <- step_size_fn(count) * u`` with ``count`` = updates made so far (optax.scale_by_schedule)."""

    def init(params):
        del params
        return ScaleByScheduleState(count=zero_count())

    def update(updates, state, params=None, **extra):
        del params, extra
        factor = value_at(step_size_fn, state.count)
        return otu.scale(factor, updates), ScaleByScheduleState(count=increment(state.count))

    return GradientTransformation(init, update)


class ScaleByLearningRateState(NamedTuple):
    count: jax.Array  # int32: the step a schedule is evaluated at (kept for a constant too)


def scale_by_learning_rate(learning_rate: ScalarOrSchedule,
                           flip_sign: bool = True) -> GradientTransformation:
    """``u <- -lr * u`` (or ``+lr * u`` with ``flip_sign=False``); ``lr`` a number or ``step -> lr``.

    The state holds the step count whether ``learning_rate`` is a number or a schedule, so
    the state's structure does not depend on the argument's type. A schedule is evaluated at
    the number of updates already made (0 for the first step), matching the learning rate
    torch's scheduler has in force for that ``optimizer.step()``.
    Equivalent: ``optax.scale_by_learning_rate``.
    """
    check_learning_rate(learning_rate)
    sign = -1.0 if flip_sign else 1.0

    def init(params):
        del params
        return ScaleByLearningRateState(count=zero_count())

    def update(updates, state, params=None, **extra):
        del params, extra
        factor = sign * value_at(learning_rate, state.count)
        return otu.scale(factor, updates), ScaleByLearningRateState(count=increment(state.count))

    return GradientTransformation(init, update)
