"""Weight decay: adding ``weight_decay * params`` to the updates."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from optxform import tree as otu
from optxform.core import EmptyState, GradientTransformation
from optxform.core.validation import check_non_negative
from optxform.core.trees import require_params

__all__ = ["add_decayed_weights", "resolve_mask"]


def resolve_mask(mask: Any, params: Any) -> Any:
    """A mask (a bool pytree, or a function ``params -> bool pytree``) as a bool pytree."""
    return mask(params) if callable(mask) else mask


def add_decayed_weights(weight_decay=0.0, mask: Any | Callable = None) -> GradientTransformation:
    """``u <- u + weight_decay * params`` where ``mask`` is True (everywhere without a mask).

    Before the moment estimates this is torch's coupled L2 penalty (``Adam(weight_decay=)``,
    ``SGD(weight_decay=)``); after them and before the learning rate it is decoupled decay
    (``AdamW``). ``mask`` is a pytree of bools matching params (or a prefix of it), or a
    function of params returning one. Equivalent: ``optax.add_decayed_weights``.
    """
    check_non_negative("weight_decay", weight_decay)

    def init(params):
        del params
        return EmptyState()

    def update(updates, state, params=None, **extra):
        del extra
        require_params(params, updates, "add_decayed_weights")

        def decay(u, p):
            return u + jnp.asarray(weight_decay).astype(u.dtype) * p.astype(u.dtype)

        if mask is None:
            return otu.tree_map(decay, updates, params), state
        mask_tree = resolve_mask(mask, params)
        full_mask = jax.tree_util.tree_map(
            lambda m, sub: jax.tree.map(lambda _: m, sub), mask_tree, params,
            is_leaf=lambda x: isinstance(x, bool) or x is None)
        new_updates = otu.tree_map(lambda u, p, m: decay(u, p) if m else u,
                                   updates, params, full_mask)
        return new_updates, state

    return GradientTransformation(init, update)
