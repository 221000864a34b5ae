"""Structure checks and readable key paths; the one place that compares tree structures."""

from __future__ import annotations

from typing import Any

import jax


def _key_to_str(key) -> str:
    if isinstance(key, jax.tree_util.DictKey):
        return str(key.key)
    if isinstance(key, jax.tree_util.GetAttrKey):
        return key.name
    if isinstance(key, jax.tree_util.SequenceKey):
        return str(key.idx)
    if isinstance(key, jax.tree_util.FlattenedIndexKey):
        return str(key.key)
    return str(key)


def path_to_str(path) -> str:
    """``(DictKey('layer1'), DictKey('w'))`` -> ``"layer1/w"``; the root is ``"<root>"``."""
    return "/".join(_key_to_str(k) for k in path) or "<root>"


def leaves_with_paths(tree: Any, is_leaf=None) -> list[tuple[str, Any]]:
    """The leaves of ``tree`` with their readable paths, in flattening order."""
    flat, _ = jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_leaf)
    return [(path_to_str(path), leaf) for path, leaf in flat]


def _is_none(x) -> bool:
    return x is None


def _fill_nones(other: Any, reference: Any) -> Any:
    """``other`` with each ``None`` that stands where ``reference`` has a leaf replaced by
    that leaf (a partial gradient: the param gets no update this step)."""
    ref_def = jax.tree_util.tree_structure(reference, is_leaf=_is_none)
    try:
        parts = ref_def.flatten_up_to(other)
    except (ValueError, TypeError):
        return other
    ref_leaves = ref_def.flatten_up_to(reference)
    filled = [r if (o is None and r is not None) else o for o, r in zip(parts, ref_leaves)]
    return jax.tree_util.tree_unflatten(ref_def, filled)


def check_same_structure(reference: Any, other: Any, reference_name: str, other_name: str,
                         check_shapes: bool = True, none_passes: bool = False) -> None:
    """Raise ``ValueError`` naming the first path where ``other`` differs from ``reference``.

    ``None`` leaves in ``reference`` (e.g. frozen params) must be ``None`` in ``other`` too.
    With ``none_passes``, ``other`` may hold ``None`` where ``reference`` has a leaf
    (gradients with ``None`` leaves: those params are not updated this step). With
    ``check_shapes`` the leaves' shapes must agree as well.
    """
    if none_passes:
        other = _fill_nones(other, reference)
    ref_def = jax.tree_util.tree_structure(reference)
    other_def = jax.tree_util.tree_structure(other)
    ref_leaves = leaves_with_paths(reference)
    if ref_def != other_def:
        other_leaves = leaves_with_paths(other)
        ref_paths = [p for p, _ in ref_leaves]
        other_paths = [p for p, _ in other_leaves]
        for i, (a, b) in enumerate(zip(ref_paths, other_paths)):
            if a != b:
                raise ValueError(
                    f"{other_name} does not match {reference_name}: at leaf {i}, "
                    f"{reference_name} has path {a!r} but {other_name} has {b!r}"
                )
        if len(ref_paths) != len(other_paths):
            longer, name = (ref_paths, reference_name) if len(ref_paths) > len(other_paths) \
                else (other_paths, other_name)
            extra = longer[min(len(ref_paths), len(other_paths))]
            raise ValueError(
                f"{other_name} does not match {reference_name}: path {extra!r} is only in "
                f"{name} ({len(ref_paths)} leaves vs {len(other_paths)})"
            )
        raise ValueError(
            f"{other_name} does not match {reference_name}: same paths, different node "
            f"types ({ref_def} vs {other_def})"
        )
    if check_shapes:
        for (path, a), b in zip(ref_leaves, jax.tree_util.tree_leaves(other)):
            shape_a, shape_b = getattr(a, "shape", None), getattr(b, "shape", None)
            if shape_a is not None and shape_b is not None and tuple(shape_a) != tuple(shape_b):
                raise ValueError(
                    f"{other_name} does not match {reference_name} at {path!r}: shape "
                    f"{tuple(shape_b)} vs {tuple(shape_a)}"
                )


def require_params(params: Any, updates: Any, who: str) -> None:
    """For transforms that read the params: they must be given and match the updates.

    Raises ``ValueError`` naming the transform when ``params`` is ``None``, or naming the
    first mismatching path (see :func:`check_same_structure`; ``None`` update leaves pass).
    """
    if params is None:
        raise ValueError(f"{who} needs params: call update(updates, state, params)")
    check_same_structure(params, updates, "params", "updates", none_passes=True)
