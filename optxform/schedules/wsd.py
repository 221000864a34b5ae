"""Warm-up, stable, decay (WSD): a linear warm-up, a constant plateau, a short cool-down."""

from __future__ import annotations

from fractions import Fraction
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from optxform.core import Schedule
from optxform.schedules.numerics import (as_step, check_int, check_number, cosine_mix, f32,
                                         number)

__all__ = ["wsd_schedule"]

DecayType = Literal["1-sqrt", "linear", "cosine", "1-square"]
_DECAY_TYPES = ("1-sqrt", "linear", "cosine", "1-square")
_INT32_MAX = 2**31 - 1


def _cosine_cooldown(k: jax.Array, D: int, cycles: float, alpha: float) -> jax.Array:
    r"""``(1 - alpha) * (1 + cos(2 pi cycles k / D)) / 2 + alpha`` for ``0 <= k < D``.

    ``2 * cycles`` is a binary fraction ``p / q``; while ``2 q D`` fits in int32 the phase
    ``pi p k / (q D)`` is reduced modulo ``2 pi`` on integers (exactly) and the value taken
    from :func:`cosine_mix`, which keeps full precision near the bottom of each cycle.
    Otherwise the phase is a float32 product.
    """
    p, q = Fraction(2.0 * cycles).as_integer_ratio()
    if 2 * q * D <= _INT32_MAX and p * D <= _INT32_MAX:
        den = q * D
        num = (k * p) % (2 * den)
        num = jnp.where(num > den, 2 * den - num, num)
        return cosine_mix(1.0, alpha, num, den - num, np.float32(den))
    phase = f32(k) / np.float32(D) * np.float32(2.0 * cycles)
    c = np.float32(0.5) * (np.float32(1.0) + jnp.cos(np.float32(np.pi) * phase))
    return np.float32(1.0 - alpha) * c + np.float32(alpha)


def wsd_schedule(peak_value: float, warmup_steps: int, stable_steps: int, decay_steps: int,
                 alpha: float = 0.0, num_cycles: float = 0.5,
                 decay_type: DecayType = "1-sqrt") -> Schedule:
    r"""Warm-up, stable, decay: the schedule of MiniCPM and of "Scaling Laws and
    Compute-Optimal Training Beyond Fixed Training Durations" (Hägele et al. 2024).

    With :math:`W, S, D` the three phase lengths, :math:`v` the peak value,
    :math:`k = t - W - S` and :math:`x = k / D`:

    .. math::

        s(t) = v \cdot \begin{cases}
          t / \max(1, W) & t < W \\
          1 & W \le t < W + S \\
          1 - \sqrt{x} & W + S \le t < W + S + D, \ \texttt{"1-sqrt"} \\
          1 - x & \quad\texttt{"linear"} \\
          1 - x^2 & \quad\texttt{"1-square"} \\
          (1 - \alpha)\,\tfrac{1}{2}\bigl(1 + \cos(2\pi c\, x)\bigr) + \alpha
            & \quad\texttt{"cosine"} \\
          \alpha & t \ge W + S + D
        \end{cases}

    The reference's convention is kept: only the cosine cool-down decays towards
    :math:`\alpha v`; the other shapes decay towards 0 (their last value is
    :math:`v / (2D)` for ``"1-sqrt"``) and the schedule then holds :math:`\alpha v`. The
    warm-up starts at 0 on the first step. ``1 - sqrt(x)`` and ``1 - x**2`` are computed as
    :math:`(1 - x)/(1 + \sqrt{x})` and :math:`(1 - x)(1 + x)` with :math:`1 - x` from
    integers, so the end of the cool-down keeps full float32 precision.

    Args:
      peak_value: :math:`v`, the value of the stable phase (the optimizer's base lr).
      warmup_steps: :math:`W \ge 0` (reference ``num_warmup_steps``).
      stable_steps: :math:`S \ge 0` (reference ``num_stable_steps``).
      decay_steps: :math:`D \ge 0` (reference ``num_decay_steps``).
      alpha: :math:`\alpha \ge 0`, the final value as a fraction of ``peak_value``
        (reference ``min_lr_ratio``; the floor of the cosine cool-down).
      num_cycles: :math:`c \ge 0`, cosine cycles over the cool-down (``0.5``: one half
        cosine from 1 down to :math:`\alpha`); read only by ``"cosine"``.
      decay_type: the cool-down's shape, ``"1-sqrt"`` (the default), ``"linear"``,
        ``"cosine"`` or ``"1-square"`` (reference ``cooldown_type``).

    Returns:
      A schedule ``step -> value`` (float32), jit-safe, for any learning rate argument.

    Equivalents: pytorch-optimizer's ``get_wsd_schedule(optimizer, num_warmup_steps,
    num_stable_steps, num_decay_steps, min_lr_ratio, num_cycles, cooldown_type)`` on an
    optimizer whose lr is ``peak_value`` (within 1e-6 relative at every step); optax has
    none (``optax.join_schedules`` of three pieces comes close).

    Example::

        >>> import optxform
        >>> s = optxform.wsd_schedule(1.0, warmup_steps=2, stable_steps=2, decay_steps=4,
        ...                           decay_type="linear", alpha=0.1)
        >>> [round(float(s(t)), 3) for t in range(9)]
        [0.0, 0.5, 1.0, 1.0, 1.0, 0.75, 0.5, 0.25, 0.1]
    """
    v = number("peak_value", peak_value)
    W = check_int("warmup_steps", warmup_steps)
    S = check_int("stable_steps", stable_steps)
    D = check_int("decay_steps", decay_steps)
    if W + S + D > _INT32_MAX:
        raise ValueError(f"Invalid decay_steps: {decay_steps!r} (warmup_steps + stable_steps "
                         "+ decay_steps must fit in int32)")
    a = check_number("alpha", alpha, low=0.0)
    cycles = check_number("num_cycles", num_cycles, low=0.0)
    if not np.isfinite(a) or not np.isfinite(cycles):
        raise ValueError(f"Invalid alpha or num_cycles: {alpha!r}, {num_cycles!r} "
                         "(both must be finite)")
    if decay_type not in _DECAY_TYPES:
        raise ValueError(f"Invalid decay_type: {decay_type!r} (decay_type must be one of "
                         f"{', '.join(map(repr, _DECAY_TYPES))})")
    den = np.float32(max(D, 1))

    def cooldown(k: jax.Array) -> jax.Array:
        left = f32(D - k) / den  # 1 - x, exact from integers
        x = f32(k) / den
        if decay_type == "linear":
            return left
        if decay_type == "1-sqrt":
            return left / (np.float32(1.0) + jnp.sqrt(x))
        if decay_type == "1-square":
            return left * (np.float32(1.0) + x)
        return _cosine_cooldown(k, max(D, 1), cycles, a)

    def schedule(step) -> jax.Array:
        t = as_step(step)
        k = jnp.clip(t - (W + S), 0, max(D - 1, 0))
        warm = f32(t) / np.float32(max(1, W))
        multiplier = jnp.where(
            t < W, warm, jnp.where(t < W + S, np.float32(1.0),
                                   jnp.where(t < W + S + D, cooldown(k), np.float32(a))))
        return np.float32(v) * multiplier

    return schedule
