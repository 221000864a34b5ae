"""Monotone schedules: constant, linear, polynomial, exponential, step-wise, inverse-time.

Every schedule maps an int step array (any shape) to float32 values of the same shape and
is jit-safe. Its value at step ``t`` is the learning rate torch's scheduler of the same
name has in force for the ``(t+1)``-th ``optimizer.step()`` (``t`` = number of updates
already made), which is also what :func:`optxform.scale_by_learning_rate` evaluates.
Schedule arguments are Python numbers fixed at construction; invalid ones raise
``ValueError`` naming the argument.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from optxform.core import Schedule
from optxform.schedules.combine import join_schedules
from optxform.schedules.numerics import (as_step, check_increasing_ints, check_int,
                                         check_number, f32, int_power, number,
                                         power_mix)

__all__ = [
    "constant_schedule", "exponential_decay", "inverse_time_decay", "linear_schedule",
    "multistep_decay", "piecewise_constant_decay", "piecewise_constant_schedule",
    "polynomial_schedule", "step_decay", "warmup_exponential_decay_schedule",
]


def constant_schedule(value: float) -> Schedule:
    """The constant schedule :math:`s(t) = v` (torch: no scheduler; optax.constant_schedule).

    Args:
      value: :math:`v`, the value at every step.

    Returns:
      A schedule: a jit-safe function mapping an int step array (any shape) to float32
        values of the same shape, all equal to ``value``.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> optxform.constant_schedule(0.1)(jnp.arange(3))
        Array([0.1, 0.1, 0.1], dtype=float32)
    """
    value = number("value", value)

    def schedule(step) -> jax.Array:
        return jnp.full(jnp.shape(step), value, jnp.float32)

    return schedule


def polynomial_schedule(init_value: float, end_value: float, power: float, transition_steps: int,
                        transition_begin: int = 0, cycle: bool = False) -> Schedule:
    r"""Polynomial decay from ``init_value`` to ``end_value`` over ``transition_steps``.

    .. math::

        c = \min(\max(t - t_0, 0), T), \qquad
        s(t) = (v_0 - v_1) \left(\frac{T - c}{T}\right)^{p} + v_1 .

    With ``cycle=True`` (keras) the decay restarts instead of holding ``end_value``: the
    horizon is the first multiple of ``T`` that is ``>= t - t_0`` (``T`` itself at 0), so
    ``s`` reaches ``end_value`` exactly at each multiple of ``T`` and jumps back up on the
    next step, to a lower peak each cycle:
    :math:`s = (v_0 - v_1) (1 - d / (T \lceil d/T \rceil))^p + v_1`, :math:`d = t - t_0`.

    Args:
      init_value, end_value: :math:`v_0`, :math:`v_1`.
      power: :math:`p`.
      transition_steps: :math:`T \ge 0`; ``0`` gives the constant ``init_value`` (as optax).
      transition_begin: :math:`t_0 \ge 0`, steps to hold ``init_value`` first.
      cycle: keras' ``PolynomialDecay(cycle=True)``.

    Equivalents: ``torch PolynomialLR(opt, total_iters=T, power=p)`` with ``init_value`` =
    the optimizer's lr and ``end_value=0``; ``optax.polynomial_schedule`` (no ``cycle``);
    ``keras PolynomialDecay(v0, T, v1, p, cycle)``.

    Returns:
      A schedule: a jit-safe function mapping an int step array (any shape) to float32
        values of the same shape.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> optxform.polynomial_schedule(1.0, 0.0, power=2, transition_steps=4)(jnp.arange(6))
        Array([1.    , 0.5625, 0.25  , 0.0625, 0.    , 0.    ], dtype=float32)
    """
    v0, v1 = number("init_value", init_value), number("end_value", end_value)
    p = check_number("power", power)
    if not math.isfinite(p):
        raise ValueError(f"Invalid power: {power!r} (power must be finite)")
    T = check_int("transition_steps", transition_steps)
    t0 = check_int("transition_begin", transition_begin)
    if T == 0:
        return constant_schedule(v0)

    def schedule(step) -> jax.Array:
        d = jnp.maximum(as_step(step) - t0, 0)
        if cycle:
            quotient, r = d // T, d % T
            periods = jnp.maximum(quotient + (r > 0).astype(jnp.int32), 1)
            left = jnp.where(d == 0, T, (T - r) % T)
            horizon = f32(periods) * np.float32(T)
            return power_mix(v0, v1, d, left, horizon, p)
        c = jnp.minimum(d, T)
        return power_mix(v0, v1, c, T - c, np.float32(T), p)

    return schedule


def linear_schedule(init_value: float, end_value: float, transition_steps: int,
                    transition_begin: int = 0) -> Schedule:
    r"""Linear interpolation from ``init_value`` to ``end_value``, then constant.

    .. math::

        s(t) = (v_0 - v_1)\,\frac{T - c}{T} + v_1, \qquad c = \min(\max(t - t_0, 0), T).

    Equivalents: ``torch LinearLR(opt, start_factor=a, end_factor=b, total_iters=T)`` is
    ``linear_schedule(a * lr, b * lr, T)``; ``optax.linear_schedule``.

    Args:
      init_value: :math:`v_0`, the value at step :math:`t_0` and before.
      end_value: :math:`v_1`, the value from step :math:`t_0 + T` on.
      transition_steps: :math:`T \ge 0`; ``0`` gives the constant ``init_value`` (as optax).
      transition_begin: :math:`t_0 \ge 0`, steps to hold ``init_value`` first.

    Returns:
      A schedule: a jit-safe function mapping an int step array (any shape) to float32
        values of the same shape.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> optxform.linear_schedule(1.0, 0.0, transition_steps=4)(jnp.arange(6))
        Array([1.  , 0.75, 0.5 , 0.25, 0.  , 0.  ], dtype=float32)
    """
    return polynomial_schedule(init_value, end_value, 1.0, transition_steps, transition_begin)


def exponential_decay(init_value: float, transition_steps: int, decay_rate: float,
                      transition_begin: int = 0, staircase: bool = False,
                      end_value: float | None = None) -> Schedule:
    r"""Exponential decay: ``init_value * decay_rate ** ((t - t0) / T)``.

    .. math::

        d = \max(t - t_0, 0), \qquad
        s(t) = v_0\, \gamma^{d / T} \quad(\gamma^{\lfloor d / T\rfloor} \text{ with staircase}),

    clipped at ``end_value`` (a lower bound when :math:`\gamma < 1`, an upper bound
    otherwise). The integer part of the exponent is taken from float64 power tables, so
    ``0.95 ** 300`` is as exact as float32 allows.

    Args:
      init_value: :math:`v_0`.
      transition_steps: :math:`T > 0`.
      decay_rate: :math:`\gamma \ge 0` (``0`` drops to 0 after ``t0``, as torch does; optax
        returns a constant for it instead).
      transition_begin: :math:`t_0 \ge 0`, steps to hold ``init_value`` first.
      staircase: decay in discrete jumps every ``T`` steps.
      end_value: optional bound, as in optax.

    Equivalents: ``torch ExponentialLR(opt, gamma)`` is ``exponential_decay(lr, 1, gamma)``;
    ``torch StepLR`` is ``(lr, step_size, gamma, staircase=True)`` (see :func:`step_decay`);
    ``optax.exponential_decay``; ``keras ExponentialDecay(v0, T, gamma, staircase)``.

    Returns:
      A schedule: a jit-safe function mapping an int step array (any shape) to float32
        values of the same shape.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> optxform.exponential_decay(1.0, transition_steps=2, decay_rate=0.5)(jnp.arange(5))
        Array([1.        , 0.70710677, 0.5       , 0.35355338, 0.25      ], dtype=float32)
        >>> optxform.exponential_decay(1.0, 2, 0.5, staircase=True)(jnp.arange(5))
        Array([1.  , 1.  , 0.5 , 0.5 , 0.25], dtype=float32)
    """
    v0 = number("init_value", init_value)
    T = check_int("transition_steps", transition_steps, minimum=1)
    rate = check_number("decay_rate", decay_rate, low=0.0)
    t0 = check_int("transition_begin", transition_begin)
    end = None if end_value is None else number("end_value", end_value)
    log_rate_per_step = math.log(rate) / T if rate > 0 else -math.inf

    def schedule(step) -> jax.Array:
        d = jnp.maximum(as_step(step) - t0, 0)
        quotient = d // T
        value = int_power(rate, quotient, scale=v0)
        if not staircase and T > 1:
            remainder = d - quotient * T
            if rate > 0:
                value = value * jnp.exp(f32(remainder) * np.float32(log_rate_per_step))
            else:
                value = jnp.where(remainder > 0, np.float32(0.0), value)
        if end is not None:
            clip = jnp.maximum if rate < 1.0 else jnp.minimum
            value = clip(value, np.float32(end))
        return value

    return schedule


def step_decay(init_value: float, step_size: int, gamma: float = 0.1) -> Schedule:
    r"""torch's StepLR: ``init_value * gamma ** floor(t / step_size)``.

    .. math:: s(t) = v_0\, \gamma^{\lfloor t / S \rfloor} .

    Args:
      init_value: :math:`v_0` (torch: the optimizer's lr).
      step_size: :math:`S \ge 1`, the steps between two decays.
      gamma: :math:`\gamma \ge 0`, the factor applied every ``step_size`` steps.

    Returns:
      A schedule: a jit-safe function mapping an int step array (any shape) to float32
        values of the same shape.

    Equivalents: ``torch.optim.lr_scheduler.StepLR(opt, step_size, gamma)`` with
    ``init_value`` = the optimizer's lr; ``exponential_decay(init_value, step_size, gamma,
    staircase=True)``; keras ``ExponentialDecay(..., staircase=True)``.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> optxform.step_decay(1.0, step_size=2, gamma=0.5)(jnp.arange(6))
        Array([1.  , 1.  , 0.5 , 0.5 , 0.25, 0.25], dtype=float32)
    """
    return exponential_decay(init_value, check_int("step_size", step_size, minimum=1),
                             check_number("gamma", gamma, low=0.0), staircase=True)


def multistep_decay(init_value: float, milestones: Sequence[int], gamma: float = 0.1) -> Schedule:
    r"""torch's MultiStepLR: ``init_value * gamma ** (number of milestones <= t)``.

    A milestone listed twice decays twice, as in torch (which counts them).

    Args:
      init_value: the starting value (torch: the optimizer's lr).
      milestones: non-empty list of non-negative steps (any order; repeats allowed).
      gamma: the factor applied at each milestone, ``>= 0``.

    Equivalents: ``torch.optim.lr_scheduler.MultiStepLR(opt, milestones, gamma)``;
    ``piecewise_constant_schedule(init_value, {m: gamma for m in milestones})`` (distinct
    milestones); ``optax.piecewise_constant_schedule`` likewise.

    Returns:
      A schedule: a jit-safe function mapping an int step array (any shape) to float32
        values of the same shape.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> optxform.multistep_decay(1.0, milestones=[2, 4], gamma=0.5)(jnp.arange(6))
        Array([1.  , 1.  , 0.5 , 0.5 , 0.25, 0.25], dtype=float32)
    """
    v0 = number("init_value", init_value)
    bounds = np.asarray(check_increasing_ints("milestones", milestones, allow_repeats=True),
                        np.int32)
    rate = check_number("gamma", gamma, low=0.0)

    def schedule(step) -> jax.Array:
        passed = jnp.searchsorted(jnp.asarray(bounds), as_step(step), side="right")
        return int_power(rate, passed.astype(jnp.int32), scale=v0)

    return schedule


def piecewise_constant_schedule(init_value: float,
                                boundaries_and_scales: Mapping[int, Any] | None = None
                                ) -> Schedule:
    r"""``init_value`` times the product of the scales of every boundary ``<= t`` (optax).

    .. math:: s(t) = v_0 \prod_{b_i \le t} f_i .

    The running products are formed in float64 and rounded once.

    Args:
      init_value: :math:`v_0`.
      boundaries_and_scales: ``{step: scale}`` with non-negative steps and scales; ``None``
        gives a constant schedule (as optax); an empty dict is rejected.

    Returns:
      A schedule: a jit-safe function mapping an int step array (any shape) to float32
        values of the same shape.

    Equivalents: ``optax.piecewise_constant_schedule``; torch ``MultiStepLR`` when every
    scale is ``gamma``.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> optxform.piecewise_constant_schedule(1.0, {2: 0.5, 4: 0.5})(jnp.arange(6))
        Array([1.  , 1.  , 0.5 , 0.5 , 0.25, 0.25], dtype=float32)
    """
    v0 = number("init_value", init_value)
    if boundaries_and_scales is None:
        return constant_schedule(v0)
    if not isinstance(boundaries_and_scales, Mapping):
        raise ValueError(f"Invalid boundaries_and_scales: {boundaries_and_scales!r} "
                         "(boundaries_and_scales must be a dict {step: scale})")
    items = sorted((check_int("boundaries_and_scales", b),
                    check_number("boundaries_and_scales", s, low=0.0))
                   for b, s in boundaries_and_scales.items())
    if not items:
        raise ValueError("Invalid boundaries_and_scales: it is empty (use None or "
                         "constant_schedule for a constant)")
    bounds = np.asarray([b for b, _ in items], np.int32)
    values = np.cumprod([v0] + [s for _, s in items], dtype=np.float64).astype(np.float32)

    def schedule(step) -> jax.Array:
        index = jnp.searchsorted(jnp.asarray(bounds), as_step(step), side="right")
        return jnp.asarray(values)[index]

    return schedule


def piecewise_constant_decay(boundaries: Sequence[Any], values: Sequence[Any]) -> Schedule:
    r"""keras' PiecewiseConstantDecay: ``values[i]`` for ``boundaries[i-1] < t <= boundaries[i]``.

    .. math:: s(t) = v_{\#\{i : b_i < t\}} .

    Note keras' convention: the value changes on the step *after* a boundary (``t > b``),
    whereas :func:`piecewise_constant_schedule` (optax) and torch's MultiStepLR change *at*
    the boundary (``t >= b``).

    Args:
      boundaries: a non-empty increasing list of non-negative steps (numbers).
      values: ``len(boundaries) + 1`` values.

    Returns:
      A schedule: a jit-safe function mapping an int step array (any shape) to float32
        values of the same shape.

    Equivalent: ``keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)``.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> optxform.piecewise_constant_decay([2, 4], [1.0, 0.5, 0.25])(jnp.arange(6))
        Array([1.  , 1.  , 1.  , 0.5 , 0.5 , 0.25], dtype=float32)
    """
    try:
        raw = list(boundaries)
    except TypeError:
        raise ValueError(f"Invalid boundaries: {boundaries!r} (boundaries must be a "
                         "sequence of steps)") from None
    if not raw:
        raise ValueError("Invalid boundaries: it is empty (boundaries needs at least one "
                         "entry; use constant_schedule for a constant)")
    floats = [check_number("boundaries", b, low=0.0) for b in raw]
    if any(b >= a for a, b in zip(floats[1:], floats)):
        raise ValueError(f"Invalid boundaries: {raw!r} (boundaries must be increasing)")
    vals = [number("values", v) for v in values]
    if len(vals) != len(floats) + 1:
        raise ValueError(f"Invalid values: {len(vals)} values for {len(floats)} boundaries "
                         "(values needs len(boundaries) + 1 entries)")
    # t > b for an integer t  <=>  t > floor(b).
    thresholds = np.asarray([min(math.floor(b), 2**31 - 1) for b in floats], np.int32)
    table = np.asarray(vals, np.float64).astype(np.float32)

    def schedule(step) -> jax.Array:
        index = jnp.searchsorted(jnp.asarray(thresholds), as_step(step), side="left")
        return jnp.asarray(table)[index]

    return schedule


def inverse_time_decay(init_value: float, decay_steps: int, decay_rate: float,
                       staircase: bool = False) -> Schedule:
    r"""keras' InverseTimeDecay: ``init_value / (1 + decay_rate * t / decay_steps)``.

    .. math::

        s(t) = \frac{v_0}{1 + r\, t / T} \quad
        \left(\frac{v_0}{1 + r \lfloor t / T \rfloor} \text{ with staircase}\right).

    Args:
      init_value: :math:`v_0`.
      decay_steps: :math:`T > 0` (a number).
      decay_rate: :math:`r \ge 0`.
      staircase: decay in discrete jumps every ``decay_steps`` steps.

    Equivalents: ``keras.optimizers.schedules.InverseTimeDecay``; torch's
    ``LambdaLR(opt, lambda t: 1 / (1 + r * t / T))``; the step-size rule inside torch's
    ``Adagrad(lr_decay=r)`` is ``inverse_time_decay(lr, 1, r)``.

    Returns:
      A schedule: a jit-safe function mapping an int step array (any shape) to float32
        values of the same shape.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> optxform.inverse_time_decay(1.0, decay_steps=1, decay_rate=1.0)(jnp.arange(4))
        Array([1.        , 0.5       , 0.33333334, 0.25      ], dtype=float32)
    """
    v0 = number("init_value", init_value)
    T = check_number("decay_steps", decay_steps, low=0.0, low_open=True)
    if not math.isfinite(T):
        raise ValueError(f"Invalid decay_steps: {decay_steps!r} (decay_steps must be finite)")
    rate = check_number("decay_rate", decay_rate, low=0.0)
    integral = T == math.floor(T) and T <= 2**31 - 1

    def schedule(step) -> jax.Array:
        t = as_step(step)
        if staircase and integral:
            p = f32(t // int(T))
        elif staircase:
            p = jnp.floor(f32(t) / np.float32(T))
        else:
            p = f32(t) / np.float32(T)
        return np.float32(v0) / (np.float32(1.0) + np.float32(rate) * p)

    return schedule


def warmup_exponential_decay_schedule(init_value: float, peak_value: float, warmup_steps: int,
                                      transition_steps: int, decay_rate: float,
                                      transition_begin: int = 0, staircase: bool = False,
                                      end_value: float | None = None) -> Schedule:
    r"""Linear warm-up from ``init_value`` to ``peak_value``, then :func:`exponential_decay`.

    .. math::

        s(t) = \begin{cases} \text{linear}(v_0 \to v_p \text{ over } W)(t) & t < W \\
        \text{exponential\_decay}(v_p, T, \gamma, t_0, \text{staircase},
        \text{end})(t - W) & t \ge W \end{cases}

    Args:
      init_value: :math:`v_0`, the value at step 0.
      peak_value: :math:`v_p`, the value reached at the end of the warm-up.
      warmup_steps: :math:`W \ge 0`, the length of the warm-up.
      transition_steps: :math:`T > 0`, the steps over which the value decays by
        ``decay_rate`` (as in :func:`exponential_decay`).
      decay_rate: :math:`\gamma \ge 0`.
      transition_begin: :math:`t_0 \ge 0`, steps after the warm-up to hold ``peak_value``.
      staircase: decay in discrete jumps every ``transition_steps`` steps.
      end_value: optional bound of the decay, as in :func:`exponential_decay`.

    Returns:
      A schedule: a jit-safe function mapping an int step array (any shape) to float32
        values of the same shape.

    Equivalents: ``optax.warmup_exponential_decay_schedule`` (same arguments); torch
    ``SequentialLR([LinearLR, ExponentialLR], milestones=[W])``.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> schedule = optxform.warmup_exponential_decay_schedule(
        ...     0.0, 1.0, warmup_steps=2, transition_steps=1, decay_rate=0.5)
        >>> schedule(jnp.arange(6))
        Array([0.   , 0.5  , 1.   , 0.5  , 0.25 , 0.125], dtype=float32)
    """
    W = check_int("warmup_steps", warmup_steps)
    return join_schedules(
        [linear_schedule(init_value, peak_value, W),
         exponential_decay(peak_value, transition_steps, decay_rate, transition_begin,
                           staircase, end_value)],
        [W])
