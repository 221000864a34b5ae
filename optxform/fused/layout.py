r"""PackedLayout: many leaves as a few flat buffers, one per dtype (and optional label).

An optimizer update is elementwise arithmetic plus, at most, global reductions; the leaf
boundaries do not matter to the math. They matter a lot to the speed: XLA emits at least
one kernel per leaf and per step, so a model with a thousand small leaves pays a thousand
kernel launches (and, on CPU, a compile time that grows with the number of distinct
kernels). A :class:`PackedLayout` groups the leaves of a tree by dtype (and by a
user-given label, for param groups), and lays each group out end to end in one 1-D buffer::

    params = {"b": f32[3], "w": f32[2, 2], "e": bf16[4], "emb": f32[50000, 512]}
    packed = layout.pack(params)
        ->  {"bfloat16": bf16[4], "float32": f32[7], "float32@emb": f32[25600000]}

Leaves of at least ``SOLO_SIZE`` elements keep a buffer of their own (packing them would
copy megabytes to save one kernel launch); the many small leaves share one buffer.

``packed`` is an ordinary dict of arrays, so *any* elementwise transform (Adam, SGD,
RMSprop, weight decay, global-norm clipping, schedules, ...) runs on it unchanged, as a
handful of kernels instead of thousands. Two ways to use it:

* :func:`optxform.packed` (in ``wrapper.py``) wraps a transform so that params, updates and
  results stay trees while the state lives packed: a drop-in change of layout.
* Keep the params themselves packed across steps (the fastest layout): pack them once,
  unpack inside the jitted step where the model needs the tree (``layout.unpack`` slices;
  its gradient is the packed gradient, one concatenation), and update the packed buffers
  directly. See docs/performance.md for a full step.

Offsets passed at run time. ``unpack(packed)`` slices at offsets that XLA sees as
constants, and XLA:CPU compiles one kernel per distinct slice (about 10 ms each), so
unpacking 1,000 leaves costs seconds of compile time. ``unpack(packed, offsets)`` with
``offsets = layout.offsets()`` passed as a *jit argument* uses ``dynamic_slice`` at run-time
offsets instead: all leaves of one shape share one kernel and the compile time stays nearly
flat in the number of leaves. The results are the same.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from optxform.core.trees import check_same_structure, path_to_str
from optxform.tree.masks import is_tree_function

__all__ = ["PackedLayout", "label_mask", "packed_layout"]

_SEPARATOR = "/"
_SOLO = "@"

#: Leaves with at least this many elements get a buffer of their own by default: packing
#: and unpacking them is a free reshape, while concatenating them would copy megabytes to
#: save one kernel launch (a few microseconds).
SOLO_SIZE = 1 << 16


def _dtype_name(dtype) -> str:
    return jnp.dtype(dtype).name


def _group_key(label, dtype) -> str:
    name = _dtype_name(dtype)
    return name if label is None else f"{label}{_SEPARATOR}{name}"


@dataclasses.dataclass(frozen=True)
class LeafSlot:
    """Where one leaf lives: its group buffer, start offset, shape and param dtype."""

    group: str
    offset: int
    shape: tuple[int, ...]
    dtype: Any
    keeps_shape: bool = False  # the leaf is its group's buffer, in its own shape

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


@dataclasses.dataclass(frozen=True)
class PackedLayout:
    """How the leaves of a tree map into per-group flat buffers (see the module docstring).

    Attributes:
      treedef: the tree structure (``None`` leaves, e.g. frozen params, stay ``None``).
      slots: one :class:`LeafSlot` per leaf, in flattening order.
      groups: ``(key, dtype, size)`` per buffer, sorted by key (the packed dict's order).

    A layout is hashable and holds no arrays, so it can be closed over by jitted code.
    Build one with :func:`packed_layout` or ``PackedLayout.of(tree)``.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> params = {"w": jnp.ones((2, 2)), "b": jnp.zeros(2)}
        >>> layout = optxform.PackedLayout.of(params)
        >>> layout.groups
        (('float32', dtype('float32'), 6),)
        >>> layout.pack(params)
        {'float32': Array([0., 0., 1., 1., 1., 1.], dtype=float32)}
        >>> layout.unpack(layout.pack(params), layout.offsets())["w"].shape
        (2, 2)
    """

    treedef: Any
    slots: tuple[LeafSlot, ...]
    groups: tuple[tuple[str, Any, int], ...]

    # --- construction ------------------------------------------------------------------

    @classmethod
    def of(cls, tree: Any, labels: Any = None, solo_size: int | None = SOLO_SIZE,
           keep_shapes: bool = False) -> "PackedLayout":
        """The layout of ``tree`` (arrays or ``jax.ShapeDtypeStruct``s).

        ``labels``: ``None`` (group by dtype only), a tree of labels matching ``tree`` (or a
        prefix of it), or a function ``tree -> such a tree``. Leaves with the same label and
        dtype share a buffer, keyed ``"<label>/<dtype>"`` (labels must not contain ``/``
        or ``@``). ``solo_size``: leaves with at least this many elements keep a buffer of
        their own, keyed ``"<dtype>@<path>"`` (``None``: pack every leaf).
        ``keep_shapes``: every leaf is its own buffer, in its own shape (for transforms
        whose math depends on each leaf's shape; :func:`optxform.packed` decides).
        """
        path_leaves, treedef = jax.tree_util.tree_flatten_with_path(tree)
        flat = [leaf for _, leaf in path_leaves]
        if labels is None:
            leaf_labels = [None] * len(flat)
        else:
            label_tree = labels(tree) if is_tree_function(labels) else labels
            leaf_labels = _broadcast_labels(label_tree, tree)
        sizes: dict[str, int] = {}
        dtypes: dict[str, Any] = {}
        slots = []
        for (path, leaf), label in zip(path_leaves, leaf_labels):
            dtype = jnp.dtype(leaf.dtype)
            shape = tuple(int(d) for d in jnp.shape(leaf))
            key = _group_key(label, dtype)
            if keep_shapes or (solo_size is not None
                               and int(np.prod(shape, dtype=np.int64)) >= solo_size):
                key = f"{key}{_SOLO}{path_to_str(path)}"
            offset = sizes.get(key, 0)
            slot = LeafSlot(key, offset, shape, dtype, keeps_shape=keep_shapes)
            sizes[key] = offset + slot.size
            dtypes[key] = dtype
            slots.append(slot)
        groups = tuple((key, dtypes[key], sizes[key]) for key in sorted(sizes))
        return cls(treedef, tuple(slots), groups)

    # --- inspection --------------------------------------------------------------------

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(key for key, _, _ in self.groups)

    @property
    def num_leaves(self) -> int:
        return len(self.slots)

    def shape_tree(self) -> Any:
        """The tree as ``jax.ShapeDtypeStruct`` leaves (a reference for structure checks)."""
        return jax.tree.unflatten(self.treedef, [jax.ShapeDtypeStruct(s.shape, s.dtype)
                                                 for s in self.slots])

    def group_shape(self, key: str) -> tuple[int, ...]:
        """A buffer's shape: ``(size,)``, or its one leaf's shape where that is kept."""
        for slot in self.slots:
            if slot.group == key and slot.keeps_shape:
                return slot.shape
        return (dict((k, size) for k, _, size in self.groups)[key],)

    def packed_shapes(self) -> dict[str, jax.ShapeDtypeStruct]:
        return {key: jax.ShapeDtypeStruct(self.group_shape(key), dtype)
                for key, dtype, _ in self.groups}

    def matches_tree(self, tree: Any) -> bool:
        """Whether ``tree`` has this layout's structure and leaf shapes (any dtypes)."""
        if jax.tree.structure(tree) != self.treedef:
            return False
        return all(tuple(jnp.shape(x)) == s.shape
                   for x, s in zip(jax.tree.leaves(tree), self.slots))

    def matches_packed(self, value: Any) -> bool:
        """Whether ``value`` is a packed dict of this layout (any dtypes)."""
        if not isinstance(value, dict) or tuple(sorted(value)) != self.keys:
            return False
        return all(tuple(jnp.shape(value[key])) == self.group_shape(key)
                   for key, _, _ in self.groups)

    def flags_per_buffer(self, flags: Any) -> dict:
        """Per-leaf flags (a tree like the params) as one flag per buffer: a Python bool
        where all of a buffer's leaves agree, else a bool array over the buffer."""
        parts: dict[str, list] = {key: [] for key in self.keys}
        for slot, flag in zip(self.slots, jax.tree.leaves(flags)):
            parts[slot.group].append((slot.size, bool(flag)))
        out = {}
        for key, pieces in parts.items():
            values = {flag for _, flag in pieces}
            out[key] = values.pop() if len(values) == 1 else np.concatenate(
                [np.full(size, flag) for size, flag in pieces])
        return out

    # --- pack / unpack -----------------------------------------------------------------

    def pack(self, tree: Any) -> dict[str, jax.Array]:
        """The leaves of ``tree`` raveled and concatenated per group: ``{key: 1-D array}``.

        Each buffer has the dtype of its leaves in ``tree`` (so packing float32 gradients of
        bfloat16 params gives a float32 buffer); leaves of one group with different dtypes
        are concatenated in the widest of them. A structure or shape mismatch raises
        ``ValueError`` naming the first bad path.
        """
        check_same_structure(self.shape_tree(), tree, "the packed layout", "tree")
        parts: dict[str, list] = {key: [] for key in self.keys}
        for slot, leaf in zip(self.slots, jax.tree.leaves(tree)):
            leaf = jnp.asarray(leaf)
            parts[slot.group].append(leaf if slot.keeps_shape else jnp.ravel(leaf))
        out = {}
        for key, dtype, _ in self.groups:
            leaves = parts[key]
            common = _widest([x.dtype for x in leaves])
            leaves = [x.astype(common) for x in leaves]
            out[key] = leaves[0] if len(leaves) == 1 else jnp.concatenate(leaves)
        return out

    def offsets(self) -> Any:
        """Each leaf's start in its group buffer, as int32 arrays in a tree like the params.

        Pass the result to ``unpack`` *as an argument of the jitted function* (not as a
        closed-over constant): then XLA compiles one slicing kernel per distinct leaf shape
        instead of one per leaf.
        """
        return jax.tree.unflatten(self.treedef, [jnp.asarray(s.offset, jnp.int32)
                                                 for s in self.slots])

    def unpack(self, packed: dict[str, jax.Array], offsets: Any = None) -> Any:
        """The tree back from its packed buffers (the inverse of :meth:`pack`).

        Each leaf keeps its buffer's dtype (so packed bfloat16 moments unpack to bfloat16).
        With ``offsets`` (from :meth:`offsets`, passed at run time) the slices are
        ``dynamic_slice``s. Differentiable: the gradient with respect to ``packed`` is the
        packed gradient (one concatenation per group, not a sum of padded slices).
        """
        if not self.matches_packed(packed):
            raise ValueError(
                f"unpack: expected a packed dict with buffers {dict(self.packed_shapes())}, "
                f"got {jax.tree.map(jnp.shape, packed)}")
        if offsets is None:
            return _unpack_static(self, packed)
        check_same_structure(self.shape_tree(), offsets, "the packed layout", "offsets",
                             check_shapes=False)
        return _unpack_dynamic(self, packed, offsets)

    # --- states --------------------------------------------------------------------------

    def pack_state(self, state: Any) -> Any:
        """Pack every subtree of ``state`` laid out like the tree (e.g. Adam's ``mu``).

        Subtrees with this layout's structure and leaf shapes (floating or complex leaves)
        become packed dicts; everything else (counters, hyperparameters) is kept. The
        inverse of :meth:`unpack_state`.
        """
        def is_tree_like(x):
            return (jax.tree.structure(x) == self.treedef and self.matches_tree(x)
                    and all(_is_inexact(leaf) for leaf in jax.tree.leaves(x)))

        return jax.tree.map(lambda x: self.pack(x) if is_tree_like(x) else x, state,
                            is_leaf=lambda x: x is not None and is_tree_like(x))

    def unpack_state(self, state: Any) -> Any:
        """Unpack every packed dict in ``state`` into a tree; the inverse of :meth:`pack_state`."""
        return jax.tree.map(lambda x: self.unpack(x) if self.matches_packed(x) else x, state,
                            is_leaf=self.matches_packed)


def packed_layout(tree: Any, labels: Any = None,
                  solo_size: int | None = SOLO_SIZE) -> PackedLayout:
    """The :class:`PackedLayout` of ``tree``; arguments as in :meth:`PackedLayout.of`.

    Args:
      tree: a tree of arrays or ``jax.ShapeDtypeStruct``s (usually the params).
      labels: ``None`` (group by dtype only), a tree of labels matching ``tree`` (or a
        prefix of it), or a function ``tree -> such a tree``; leaves with the same label
        and dtype share a buffer keyed ``"<label>/<dtype>"``.
      solo_size: leaves with at least this many elements keep a buffer of their own
        (``None``: pack every leaf).

    Returns:
      A :class:`PackedLayout` (hashable, no arrays): ``pack`` turns a tree like ``tree``
        into ``{group key: 1-D array}`` and ``unpack`` turns it back.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> params = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
        >>> layout = optxform.packed_layout(params)
        >>> {k: v.shape for k, v in layout.pack(params).items()}
        {'float32': (9,)}
        >>> layout.unpack(layout.pack(params))["w"].shape
        (2, 3)
    """
    return PackedLayout.of(tree, labels, solo_size)


def label_mask(*labels: str) -> Callable[[dict], dict]:
    """A mask function for transforms run on packed buffers: True for the given labels.

    For ``packed(tx, labels=...)``: the buffers are keyed ``"<label>/<dtype>"`` (or
    ``"<label>/<dtype>@<path>"`` for a large leaf), so e.g.
    ``add_decayed_weights(wd, mask=label_mask("decay"))`` decays only the leaves labelled
    ``"decay"``.

    Args:
      *labels: the labels whose buffers the mask selects.

    Returns:
      A mask function ``packed dict -> {key: bool}``, True for the buffers of the given
        labels (for the ``mask`` argument of a transform inside :func:`packed`).

    Equivalent: the ``mask`` trees of optax's ``masked``/``add_decayed_weights``, for
    packed buffers; torch uses param groups.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> params = {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}
        >>> decay = optxform.add_decayed_weights(0.5, mask=optxform.label_mask("decay"))
        >>> tx = optxform.packed(optxform.chain(decay, optxform.scale_by_learning_rate(1.0)),
        ...                      labels={"w": "decay", "b": "no_decay"})
        >>> grads = {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}
        >>> updates, _ = tx.update(grads, tx.init(params), params)
        >>> updates["b"], updates["w"][0]  # only w is decayed
        (Array([-1., -1.], dtype=float32), Array([-1.5, -1.5], dtype=float32))
    """
    wanted = {str(label) for label in labels}

    def label_of(key: str) -> str | None:
        base = key.split(_SOLO, 1)[0]
        return base.rsplit(_SEPARATOR, 1)[0] if _SEPARATOR in base else None

    def mask(packed: dict) -> dict:
        return {key: label_of(key) in wanted for key in packed}

    mask.on_packed_buffers = True  # read by the mask resolution inside ``packed``
    return mask


# --- helpers -------------------------------------------------------------------------------


def _is_inexact(x) -> bool:
    return jnp.issubdtype(jnp.asarray(x).dtype if not hasattr(x, "dtype") else x.dtype,
                          jnp.inexact)


def _widest(dtypes: list) -> Any:
    dtypes = [jnp.dtype(d) for d in dtypes]
    if all(d == dtypes[0] for d in dtypes):
        return dtypes[0]
    with jax.numpy_dtype_promotion("standard"):  # an explicit choice: the widest dtype
        out = dtypes[0]
        for d in dtypes[1:]:
            out = jnp.promote_types(out, d)
    return out


class _Label:
    """A label wrapped so that it is a leaf even when it is ``None`` or a tuple."""

    def __init__(self, value):
        self.value = value


def _broadcast_labels(label_tree: Any, tree: Any) -> list:
    """One label per leaf of ``tree``; ``label_tree`` may be a prefix of ``tree``."""
    def is_label(x):
        return not isinstance(x, (dict, list, tuple)) or x is None

    expanded = jax.tree_util.tree_map(
        lambda label, sub: jax.tree.map(lambda _: _Label(label), sub), label_tree, tree,
        is_leaf=is_label)
    boxes = jax.tree.leaves(expanded)
    return [box.value for box in boxes]


def _slice_static(layout: PackedLayout, packed: dict) -> list:
    out = []
    for slot in layout.slots:
        buffer = packed[slot.group]
        if slot.keeps_shape:
            out.append(buffer)
            continue
        piece = jax.lax.slice(buffer, (slot.offset,), (slot.offset + slot.size,))
        out.append(piece.reshape(slot.shape))
    return out


def _slice_dynamic(layout: PackedLayout, packed: dict, offsets: Any) -> list:
    out = []
    for slot, start in zip(layout.slots, jax.tree.leaves(offsets)):
        buffer = packed[slot.group]
        if slot.keeps_shape:
            out.append(buffer)
            continue
        piece = jax.lax.dynamic_slice(buffer, (jnp.asarray(start, jnp.int32),), (slot.size,))
        out.append(piece.reshape(slot.shape))
    return out


def _pack_cotangents(layout: PackedLayout, packed: dict, cotangents: list) -> dict:
    parts: dict[str, list] = {key: [] for key in layout.keys}
    for slot, ct in zip(layout.slots, cotangents):
        ct = ct if slot.keeps_shape else jnp.ravel(ct)
        parts[slot.group].append(ct.astype(packed[slot.group].dtype))
    return {key: (p[0] if len(p) == 1 else jnp.concatenate(p)) for key, p in parts.items()}


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _unpack_static_impl(layout, packed):
    return _slice_static(layout, packed)


def _unpack_static_fwd(layout, packed):
    return _slice_static(layout, packed), packed


def _unpack_static_bwd(layout, packed, cotangents):
    return (_pack_cotangents(layout, packed, cotangents),)


_unpack_static_impl.defvjp(_unpack_static_fwd, _unpack_static_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _unpack_dynamic_impl(layout, packed, offsets):
    return _slice_dynamic(layout, packed, offsets)


def _unpack_dynamic_fwd(layout, packed, offsets):
    return _slice_dynamic(layout, packed, offsets), (packed, offsets)


def _unpack_dynamic_bwd(layout, residual, cotangents):
    packed, offsets = residual
    zero_offsets = jax.tree.map(lambda o: np.zeros(np.shape(o), jax.dtypes.float0), offsets)
    return _pack_cotangents(layout, packed, cotangents), zero_offsets


_unpack_dynamic_impl.defvjp(_unpack_dynamic_fwd, _unpack_dynamic_bwd)


def _unpack_static(layout: PackedLayout, packed: dict) -> Any:
    return jax.tree.unflatten(layout.treedef, _unpack_static_impl(layout, packed))


def _unpack_dynamic(layout: PackedLayout, packed: dict, offsets: Any) -> Any:
    return jax.tree.unflatten(layout.treedef, _unpack_dynamic_impl(layout, packed, offsets))
