"""Cyclical schedules: one-cycle (torch OneCycleLR) and triangular cycles (torch CyclicLR),
each with its companion momentum schedule (torch's ``cycle_momentum``).

torch cycles the momentum (SGD ``momentum``, or Adam's ``beta1``) against the learning
rate: high momentum while the learning rate is low, and the other way round. Feed the
companion schedule to the alias through :func:`optxform.inject_hyperparams`::

    tx = optxform.inject_hyperparams(optxform.sgd)(
        learning_rate=optxform.one_cycle(1000, max_value=0.1),
        momentum=optxform.one_cycle_momentum(1000))
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from optxform.core import Schedule
from optxform.schedules.numerics import (as_step, check_int, check_number, cosine_mix, f32,
                                         int_power, number)

__all__ = ["cyclic", "cyclic_momentum", "one_cycle", "one_cycle_momentum"]

_ANNEAL_STRATEGIES = ("cos", "linear")
_CYCLIC_MODES = ("triangular", "triangular2", "exp_range")


# --------------------------------------------------------------------------- one cycle

def _one_cycle_checks(total_steps, pct_start, anneal_strategy) -> tuple[int, float]:
    total = check_int("total_steps", total_steps, minimum=1)
    pct = check_number("pct_start", pct_start, low=0.0, high=1.0)
    if anneal_strategy not in _ANNEAL_STRATEGIES:
        raise ValueError(f"Invalid anneal_strategy: {anneal_strategy!r} (anneal_strategy "
                         f"must be one of {', '.join(map(repr, _ANNEAL_STRATEGIES))})")
    return total, pct


def _one_cycle_phases(total: int, pct: float, three_phase: bool, start: float, peak: float,
                      final: float) -> list[tuple[float, float, float, float]]:
    """torch's phases ``(start_step, end_step, from_value, to_value)``, in float64."""
    if three_phase:
        ends = [float(pct * total) - 1, float(2 * pct * total) - 2, float(total - 1)]
        values = [(start, peak), (peak, start), (start, final)]
    else:
        ends = [float(pct * total) - 1, float(total - 1)]
        values = [(start, peak), (peak, final)]
    starts = [0.0] + ends[:-1]
    return [(s, e, a, b) for s, e, (a, b) in zip(starts, ends, values)]


def _one_cycle_schedule(phases, total: int, anneal_strategy: str) -> Schedule:
    def phase_value(t, phase):
        s, e, a, b = phase
        den = e - s
        if not den > 0:  # an empty phase: torch would divide by zero if it were reached
            return jnp.full(t.shape, b, jnp.float32)
        num = t - np.float32(s)
        rem = np.float32(e) - t
        if anneal_strategy == "cos":
            return cosine_mix(a, b, num, rem, np.float32(den))
        # (b - a) * pct + a, written so that both ends are exact.
        return (np.float32(a) * (rem / np.float32(den))
                + np.float32(b) * (num / np.float32(den)))

    def schedule(step) -> jax.Array:
        # torch raises past total_steps; the schedule holds its final value instead.
        t = f32(jnp.minimum(as_step(step), total - 1))
        value = phase_value(t, phases[-1])
        for phase in reversed(phases[:-1]):
            value = jnp.where(t <= np.float32(phase[1]), phase_value(t, phase), value)
        return value

    return schedule


def one_cycle(total_steps: int, max_value: float, pct_start: float = 0.3,
              anneal_strategy: str = "cos", div_factor: float = 25.0,
              final_div_factor: float = 1e4, three_phase: bool = False) -> Schedule:
    r"""torch's OneCycleLR: warm up to ``max_value``, then anneal far below the start.

    With :math:`v_i = v_{max} / \text{div\_factor}` and
    :math:`v_{min} = v_i / \text{final\_div\_factor}`, the phases end at steps
    :math:`e_1 = p\,N - 1` and :math:`N - 1` (three-phase: :math:`e_1 = pN - 1`,
    :math:`e_2 = 2pN - 2`, :math:`N - 1`), and within a phase from :math:`a` to :math:`b`

    .. math::

        s(t) = b + (a - b)\,\frac{1 + \cos(\pi\,\tau)}{2}\ \text{(cos)}, \qquad
        s(t) = a + (b - a)\,\tau\ \text{(linear)}, \qquad
        \tau = \frac{t - e_{k-1}}{e_k - e_{k-1}},

    going :math:`v_i \to v_{max} \to v_{min}` (three-phase:
    :math:`v_i \to v_{max} \to v_i \to v_{min}`). A step belongs to the first phase whose
    end it does not exceed, as in torch. torch raises once stepped past ``total_steps``;
    this schedule holds :math:`v_{min}` from step ``total_steps - 1`` on.

    Args:
      total_steps: :math:`N \ge 1`, the number of optimizer steps in the cycle.
      max_value: :math:`v_{max}` (torch ``max_lr``).
      pct_start: :math:`p \in [0, 1]`, the fraction of the cycle spent warming up.
      anneal_strategy: ``'cos'`` or ``'linear'``.
      div_factor: :math:`v_{max} / v_i > 0`.
      final_div_factor: :math:`v_i / v_{min} > 0`.
      three_phase: torch's ``three_phase`` (anneal back to :math:`v_i` before the end).

    Equivalents: ``torch.optim.lr_scheduler.OneCycleLR(opt, max_lr, total_steps, pct_start,
    anneal_strategy, div_factor=div_factor, final_div_factor=final_div_factor,
    three_phase=three_phase)``; its momentum cycle is :func:`one_cycle_momentum`.

    Returns:
      A schedule: a jit-safe function mapping an int step array (any shape) to float32
        values of the same shape.

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> schedule = optxform.one_cycle(10, max_value=1.0, div_factor=10.0,
        ...                               final_div_factor=10.0)
        >>> [round(v, 3) for v in jax.jit(schedule)(jnp.arange(10)).tolist()]
        [0.1, 0.55, 1.0, 0.951, 0.814, 0.615, 0.395, 0.196, 0.059, 0.01]
    """
    total, pct = _one_cycle_checks(total_steps, pct_start, anneal_strategy)
    peak = number("max_value", max_value)
    div = check_number("div_factor", div_factor, low=0.0, low_open=True)
    final_div = check_number("final_div_factor", final_div_factor, low=0.0, low_open=True)
    initial = peak / div
    phases = _one_cycle_phases(total, pct, three_phase, initial, peak, initial / final_div)
    return _one_cycle_schedule(phases, total, anneal_strategy)


def one_cycle_momentum(total_steps: int, pct_start: float = 0.3, anneal_strategy: str = "cos",
                       base_momentum: float = 0.85, max_momentum: float = 0.95,
                       three_phase: bool = False) -> Schedule:
    r"""The momentum torch's OneCycleLR cycles against the learning rate (``cycle_momentum``).

    Same phases as :func:`one_cycle`, with values ``max_momentum -> base_momentum ->
    max_momentum`` (three-phase: ``max -> base -> max``, then held at ``max``): the momentum
    is lowest when the learning rate peaks.

    Use it for SGD's ``momentum`` or for Adam-like ``b1`` (torch sets ``betas[0]``) via
    :func:`optxform.inject_hyperparams`.

    Args:
      total_steps: the number of optimizer steps in the cycle, as given to :func:`one_cycle`.
      pct_start: the fraction of the cycle spent warming up, as given to :func:`one_cycle`.
      anneal_strategy: ``'cos'`` or ``'linear'``, as given to :func:`one_cycle`.
      base_momentum: the lowest momentum, reached when the learning rate peaks.
      max_momentum: the momentum at the start and at the end of the cycle.
      three_phase: torch's ``three_phase``, as given to :func:`one_cycle`.

    Returns:
      A schedule: a jit-safe function mapping an int step array (any shape) to float32
        values of the same shape.

    Equivalent: the ``momentum`` / ``betas[0]`` that ``torch OneCycleLR(...,
    cycle_momentum=True, base_momentum, max_momentum)`` writes into the param group.

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> schedule = optxform.one_cycle_momentum(10)
        >>> [round(v, 3) for v in jax.jit(schedule)(jnp.arange(10)).tolist()]
        [0.95, 0.9, 0.85, 0.855, 0.869, 0.889, 0.911, 0.931, 0.945, 0.95]
    """
    total, pct = _one_cycle_checks(total_steps, pct_start, anneal_strategy)
    low = number("base_momentum", base_momentum)
    high = number("max_momentum", max_momentum)
    phases = _one_cycle_phases(total, pct, three_phase, high, low, high)
    return _one_cycle_schedule(phases, total, anneal_strategy)


# --------------------------------------------------------------------------- cyclic

def _cyclic_shape(step_size_up, step_size_down, mode, gamma, scale_fn, scale_mode
                  ) -> Callable[[jax.Array], jax.Array]:
    """``step -> height in [0, 1]`` of torch CyclicLR's triangle times its scale function."""
    up = check_number("step_size_up", step_size_up, low=0.0, low_open=True)
    down = up if step_size_down is None else check_number("step_size_down", step_size_down,
                                                          low=0.0)
    if not (math.isfinite(up) and math.isfinite(down)):
        raise ValueError("Invalid step_size_up/step_size_down: they must be finite")
    if scale_fn is None:
        if mode not in _CYCLIC_MODES:
            raise ValueError(f"Invalid mode: {mode!r} (mode must be one of "
                             f"{', '.join(map(repr, _CYCLIC_MODES))})")
        rate = check_number("gamma", gamma, low=0.0)
        scale_mode = "iterations" if mode == "exp_range" else "cycle"
    elif not callable(scale_fn):
        raise ValueError(f"Invalid scale_fn: {scale_fn!r} (scale_fn must be callable)")
    elif scale_mode not in ("cycle", "iterations"):
        raise ValueError(f"Invalid scale_mode: {scale_mode!r} (scale_mode must be 'cycle' "
                         "or 'iterations')")
    total = up + down
    # Step sizes that are multiples of 1 / 2**k (2000, 7.5, 12.25, ...) are handled exactly
    # in int32 on the time axis scaled by 2**k; others fall back to float32 positions.
    dyadic = next((k for k in range(11) if (up * 2**k).is_integer()
                   and (down * 2**k).is_integer() and total * 4**k <= 2**31 - 1), None)

    def scale(cycle, t):
        x = cycle if scale_mode == "cycle" else t
        if scale_fn is not None:
            return f32(scale_fn(x))
        if mode == "triangular":
            return jnp.ones(t.shape, jnp.float32)
        if mode == "triangular2":
            return int_power(0.5, x - 1)
        return int_power(rate, x)

    def shape(step) -> jax.Array:
        t = as_step(step)
        if dyadic is not None:
            S = 2**dyadic
            U, N = int(up * S), int(total * S)        # scaled lengths (integers)
            a = t % N                                  # t mod N, then times S mod N:
            completed = (t // N) * S + (a * S) // N    # floor(t / total), exact
            r = (a * S) % N                            # S * (t mod total), exact
            rising = r <= U  # always true when step_size_down == 0 (a sawtooth)
            height = jnp.where(rising, f32(r) / np.float32(U),
                               f32(N - r) / np.float32(max(N - U, 1)))
        else:
            x = f32(t) / np.float32(total)
            completed_f = jnp.floor(x)
            frac = x - completed_f
            ratio = np.float32(up / total)
            height = jnp.where(frac <= ratio, frac / ratio,
                               (np.float32(1.0) - frac) / np.float32(1.0 - ratio))
            completed = completed_f.astype(jnp.int32)
        cycle = jnp.where(completed < 2**31 - 1, completed + 1, completed)
        return height * scale(cycle, t)

    return shape


def cyclic(base_value: float, max_value: float, step_size_up: int = 2000,
           step_size_down: int | None = None, mode: str = "triangular", gamma: float = 1.0,
           scale_fn: Callable[[jax.Array], jax.Array] | None = None,
           scale_mode: str = "cycle") -> Schedule:
    r"""torch's CyclicLR: triangular cycles between ``base_value`` and ``max_value``.

    With :math:`U` = ``step_size_up``, :math:`D` = ``step_size_down`` (default :math:`U`),
    cycle :math:`c = \lfloor t / (U + D) \rfloor + 1` and :math:`r = t \bmod (U + D)`:

    .. math::

        h(t) = \begin{cases} r / U & r \le U \\ (U + D - r) / D & r > U \end{cases},
        \qquad s(t) = v_b + (v_{max} - v_b)\, h(t)\, g,

    where the amplitude factor :math:`g` is 1 (``'triangular'``), :math:`2^{-(c-1)}`
    (``'triangular2'``, halved each cycle) or :math:`\gamma^{t}` (``'exp_range'``). A custom
    ``scale_fn(x)`` (jit-safe, on int32 arrays) replaces :math:`g`, with ``x`` the cycle
    number (``scale_mode='cycle'``) or the step (``'iterations'``), as in torch. Integer or
    dyadic (7.5, 12.25) step sizes are handled in exact int32 arithmetic, so the cycles stay
    exact at any step; other fractional sizes use float32 positions (about 1e-5 relative).

    Args:
      base_value: :math:`v_b` (torch ``base_lr``).
      max_value: :math:`v_{max}` (torch ``max_lr``).
      step_size_up: :math:`U > 0`.
      step_size_down: :math:`D \ge 0`, ``None`` for :math:`U`.
      mode: ``'triangular'``, ``'triangular2'`` or ``'exp_range'``.
      gamma: :math:`\gamma \ge 0` for ``'exp_range'``.
      scale_fn, scale_mode: torch's custom amplitude policy.

    Equivalents: ``torch.optim.lr_scheduler.CyclicLR(opt, base_lr, max_lr, step_size_up,
    step_size_down, mode, gamma)``; its momentum cycle is :func:`cyclic_momentum`.

    Returns:
      A schedule: a jit-safe function mapping an int step array (any shape) to float32
        values of the same shape.

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> schedule = optxform.cyclic(0.0, 1.0, step_size_up=2, mode="triangular2")
        >>> jax.jit(schedule)(jnp.arange(9))  # the second cycle at half the amplitude
        Array([0.  , 0.5 , 1.  , 0.5 , 0.  , 0.25, 0.5 , 0.25, 0.  ], dtype=float32)
    """
    low, high = number("base_value", base_value), number("max_value", max_value)
    shape = _cyclic_shape(step_size_up, step_size_down, mode, gamma, scale_fn, scale_mode)

    def schedule(step) -> jax.Array:
        return np.float32(low) + np.float32(high - low) * shape(step)

    return schedule


def cyclic_momentum(base_momentum: float = 0.8, max_momentum: float = 0.9,
                    step_size_up: int = 2000, step_size_down: int | None = None,
                    mode: str = "triangular", gamma: float = 1.0,
                    scale_fn: Callable[[jax.Array], jax.Array] | None = None,
                    scale_mode: str = "cycle") -> Schedule:
    r"""The momentum torch's CyclicLR cycles against the learning rate (``cycle_momentum``).

    .. math:: m(t) = m_{max} - (m_{max} - m_{b})\, h(t)\, g ,

    with :math:`h` and :math:`g` as in :func:`cyclic` (same step sizes and mode): the
    momentum is at ``max_momentum`` when the learning rate is at ``base_value``.

    Args:
      base_momentum: :math:`m_b`, the momentum when the learning rate is at ``max_value``.
      max_momentum: :math:`m_{max}`, the momentum when the learning rate is at
        ``base_value``.
      step_size_up, step_size_down, mode, gamma, scale_fn, scale_mode: as given to
        :func:`cyclic`.

    Returns:
      A schedule: a jit-safe function mapping an int step array (any shape) to float32
        values of the same shape.

    Equivalent: the ``momentum`` / ``betas[0]`` that ``torch CyclicLR(...,
    cycle_momentum=True, base_momentum, max_momentum)`` writes into the param group.

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> schedule = optxform.cyclic_momentum(0.8, 0.9, step_size_up=2)
        >>> [round(v, 3) for v in jax.jit(schedule)(jnp.arange(5)).tolist()]
        [0.9, 0.85, 0.8, 0.85, 0.9]
    """
    low, high = number("base_momentum", base_momentum), number("max_momentum", max_momentum)
    shape = _cyclic_shape(step_size_up, step_size_down, mode, gamma, scale_fn, scale_mode)

    def schedule(step) -> jax.Array:
        return np.float32(high) - np.float32(high - low) * shape(step)

    return schedule
