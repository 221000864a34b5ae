"""The members every torch-style alias starts with, so that each alias is one recipe line."""

from __future__ import annotations

from typing import Any

from optxform.core import GradientTransformation
from optxform.transforms.scaling import scale
from optxform.transforms.weight_decay import add_decayed_weights

__all__: list[str] = []  # internal helpers for the aliases


def is_python_zero(value: Any) -> bool:
    """True only for the Python number 0 (not a bool, not an array that may be injected).

    Aliases leave out a member whose argument is the number 0 (so the default chains are as
    short as torch's arithmetic); an array argument keeps the member, so that the state's
    structure does not depend on a value ``inject_hyperparams`` may change.
    """
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0


def gradient_prelude(maximize: bool, weight_decay: Any = 0.0,
                     mask: Any = None) -> list[GradientTransformation]:
    """torch's first two operations on a gradient, as chain members.

    ``maximize`` negates the gradient (``scale(-1.)``), then coupled L2 decay adds
    ``weight_decay * params`` (``add_decayed_weights``, left out for the number 0).
    """
    members = [scale(-1.0)] if maximize else []
    if not is_python_zero(weight_decay):
        members.append(add_decayed_weights(weight_decay, mask))
    return members
