"""Joining schedules one after another (torch SequentialLR, optax.join_schedules)."""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

from optxform.core import Schedule
from optxform.schedules.numerics import as_step, check_increasing_ints, f32

__all__ = ["join_schedules"]


def join_schedules(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    r"""Run ``schedules[i]`` from ``boundaries[i-1]`` on, each restarted at its own step 0.

    .. math::

        s(t) = s_i(t - b_{i-1}) \quad\text{for}\quad b_{i-1} \le t < b_i
        \qquad (b_{-1} = 0,\ b_{n-1} = \infty).

    Args:
      schedules: ``n >= 2`` schedules ``step -> value``.
      boundaries: ``n - 1`` increasing, non-negative steps at which the next schedule takes
        over (torch ``milestones``).

    Equivalents: ``torch.optim.lr_scheduler.SequentialLR(opt, schedulers, milestones)``
    (each torch scheduler is restarted at its epoch 0, so build every member schedule from
    the same base lr, as torch's members read the optimizer's ``initial_lr``);
    ``optax.join_schedules(schedules, boundaries)``.

    Returns:
      A schedule: a jit-safe function mapping an int step array (any shape) to float32
        values of the same shape.

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> schedule = optxform.join_schedules(
        ...     [optxform.linear_schedule(0.0, 1.0, 2), optxform.step_decay(1.0, 2, 0.5)], [2])
        >>> jax.jit(schedule)(jnp.arange(7))
        Array([0.  , 0.5 , 1.  , 1.  , 0.5 , 0.5 , 0.25], dtype=float32)
    """
    schedules = list(schedules)
    bounds = check_increasing_ints("boundaries", boundaries)
    if len(schedules) != len(bounds) + 1:
        raise ValueError(
            f"Invalid boundaries: {list(boundaries)!r} ({len(schedules)} schedules need "
            f"{len(schedules) - 1} boundaries, got {len(bounds)})")
    for i, schedule in enumerate(schedules):
        if not callable(schedule):
            raise ValueError(f"Invalid schedules: entry {i} is {schedule!r}, not a schedule")

    def schedule(step) -> jax.Array:
        step = as_step(step)
        value = f32(schedules[0](step))
        for boundary, member in zip(bounds, schedules[1:]):
            later = f32(member(jnp.maximum(step - boundary, 0)))
            value = jnp.where(step < boundary, value, later)
        return value

    return schedule
