"""How a params tree divides for the packed-params layouts: trained, frozen, static.

A params tree handed to :class:`optxform.TrainState` or :func:`optxform.pack_model` may
hold more than float arrays: an equinox model carries its activation functions and any
integer arrays as leaves. The leaves are sorted by equinox's filter semantics: inexact
(floating or complex) arrays are trained and packed into one buffer per dtype; other arrays
(integers, booleans) are kept as they are, frozen; everything else (functions, Python
numbers) is static and lives in the pytree's aux data. :class:`ParamSplit` records the
division (hashable, no arrays), :func:`split_params` makes it and :meth:`ParamSplit.join`
puts the tree back together.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optxform.fused.layout import SOLO_SIZE, PackedLayout

__all__ = ["ParamSplit", "split_params"]


def _kind(leaf: Any) -> str:
    if isinstance(leaf, (jax.Array, np.ndarray)):
        return "train" if jnp.issubdtype(leaf.dtype, jnp.inexact) else "frozen"
    return "static"


class ParamSplit:
    """How the params' leaves divide: trained (inexact arrays), frozen arrays, static rest.

    Hashable: it is part of pytree aux data, so it must compare equal across steps for
    ``jit``'s cache. Static leaves compare by identity (they are kept alive here).
    ``layout`` is the :class:`PackedLayout` of the trained leaves, or ``None`` where they
    stay a tree.
    """

    def __init__(self, treedef: Any, kinds: tuple[str, ...], statics: tuple,
                 layout: PackedLayout | None) -> None:
        self.treedef, self.kinds, self.statics, self.layout = treedef, kinds, statics, layout

    def _key(self) -> tuple:
        return (self.treedef, self.kinds, tuple(map(id, self.statics)), self.layout)

    def __hash__(self) -> int:
        return hash(self._key())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ParamSplit) and self._key() == other._key()

    def trained_tree(self, trained: list) -> Any:
        """The params tree with the given trained leaves and ``None`` elsewhere."""
        leaves = iter(trained)
        return jax.tree.unflatten(self.treedef, [next(leaves) if k == "train" else None
                                                 for k in self.kinds])

    def pack(self, tree: Any) -> Any:
        """A tree like the params (grads, or new params; ``None`` or anything at untrained
        leaves) as the trained part: packed buffers, or the tree where nothing is packed."""
        leaves = jax.tree.leaves(tree)
        if len(leaves) == len(self.kinds):
            leaves = [x for x, k in zip(leaves, self.kinds) if k == "train"]
        trained = self.trained_tree(leaves)
        return trained if self.layout is None else self.layout.pack(trained)

    def join(self, trained: Any, frozen: tuple, offsets: Any = None) -> Any:
        """The params tree from its parts (inside ``jit``: slices of the packed buffers,
        at run-time ``offsets`` where given); the inverse of :func:`split_params`."""
        if self.layout is not None:
            trained = self.layout.unpack(trained, offsets)
        pick = {"train": iter(jax.tree.leaves(trained)), "frozen": iter(frozen),
                "static": iter(self.statics)}
        return jax.tree.unflatten(self.treedef, [next(pick[k]) for k in self.kinds])

    def arrays_only(self, params: Any) -> Any:
        """The trained and frozen leaves of ``params``; ``None`` at static leaves."""
        leaves = jax.tree.leaves(params)
        return jax.tree.unflatten(self.treedef, [None if k == "static" else x
                                                 for x, k in zip(leaves, self.kinds)])


def split_params(params: Any, packed: bool = True, labels: Any = None,
                 solo_size: int | None = SOLO_SIZE,
                 keep_shapes: bool = False) -> tuple[Any, tuple, ParamSplit]:
    """``params`` as ``(trained, frozen, split)``: the trained leaves packed (or as a tree
    with ``None`` elsewhere, ``packed=False``), the frozen arrays, and the division.

    ``labels``, ``solo_size`` and ``keep_shapes`` are those of :meth:`PackedLayout.of`.
    """
    leaves, treedef = jax.tree.flatten(params)
    kinds = tuple(_kind(x) for x in leaves)
    frozen = tuple(x for x, k in zip(leaves, kinds) if k == "frozen")
    statics = tuple(x for x, k in zip(leaves, kinds) if k == "static")
    as_tree = ParamSplit(treedef, kinds, statics, None)
    trained = as_tree.trained_tree([x for x, k in zip(leaves, kinds) if k == "train"])
    if not packed:
        return trained, frozen, as_tree
    layout = PackedLayout.of(trained, labels, solo_size, keep_shapes)
    return layout.pack(trained), frozen, ParamSplit(treedef, kinds, statics, layout)
