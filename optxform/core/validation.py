"""Construction-time checks of hyperparameters.

Every check names optxform's own argument in its ``ValueError``. Values that are traced
(e.g. hyperparameters injected by ``inject_hyperparams`` inside ``jit``) or schedules
(callables) cannot be checked at construction and are let through.
"""

from __future__ import annotations

from typing import Any, Iterable

import jax
import jax.numpy as jnp
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


def check_hyperparameter(name: str, value: Any, schedule: bool = False) -> None:
    """A hyperparameter is a finite real scalar: a Python or numpy number, a 0-d array, or a
    traced value; with ``schedule`` also a callable ``step -> value``.

    Rejected with a ``ValueError`` naming ``name``: booleans, ``None``, strings,
    sequences, arrays with more than one element, complex numbers, NaN and infinities.
    """
    if callable(value):
        if schedule:
            return
        _fail(name, value, "a number (schedules are accepted for learning rates only)")
    if isinstance(value, jax.core.Tracer):
        if jnp.shape(value) != ():
            _fail(name, value, "a scalar")
        return
    if isinstance(value, (bool, np.bool_)) or value is None or isinstance(value, (str, bytes)):
        _fail(name, value, "a real number")
    try:
        array = np.asarray(value)
    except Exception:  # noqa: BLE001 - anything numpy cannot read is not a number
        _fail(name, value, "a real number")
    if array.shape != ():
        _fail(name, value, "a scalar, not a sequence or an array of shape "
                           f"{tuple(array.shape)}")
    if array.dtype == np.bool_ or not (np.issubdtype(array.dtype, np.integer)
                                       or np.issubdtype(array.dtype, np.floating)):
        _fail(name, value, "a real number")
    if not np.isfinite(array):
        _fail(name, value, "finite")


def check_dtype(name: str, value: Any) -> None:
    """``None`` or a floating-point dtype (``jnp.bfloat16``, ``"float32"``, ...)."""
    if value is None:
        return
    if isinstance(value, (bool, np.bool_)):
        _fail(name, value, "None or a floating-point dtype")
    try:
        dtype = jnp.dtype(value)
    except TypeError:
        _fail(name, value, "None or a floating-point dtype")
    if not jnp.issubdtype(dtype, jnp.floating):
        _fail(name, value, "None or a floating-point dtype")


def check_flag(name: str, value: Any) -> None:
    """A structural option (``nesterov``, ``amsgrad``, ``maximize``) is a Python or numpy bool."""
    if not isinstance(value, (bool, np.bool_)):
        _fail(name, value, "True or False")
