"""The key grammar of state dicts: one readable key per node of a state tree.

A key is the node's path in the state: a NamedTuple field (or any attribute) is joined
with ``"."``, every other step (chain index, dict key, list index) with ``"/"``; so
``"1.mu/layer1/w"`` reads "field ``mu`` of chain member 1, param ``layer1/w``". The root
is ``"<root>"``.
"""

from __future__ import annotations

from typing import Any

import jax

from optxform.core.trees import path_to_str

__all__ = ["ROOT_KEY", "child_key", "key_of_path", "keyed_leaves"]

ROOT_KEY = "<root>"


def child_key(parent: str, step) -> str:
    """The key of the child reached from the node keyed ``parent`` by one path ``step``."""
    name = path_to_str((step,))
    if parent == ROOT_KEY:
        return name
    return parent + ("." if isinstance(step, jax.tree_util.GetAttrKey) else "/") + name


def key_of_path(path) -> str:
    """``(SequenceKey(1), GetAttrKey('mu'), DictKey('w'))`` -> ``"1.mu/w"``."""
    key = ROOT_KEY
    for step in path:
        key = child_key(key, step)
    return key


def keyed_leaves(state: Any) -> tuple[list[tuple[str, Any]], Any]:
    """``[(key, leaf), ...]`` in flattening order, and the treedef; keys must be unique."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(state)
    keyed = [(key_of_path(path), leaf) for path, leaf in flat]
    seen: dict[str, int] = {}
    for index, (key, _) in enumerate(keyed):
        if key in seen:
            raise ValueError(
                f"state_dict: two state leaves (numbers {seen[key]} and {index}) have the "
                f"same key {key!r}; rename the params so their paths are distinct")
        seen[key] = index
    return keyed, treedef
