"""Cosine schedules: decay, annealing (periodic), warm-up + decay, warm restarts (SGDR).

All cosines go through :func:`optxform.schedules.numerics.half_cosine`, which keeps full
float32 relative precision near the bottom of the curve, and cycle positions are computed
on the int32 step, so restarts stay exact at any step up to the int32 maximum.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from optxform.core import Schedule
from optxform.schedules.combine import join_schedules
from optxform.schedules.decay import linear_schedule
from optxform.schedules.numerics import (as_step, check_int, check_number, cosine_mix, f32,
                                         half_cosine, int_power, number)

__all__ = [
    "cosine_annealing", "cosine_annealing_warm_restarts", "cosine_decay_restarts",
    "cosine_decay_schedule", "warmup_cosine_decay_schedule",
]

_INT32_MAX = 2**31 - 1


def _check_exponent(exponent) -> float:
    e = check_number("exponent", exponent, low=0.0)
    if not math.isfinite(e):
        raise ValueError(f"Invalid exponent: {exponent!r} (exponent must be finite)")
    return e


def cosine_decay_schedule(init_value: float, decay_steps: int, alpha: ArrayLike = 0.0,
                          exponent: float = 1.0) -> Schedule:
    r"""Cosine decay from ``init_value`` to ``alpha * init_value``, then constant.

    .. math::

        c = \min(t, T), \qquad
        s(t) = v_0 \left((1 - \alpha) \left(\tfrac{1 + \cos(\pi c / T)}{2}\right)^{e}
        + \alpha\right).

    Args:
      init_value: :math:`v_0`.
      decay_steps: :math:`T > 0`.
      alpha: the final value as a fraction of ``init_value``.
      exponent: :math:`e \ge 0` (optax's option; 1 is the plain cosine).

    Equivalents: ``optax.cosine_decay_schedule``; ``keras CosineDecay(v0, T, alpha)``
    (no warm-up); ``torch CosineAnnealingLR(opt, T_max=T, eta_min=alpha * lr)`` for
    ``t <= T`` only -- torch keeps following the cosine back up after ``T`` (see
    :func:`cosine_annealing`), this schedule holds the final value.

    Returns:
      A schedule: a jit-safe function mapping an int step array (any shape) to float32
        values of the same shape.

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> schedule = optxform.cosine_decay_schedule(1.0, decay_steps=4)
        >>> [round(v, 3) for v in jax.jit(schedule)(jnp.arange(6)).tolist()]
        [1.0, 0.854, 0.5, 0.146, 0.0, 0.0]
    """
    v0 = number("init_value", init_value)
    T = check_int("decay_steps", decay_steps, minimum=1)
    a = number("alpha", alpha)
    e = _check_exponent(exponent)

    def schedule(step) -> jax.Array:
        # v0 ((1 - a) w + a) = v0 w + a v0 (1 - w)
        c = jnp.minimum(as_step(step), T)
        return cosine_mix(v0, a * v0, c, T - c, np.float32(T), e)

    return schedule


def cosine_annealing(init_value: float, t_max: int, eta_min: float = 0.0) -> Schedule:
    r"""torch's CosineAnnealingLR: cosine from ``init_value`` to ``eta_min``, period ``2 t_max``.

    .. math::

        s(t) = \eta_{min} + (v_0 - \eta_{min})\, \frac{1 + \cos(\pi t / T_{max})}{2}
        \qquad\text{for all } t \ge 0 .

    Past ``t_max`` the value rises again (reaching ``init_value`` at ``2 t_max``), exactly as
    torch's recursive scheduler does when it is stepped beyond ``T_max``; use
    :func:`cosine_decay_schedule` to hold ``eta_min`` instead. The phase is taken from the
    int32 step modulo ``2 t_max``, so the schedule stays periodic at any step count.

    Args:
      init_value: :math:`v_0` (torch: the optimizer's lr).
      t_max: :math:`T_{max} > 0`, the half period (torch ``T_max``).
      eta_min: the minimum value (torch ``eta_min``).

    Equivalent: ``torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max, eta_min)``.

    Returns:
      A schedule: a jit-safe function mapping an int step array (any shape) to float32
        values of the same shape.

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> schedule = optxform.cosine_annealing(1.0, t_max=2)
        >>> [round(v, 3) for v in jax.jit(schedule)(jnp.arange(6)).tolist()]
        [1.0, 0.5, 0.0, 0.5, 1.0, 0.5]
    """
    v0 = number("init_value", init_value)
    T = check_int("t_max", t_max, minimum=1)
    low = number("eta_min", eta_min)

    def schedule(step) -> jax.Array:
        t = as_step(step)
        half_periods = t // T
        r = t - half_periods * T
        rising = (half_periods % 2) == 1
        num = jnp.where(rising, T - r, r)
        return cosine_mix(v0, low, num, T - num, np.float32(T))

    return schedule


def warmup_cosine_decay_schedule(init_value: float, peak_value: float, warmup_steps: int,
                                 decay_steps: int, end_value: float = 0.0,
                                 exponent: float = 1.0) -> Schedule:
    r"""Linear warm-up to ``peak_value`` over ``warmup_steps``, then cosine decay to ``end_value``.

    .. math::

        s(t) = \begin{cases}
          v_0 + (v_p - v_0)\, t / W & t < W \\
          v_e + (v_p - v_e) \left(\tfrac{1 + \cos(\pi \min(t - W, D - W) / (D - W))}{2}
          \right)^{e} & t \ge W
        \end{cases}

    ``decay_steps`` :math:`D` counts the warm-up too (optax's convention), so the decay
    reaches ``end_value`` at step ``D``.

    Equivalents: ``optax.warmup_cosine_decay_schedule`` (same arguments);
    keras ``CosineDecay(v0, decay_steps=K, alpha, warmup_target=vp, warmup_steps=W)`` is
    ``warmup_cosine_decay_schedule(v0, vp, W, W + K, end_value=alpha * vp)``; torch
    ``SequentialLR([LinearLR, CosineAnnealingLR(T_max=D - W, eta_min=v_e)], [W])`` up to
    step ``D``.

    Args:
      init_value: :math:`v_0`, the value at step 0.
      peak_value: :math:`v_p`, the value reached at the end of the warm-up.
      warmup_steps: :math:`W \ge 0`, the length of the linear warm-up.
      decay_steps: :math:`D > W`, the step at which ``end_value`` is reached, warm-up
        included.
      end_value: :math:`v_e`, the value held from step ``D`` on.
      exponent: :math:`e \ge 0` (optax's option; 1 is the plain cosine).

    Returns:
      A schedule: a jit-safe function mapping an int step array (any shape) to float32
        values of the same shape.

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> schedule = optxform.warmup_cosine_decay_schedule(
        ...     0.0, 1.0, warmup_steps=2, decay_steps=4)
        >>> [round(v, 3) for v in jax.jit(schedule)(jnp.arange(6)).tolist()]
        [0.0, 0.5, 1.0, 0.5, 0.0, 0.0]
    """
    v0, vp = number("init_value", init_value), number("peak_value", peak_value)
    W = check_int("warmup_steps", warmup_steps)
    D = check_int("decay_steps", decay_steps, minimum=1)
    if D <= W:
        raise ValueError(f"Invalid decay_steps: {decay_steps!r} (decay_steps counts the "
                         f"warm-up and must exceed warmup_steps={W})")
    ve = number("end_value", end_value)
    e = _check_exponent(exponent)

    def decay(step) -> jax.Array:
        c = jnp.minimum(as_step(step), D - W)
        return cosine_mix(vp, ve, c, D - W - c, np.float32(D - W), e)

    return join_schedules([linear_schedule(v0, vp, W), decay], [W])


def _cycle_table(first: float, mult: float, limit: int = 1 << 16):
    """Starts and lengths of cycles ``first * mult**i`` until a start exceeds int32 max."""
    starts, lengths = [], []
    start, length = 0.0, float(first)
    while start <= _INT32_MAX:
        if len(starts) >= limit:
            raise ValueError(f"Invalid t_mul: {mult!r} gives more than {limit} cycles within "
                             "the int32 step range; use a larger t_mul or t_mul=1")
        starts.append(start)
        lengths.append(length)
        start, length = start + length, length * mult
    return starts, lengths


def _restart_position(step, first, mult):
    """``(cycle index, num, rem, length)`` of ``step`` in cycles of length ``first * mult**i``.

    ``num`` is the position in the current cycle and ``rem = length - num``. Integer cycle
    lengths are handled exactly in int32; fractional cycle starts (keras' real ``t_mul``)
    are exact to float32 rounding of the fractional part.
    """
    t = as_step(step)
    if mult == 1.0 and first == math.floor(first):
        F = int(first)
        index = t // F
        num_i = t - index * F
        return index, f32(num_i), f32(F - num_i), np.float32(F)
    if mult == 1.0:  # fractional period: float32 position, corrected into [0, F)
        F32 = np.float32(first)
        index = jnp.floor(f32(t) / F32).astype(jnp.int32)
        num = f32(t) - f32(index) * F32
        index = jnp.where(num < 0, index - 1, jnp.where(num >= F32, index + 1, index))
        num = jnp.where(num < 0, num + F32, jnp.where(num >= F32, num - F32, num))
        return index, num, F32 - num, F32
    starts, lengths = _cycle_table(first, mult)
    # A step t lies in cycle i when t >= start_i; for an integer t that is t >= ceil(start_i).
    # Round starts that are integers up to float64 noise (e.g. 2.9999999999999996).
    nearest = [round(s) for s in starts]
    starts = [float(n) if abs(s - n) <= 1e-9 * max(1.0, s) else s
              for s, n in zip(starts, nearest)]
    thresholds = np.asarray([min(math.ceil(s), _INT32_MAX) for s in starts], np.int32)
    floors = np.asarray([min(math.floor(s), _INT32_MAX) for s in starts], np.int32)
    fractions = np.asarray([s - math.floor(s) for s in starts], np.float32)
    index = (jnp.searchsorted(jnp.asarray(thresholds), t, side="right") - 1).astype(jnp.int32)
    length = jnp.asarray(np.asarray(lengths, np.float32))[index]
    num = f32(t - jnp.asarray(floors)[index]) - jnp.asarray(fractions)[index]
    return index, num, length - num, length


def cosine_annealing_warm_restarts(init_value: float, t_0: int, t_mult: int = 1,
                                   eta_min: float = 0.0) -> Schedule:
    r"""torch's CosineAnnealingWarmRestarts (SGDR): cosine cycles of length ``t_0 * t_mult**i``.

    .. math::

        s(t) = \eta_{min} + (v_0 - \eta_{min})\, \frac{1 + \cos(\pi T_{cur} / T_i)}{2},

    where :math:`T_i = t_0\, t_{mult}^{\,i}` is the length of the cycle containing step
    ``t`` and :math:`T_{cur}` the steps since it started. Each cycle restarts at
    ``init_value``. Cycle positions are exact int32 arithmetic (a modulo for ``t_mult=1``,
    a table of at most 31 restart steps otherwise), valid at any step.

    Args:
      init_value: :math:`v_0` (torch: the optimizer's lr).
      t_0: the first cycle length, an integer ``>= 1`` (torch ``T_0``).
      t_mult: the cycle length factor, an integer ``>= 1`` (torch ``T_mult``).
      eta_min: the minimum value.

    Equivalents: ``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0, T_mult,
    eta_min)``; keras ``CosineDecayRestarts(v0, t_0, t_mul=t_mult, m_mul=1,
    alpha=eta_min / v0)`` (see :func:`cosine_decay_restarts`).

    Returns:
      A schedule: a jit-safe function mapping an int step array (any shape) to float32
        values of the same shape.

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> schedule = optxform.cosine_annealing_warm_restarts(1.0, t_0=2, t_mult=2)
        >>> [round(v, 3) for v in jax.jit(schedule)(jnp.arange(8)).tolist()]  # restarts at 2 and 6
        [1.0, 0.5, 1.0, 0.854, 0.5, 0.146, 1.0, 0.962]
    """
    v0 = number("init_value", init_value)
    T0 = check_int("t_0", t_0, minimum=1)
    mult = check_int("t_mult", t_mult, minimum=1)
    low = number("eta_min", eta_min)

    def schedule(step) -> jax.Array:
        _, num, rem, length = _restart_position(step, float(T0), float(mult))
        return cosine_mix(v0, low, num, rem, length)

    return schedule


def cosine_decay_restarts(init_value: float, first_decay_steps: int, t_mul: float = 2.0,
                          m_mul: float = 1.0, alpha: ArrayLike = 0.0) -> Schedule:
    r"""keras' CosineDecayRestarts: SGDR with real cycle-length and peak factors.

    .. math::

        s(t) = v_0 \left((1 - \alpha)\, m^{i}\, \frac{1 + \cos(\pi\, T_{cur} / T_i)}{2}
        + \alpha\right), \qquad T_i = F\, t_{mul}^{\,i},

    where cycle ``i`` starts at step :math:`F (t_{mul}^i - 1) / (t_{mul} - 1)` (``i F``
    when :math:`t_{mul} = 1`) and :math:`T_{cur}` is the (possibly fractional) distance
    from that start. Note keras' quirk: ``alpha`` is *not* scaled by :math:`m^i`, so each
    cycle still ends at ``alpha * init_value``.

    Args:
      init_value: :math:`v_0`.
      first_decay_steps: :math:`F > 0`, the first cycle length.
      t_mul: :math:`t_{mul} \ge 1`, the cycle length factor.
      m_mul: :math:`m \ge 0`, the factor applied to each cycle's peak.
      alpha: the floor as a fraction of ``init_value``.

    Equivalents: ``keras.optimizers.schedules.CosineDecayRestarts(v0, F, t_mul, m_mul,
    alpha)``; with integer ``F`` and ``t_mul`` and ``m_mul = 1`` this is
    :func:`cosine_annealing_warm_restarts` ``(v0, F, t_mul, eta_min=alpha * v0)``.

    Returns:
      A schedule: a jit-safe function mapping an int step array (any shape) to float32
        values of the same shape.

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> schedule = optxform.cosine_decay_restarts(1.0, first_decay_steps=2, m_mul=0.5)
        >>> [round(v, 3) for v in jax.jit(schedule)(jnp.arange(8)).tolist()]  # peaks 1, 0.5, 0.25
        [1.0, 0.5, 0.5, 0.427, 0.25, 0.073, 0.25, 0.24]
    """
    v0 = number("init_value", init_value)
    F = check_number("first_decay_steps", first_decay_steps, low=0.0, low_open=True)
    if not math.isfinite(F):
        raise ValueError(f"Invalid first_decay_steps: {first_decay_steps!r} "
                         "(first_decay_steps must be finite)")
    mult = check_number("t_mul", t_mul, low=1.0)
    if not math.isfinite(mult):
        raise ValueError(f"Invalid t_mul: {t_mul!r} (t_mul must be finite)")
    m = check_number("m_mul", m_mul, low=0.0)
    a = number("alpha", alpha)

    def schedule(step) -> jax.Array:
        index, num, rem, length = _restart_position(step, F, mult)
        cosine = half_cosine(num, rem, length)
        if m != 1.0:
            cosine = cosine * int_power(m, index)
        return np.float32(v0) * (np.float32(1.0 - a) * cosine + np.float32(a))

    return schedule
