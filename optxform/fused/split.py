"""How a params tree divides for the packed-params layouts: trained, frozen, static.

A params tree handed to :class:`optxform.TrainState` or :func:`optxform.pack_model` may
hold more than float arrays: an equinox model carries its activation functions and any
integer arrays as leaves. The leaves are sorted by equinox's filter semantics: inexact
(floating or complex) arrays are trained and packed into one buffer per dtype; other arrays
(integers, booleans) are kept as they are, frozen; everything else (functions, Python
numbers) is static and lives in the pytree's aux data. :class:`ParamSplit` records the
division (hashable, no arrays), :func:`split_params` makes it and :meth:`ParamSplit.join`
puts the tree back together.

Where the offsets come from. Slices at offsets fixed at compile time are the fastest to
run, but each one makes XLA compile the kernels that consume it anew (about 20-40 ms per
leaf on a 2-core CPU). Up to :data:`STATIC_SLICES` leaves in shared buffers ``join`` uses
them; beyond, it takes the offsets out of a ``lax.cond``, so kernels of one leaf shape are
compiled once. Either way nothing but the buffers travels through ``jit``: no per-leaf
offset argument.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optxform.fused.layout import SOLO_SIZE, PackedLayout

__all__ = ["STATIC_SLICES", "ParamSplit", "split_params"]

#: Up to this many leaves cut out of shared buffers, the slices take offsets fixed at
#: compile time (each slice then costs some compile time, about 20-40 ms on a 2-core CPU,
#: and nothing at run time); beyond it the offsets are run-time values (compile time flat
#: in the number of leaves, and a fixed cost of about 0.1 ms per step).
STATIC_SLICES = 32


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

    def join(self, trained: Any, frozen: tuple) -> Any:
        """The params tree from its parts (inside ``jit``: slices of the packed buffers, at
        the offsets :func:`_opaque_offsets` gives); the inverse of :func:`split_params`."""
        if self.layout is not None:
            trained = self.layout.unpack(trained, _opaque_offsets(self.layout, trained))
        pick = {"train": iter(jax.tree.leaves(trained)), "frozen": iter(frozen),
                "static": iter(self.statics)}
        return jax.tree.unflatten(self.treedef, [next(pick[k]) for k in self.kinds])

    def arrays_only(self, params: Any) -> Any:
        """The trained and frozen leaves of ``params``; ``None`` at static leaves."""
        leaves = jax.tree.leaves(params)
        return jax.tree.unflatten(self.treedef, [None if k == "static" else x
                                                 for x, k in zip(leaves, self.kinds)])


def _opaque_offsets(layout: PackedLayout, buffers: dict[str, jax.Array]) -> Any:
    """The layout's offsets (a tree of int32 scalars) as values XLA does not fold, or
    ``None`` (offsets fixed at compile time) where at most :data:`STATIC_SLICES` leaves are
    cut out of shared buffers.

    Slices at constant offsets make every consumer kernel distinct (each has its own
    offset inside it), so XLA would compile the model's kernels once per leaf. A
    ``lax.cond`` on a run-time predicate returns the offsets from either branch: the same
    values whichever branch runs (the predicate is False only for a NaN), but unknown to
    XLA when it compiles, so kernels of one shape are shared. The offsets are made inside
    the traced function: they are no argument of ``jit`` and no leaf of any state.
    """
    probe = next((b for b in buffers.values() if jnp.size(b)), None)
    if probe is None:
        return None
    sizes = {key: size for key, _, size in layout.groups}
    if sum(slot.size < sizes[slot.group] for slot in layout.slots) <= STATIC_SLICES:
        return None
    first = jnp.ravel(probe)[0]

    def offsets() -> tuple:
        return tuple(jnp.asarray(slot.offset, jnp.int32) for slot in layout.slots)

    return jax.tree.unflatten(layout.treedef, list(jax.lax.cond(first == first, offsets,
                                                                offsets)))


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
