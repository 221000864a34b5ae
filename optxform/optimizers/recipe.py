"""The members every torch-style alias starts with, and the named chain aliases return.

An alias is a :func:`~optxform.named_chain` whose names are roles (``"sign"``,
``"decay"``, ``"adam"``, ``"lr"``, ``"momentum_buffer"``, ...), so a state path reads
``"adam.mu/layer1/w"``. Role names are never argument names, so ``tree_get(state,
"learning_rate")`` finds an injected hyperparameter, not a chain member. A member whose value is neutral (weight decay 0, no maximize) stays
in the chain: changing a scalar hyperparameter never changes the state's structure, and a
checkpoint loads after it. Only options that add buffers (momentum, amsgrad, centered)
add members or fields.
"""

from __future__ import annotations

from typing import Any

from optxform.core import GradientTransformation, named_chain
from optxform.core.validation import check_flag
from optxform.transforms.scaling import scale
from optxform.transforms.weight_decay import add_decayed_weights, add_decoupled_weight_decay

__all__: list[str] = []  # internal helpers for the aliases

Member = tuple[str, GradientTransformation]


def gradient_prelude(maximize: bool, weight_decay: Any = None,
                     mask: Any = None) -> list[Member]:
    """torch's first two operations on a gradient, as named chain members.

    ``"sign"`` multiplies by -1 with ``maximize`` (or by 1: the member stays either way),
    then, unless ``weight_decay`` is ``None``, ``"decay"`` adds ``weight_decay * params``
    (coupled L2; the number 0 leaves the updates as they are).
    """
    check_flag("maximize", maximize)
    members = [("sign", scale(-1.0 if maximize else 1.0))]
    if weight_decay is not None:
        members.append(("decay", add_decayed_weights(weight_decay, mask)))
    return members


def split_weight_decay(weight_decay: Any, learning_rate: Any, weight_decouple: bool,
                       fixed_decay: bool) -> tuple[list[Member], list[Member]]:
    """``pytorch-optimizer``'s ``weight_decouple`` / ``fixed_decay`` convention as members.

    Returns the members to put before the update rule and those to put after the learning
    rate: coupled L2 ``g + wd * theta`` (before), or decoupled ``theta *= 1 - wd * lr``
    (after; ``theta *= 1 - wd`` with ``fixed_decay``, which coupled decay ignores). The
    ``"decay"`` member stays at weight decay 0 (neutral).
    """
    check_flag("weight_decouple", weight_decouple)
    check_flag("fixed_decay", fixed_decay)
    if not weight_decouple:
        return [("decay", add_decayed_weights(weight_decay))], []
    scale_by = 1.0 if fixed_decay else learning_rate
    return [], [("decay", add_decoupled_weight_decay(weight_decay, scale_by))]


def recipe(*members: Member) -> GradientTransformation:
    """The alias: a named chain of its members (their names are the state's roles)."""
    return named_chain(*members)
