"""Construction-time checks of hyperparameters.

Every check names optxform's own argument in its ``ValueError``. Values that are traced
(e.g. hyperparameters injected by ``inject_hyperparams`` inside ``jit``) or schedules
(callables) cannot be checked at construction and are let through.
"""

from __future__ import annotations

from typing import Any, Iterable

import jax
import numpy as np


def concrete_value(value: Any) -> float | None:
    """The value as a float if it is a concrete scalar, else ``None`` (tracer or schedule)."""
    if callable(value) or value is None or isinstance(value, jax.core.Tracer):
        return None
    try:
        array = np.asarray(value)
    except Exception:  # noqa: BLE001 - anything we cannot read is left unchecked
        return None
    if array.shape != () or not np.issubdtype(array.dtype, np.number):
        return None
    return float(array)


def _fail(name: str, value: Any, requirement: str):
    raise ValueError(f"Invalid {name}: {value!r} ({name} must be {requirement})")


def check_non_negative(name: str, value: Any) -> None:
    x = concrete_value(value)
    if x is not None and not x >= 0.0:
        _fail(name, value, ">= 0")


def check_positive(name: str, value: Any) -> None:
    x = concrete_value(value)
    if x is not None and not x > 0.0:
        _fail(name, value, "> 0")


def check_range(name: str, value: Any, low: float, high: float, *,
                low_closed: bool = True, high_closed: bool = False) -> None:
    """Check ``low <= value < high`` (by default); the brackets are set by the flags."""
    x = concrete_value(value)
    if x is None:
        return
    ok_low = x >= low if low_closed else x > low
    ok_high = x <= high if high_closed else x < high
    if not (ok_low and ok_high):
        interval = f"{'[' if low_closed else '('}{low}, {high}{']' if high_closed else ')'}"
        _fail(name, value, f"in {interval}")


def check_one_of(name: str, value: Any, choices: Iterable[Any]) -> None:
    choices = tuple(choices)
    if value not in choices:
        _fail(name, value, "one of " + ", ".join(repr(c) for c in choices))


def check_integer(name: str, value: Any, minimum: int | None = None) -> None:
    if isinstance(value, jax.core.Tracer):
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        _fail(name, value, "an integer")
    if minimum is not None and value < minimum:
        _fail(name, value, f"an integer >= {minimum}")


def check_learning_rate(value: Any, name: str = "learning_rate") -> None:
    """A learning rate is a non-negative number, a scalar array, or a schedule."""
    if callable(value):
        return
    check_non_negative(name, value)
