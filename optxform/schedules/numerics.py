"""Shared arithmetic of the schedules: steps, exact integer powers, accurate half-cosines.

Schedules return float32, yet they must agree with torch's float64 schedulers to about one
part in a million over hundreds of steps. Three habits make that possible:

* **integer bookkeeping stays integer**: cycle positions, restarts and boundaries are
  computed on the int32 step (``//``, ``%``, ``searchsorted``), never by dividing floats, so
  periodic schedules are exact at any step up to the int32 maximum;
* **powers come from tables**: ``gamma ** k`` is a product of at most four entries of
  tables ``gamma ** (m * 256**c)`` computed in float64 and rounded once, instead of
  ``exp(k * log(gamma32))`` whose error grows with ``k`` (0.95 ** 300 in plain float32 is
  off by 1e-5 relative);
* **cosines are evaluated where they are well conditioned**: ``(1 + cos(pi u)) / 2`` is
  ``cos(pi u / 2) ** 2`` for ``u <= 1/2`` and ``sin(pi (1 - u) / 2) ** 2`` beyond, with
  ``1 - u`` computed exactly from integers, so the values near the bottom of a cosine
  (where ``1 + cos`` cancels) keep full relative precision.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optxform.core.counters import INT32_MAX

__all__: list[str] = []  # internal helpers

_INT32_MAX = int(INT32_MAX)


def as_step(step: Any) -> jax.Array:
    """``step`` as an int32 array, clipped to ``[0, int32 max]`` (floats are floored)."""
    step = jnp.asarray(step)
    if jnp.issubdtype(step.dtype, jnp.floating):
        step = jnp.clip(jnp.floor(step), 0.0, float(_INT32_MAX))
        return jnp.where(step >= float(_INT32_MAX), _INT32_MAX,
                         step.astype(jnp.int32)).astype(jnp.int32)
    if step.dtype == jnp.bool_ or not jnp.issubdtype(step.dtype, jnp.integer):
        raise TypeError(f"a schedule needs an integer step, got dtype {step.dtype}")
    if step.dtype.itemsize > 4 or step.dtype == jnp.uint32:
        step = jnp.clip(step, 0, _INT32_MAX)
    return jnp.maximum(step.astype(jnp.int32), 0)


def f32(x: Any) -> jax.Array:
    return jnp.asarray(x).astype(jnp.float32)


def number(name: str, value: Any) -> float:
    """A schedule argument as a Python float; it must be concrete (not traced)."""
    if isinstance(value, jax.core.Tracer):
        raise ValueError(f"Invalid {name}: a traced value; schedule arguments must be "
                         "concrete numbers (build the schedule outside jit)")
    try:
        array = np.asarray(value)
    except Exception:  # noqa: BLE001
        array = None
    if array is None or array.shape != () or not np.issubdtype(array.dtype, np.number) \
            or isinstance(value, bool):
        raise ValueError(f"Invalid {name}: {value!r} ({name} must be a number)")
    return float(array)


def check_number(name: str, value: Any, *, low: float | None = None,
                 high: float | None = None, low_open: bool = False,
                 high_open: bool = False) -> float:
    """``number(name, value)`` checked against an interval; ValueError names ``name``."""
    x = number(name, value)
    bad = math.isnan(x)
    if low is not None:
        bad = bad or (x <= low if low_open else x < low)
    if high is not None:
        bad = bad or (x >= high if high_open else x > high)
    if bad:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        interval = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
        raise ValueError(f"Invalid {name}: {value!r} ({name} must be in {interval})")
    return x


def check_int(name: str, value: Any, minimum: int = 0) -> int:
    """An integer argument (a Python/numpy int, or a float with an integral value)."""
    if isinstance(value, bool) or isinstance(value, jax.core.Tracer):
        raise ValueError(f"Invalid {name}: {value!r} ({name} must be an integer)")
    x = number(name, value)
    if not math.isfinite(x) or x != math.floor(x):
        raise ValueError(f"Invalid {name}: {value!r} ({name} must be an integer)")
    if x < minimum:
        raise ValueError(f"Invalid {name}: {value!r} ({name} must be an integer >= {minimum})")
    if x > _INT32_MAX:
        raise ValueError(f"Invalid {name}: {value!r} ({name} must fit in int32)")
    return int(x)


@functools.lru_cache(maxsize=256)
def _power_tables(base: float, scale: float) -> tuple[np.ndarray, ...]:
    """``base ** (m * 256**c)`` for ``m < 256``, ``c < 4`` (the first table times ``scale``):
    float64 values, each rounded once to float32."""
    tables = []
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        for c in range(4):
            exponents = np.arange(256, dtype=np.float64) * float(256 ** c)
            table = np.power(np.float64(base), exponents)
            if c == 0:
                table = np.zeros_like(table) if scale == 0 else table * np.float64(scale)
            tables.append(table.astype(np.float32))
    return tuple(tables)


def int_power(base: float, exponent: jax.Array, scale: float = 1.0) -> jax.Array:
    """``scale * base ** exponent`` (float32) for a non-negative int32 array ``exponent``.

    A product of at most four table entries, each rounded once from float64: the result is
    within about two float32 ulps of the exact value for every exponent (half an ulp for
    exponents below 256). ``base`` and ``scale`` are Python numbers.
    """
    k = jnp.asarray(exponent, jnp.int32)
    tables = _power_tables(float(base), float(scale))
    result = jnp.asarray(tables[0])[k & 255]
    for c in range(1, 4):
        digit = jnp.right_shift(k, 8 * c) & 255
        result = result * jnp.asarray(tables[c])[digit]
    return result


def half_cosine(num: jax.Array, rem: jax.Array, den: jax.Array) -> jax.Array:
    """``(1 + cos(pi * num / den)) / 2`` for ``num + rem == den``, ``0 <= num <= den``.

    Pass ``rem = den - num`` computed exactly (from integers where possible): the value is
    ``cos(pi num / 2den) ** 2`` on the first half and ``sin(pi rem / 2den) ** 2`` on the
    second, both with arguments in ``[0, pi/4]``, so it keeps full relative precision even
    where it is tiny (the bottom of a cosine annealing).
    """
    num, rem, den = f32(num), f32(rem), f32(den)
    half_pi = np.float32(np.pi / 2)
    first = jnp.cos(half_pi * (num / den))
    second = jnp.sin(half_pi * (rem / den))
    return jnp.where(num <= rem, first * first, second * second)


def check_increasing_ints(name: str, values: Any, *, allow_repeats: bool = False,
                          allow_empty: bool = False) -> list[int]:
    """A list of non-negative int boundaries, increasing (non-decreasing with repeats)."""
    try:
        items = list(values)
    except TypeError:
        raise ValueError(f"Invalid {name}: {values!r} ({name} must be a sequence of "
                         "integers)") from None
    if not items and not allow_empty:
        raise ValueError(f"Invalid {name}: it is empty ({name} needs at least one entry)")
    ints = [check_int(name, v) for v in items]
    if allow_repeats:
        ints = sorted(ints)
    for a, b in zip(ints, ints[1:]):
        if b <= a and not (allow_repeats and a == b):
            raise ValueError(f"Invalid {name}: {items!r} ({name} must be increasing)")
    return ints


def cosine_mix(a: float, b: float, num, rem, den, exponent: float = 1.0) -> jax.Array:
    """``a * w + b * (1 - w)`` with ``w = half_cosine(num, rem, den) ** exponent``.

    Written as two non-negative terms (with ``1 - w`` itself a half-cosine when
    ``exponent == 1``), so neither end loses precision to cancellation: ``b + (a - b) w``
    would leave the error of ``b`` on a tiny ``a`` at ``w = 1``.
    """
    w = half_cosine(num, rem, den)
    if exponent == 1.0:
        complement = half_cosine(rem, num, den)
    else:
        w = jnp.power(w, np.float32(exponent))
        complement = np.float32(1.0) - w
    return np.float32(a) * w + np.float32(b) * complement


def power_mix(a: float, b: float, done, left, den, power: float = 1.0) -> jax.Array:
    """``a * w + b * (1 - w)`` with ``w = (left / den) ** power`` and ``done + left == den``.

    ``1 - w`` is ``done / den`` for ``power == 1`` and ``-expm1(power * log1p(-done / den))``
    otherwise, accurate at both ends (a warm-up from 0 keeps full precision at step 1).
    """
    done, left, den = f32(done), f32(left), f32(den)
    if power == 1.0:
        return np.float32(a) * (left / den) + np.float32(b) * (done / den)
    if power == 0.0:
        return jnp.full(jnp.shape(done), a, jnp.float32)
    p = np.float32(power)
    w = jnp.power(left / den, p)
    complement = -jnp.expm1(p * jnp.log1p(-(done / den)))
    return np.float32(a) * w + np.float32(b) * complement
