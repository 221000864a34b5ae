"""masked: apply a transform to a subset of the params, pass the rest through.

Params outside the mask are replaced by an empty node (:class:`MaskedNode`) before the
inner transform sees them, so the inner state holds nothing for them (no wasted moment
buffers) and ``state_dict`` shows only the params the transform acts on.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax

from optxform.core import GradientTransformation, call_update
from optxform.tree.masks import resolve_mask

__all__ = ["MaskedNode", "MaskedState", "masked"]


class MaskedNode(NamedTuple):
    """Stands in for a param outside a mask: an empty pytree node (no leaves, no state).

    It has no fields. It appears in the inner states of :func:`masked` and
    :func:`multi_transform` where a param is not selected, so no buffer is kept for that
    param (optax's ``MaskedNode``).

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> tx = optxform.masked(optxform.sgd(0.1, momentum=0.9), {"w": True, "b": False})
        >>> state = tx.init({"w": jnp.ones(2), "b": jnp.ones(1)})
        >>> state.inner_state["momentum_buffer"].trace
        {'b': MaskedNode(), 'w': Array([0., 0.], dtype=float32)}
        >>> jax.tree.leaves(optxform.MaskedNode())
        []
    """


def _is_none(x) -> bool:
    return x is None


def _is_masked_node(x) -> bool:
    return isinstance(x, MaskedNode) or x is None


def mask_tree(tree: Any, full_mask: Any) -> Any:
    """``tree`` with every leaf whose mask is False replaced by a :class:`MaskedNode`."""
    return jax.tree.map(lambda x, keep: MaskedNode() if keep is False else x,
                        tree, full_mask, is_leaf=_is_none)


def unmask_tree(masked_new: Any, original: Any) -> Any:
    """Fill the :class:`MaskedNode` holes of ``masked_new`` with the leaves of ``original``."""
    return jax.tree.map(lambda new, old: old if isinstance(new, MaskedNode) else new,
                        masked_new, original, is_leaf=_is_masked_node)


class MaskedState(NamedTuple):
    """The state of :func:`masked`.

    Attributes:
      inner_state: the inner transform's state, built for the masked params only
        (unselected params are :class:`MaskedNode` there).
    """

    inner_state: Any


def masked(tx: GradientTransformation, mask: Any | Callable[[Any], Any], *,
           mask_compatible_extra_args: bool = False) -> GradientTransformation:
    """Apply ``tx`` only to the params where ``mask`` is True; other updates pass unchanged.

    ``mask`` is a pytree of booleans with the params' structure or a prefix of it (one
    boolean for a whole sub-dict), or a function ``params -> such a tree`` (called on
    ``params`` in ``init`` and on ``params``, or ``updates`` when ``params`` is None, in
    ``update``). The mask is structural: it must be concrete booleans, not traced values.

    The inner transform sees a tree where unmasked params are :class:`MaskedNode` (empty),
    so its state covers the masked params only. Its outgoing updates replace the incoming
    ones where the mask is True; elsewhere updates are returned untouched (so
    ``masked(add_decayed_weights(wd), mask)`` decays only the masked params, and
    ``masked(freeze(), mask)`` zeroes only them). With ``mask_compatible_extra_args``,
    extra keyword arguments that are trees with the params' structure are masked too.

    Args:
      tx: the transform to apply to the selected params.
      mask: a pytree of bools with the params' structure (or a prefix of it), or a
        function of the params returning one.
      mask_compatible_extra_args: also mask extra keyword arguments of ``update`` that
        are trees with the params' structure.

    Returns:
      A :class:`GradientTransformation` whose state is a :class:`MaskedState` wrapping
        ``tx``'s state for the selected params.

    torch equivalent: putting the selected params in their own ``param_group``
    (e.g. ``{'params': biases, 'weight_decay': 0.0}``). Equivalent: ``optax.masked``.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.masked(optxform.add_decayed_weights(0.5), {"w": True, "b": False})
        >>> params = {"w": jnp.ones(2), "b": jnp.ones(1)}
        >>> updates, _ = tx.update({"w": jnp.zeros(2), "b": jnp.zeros(1)},
        ...                        tx.init(params), params)
        >>> updates
        {'b': Array([0.], dtype=float32), 'w': Array([0.5, 0.5], dtype=float32)}
    """

    def full_mask(tree):
        return resolve_mask(mask, tree, "masked: the mask")

    def mask_extra(extra, the_mask, reference):
        if not mask_compatible_extra_args:
            return extra
        ref_def = jax.tree.structure(reference, is_leaf=_is_none)
        return {name: mask_tree(value, the_mask)
                if jax.tree.structure(value, is_leaf=_is_none) == ref_def else value
                for name, value in extra.items()}

    def init(params):
        return MaskedState(inner_state=tx.init(mask_tree(params, full_mask(params))))

    def update(updates, state, params=None, **extra):
        the_mask = full_mask(params if params is not None else updates)
        masked_updates = mask_tree(updates, the_mask)
        masked_params = None if params is None else mask_tree(params, the_mask)
        new_updates, inner_state = call_update(
            tx, masked_updates, state.inner_state, masked_params,
            mask_extra(extra, the_mask, updates))
        return unmask_tree(new_updates, updates), MaskedState(inner_state=inner_state)

    update.parts = (tx,)
    return GradientTransformation(init, update)
