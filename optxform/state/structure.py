"""A state's identity as data: its node types and structure, compared by every loader.

:func:`describe_structure` lists every node of a state, depth first in flattening order,
as ``(key, kind, children)``:

* ``key``: the node's path in the key grammar of :func:`optxform.state_dict` (``"0.mu"``,
  ``"<root>"``);
* ``kind``: the node's type name (``"ScaleByAdamState"``, ``"dict"``, ``"tuple"``,
  ``"None"``), ``"*"`` for an array leaf, or the key dtype (``"key<fry>"``) for a typed
  PRNG key leaf;
* ``children``: the keys of its children, in order (a NamedTuple's fields, a dict's keys,
  a tuple's length).

Two optimizers whose states have the same leaf keys still differ here: Adam's and
Adamax's states both hold ``count``, ``mu`` and ``nu``, but one is a ``ScaleByAdamState``
and the other a ``ScaleByAdamaxState``. Shapes and dtypes of the arrays are not part of
the description; the loaders check them leaf by leaf.
"""

from __future__ import annotations

from typing import Any

import jax

from optxform.state.keys import ROOT_KEY, child_key

__all__ = ["Node", "check_structure", "describe_structure", "is_prng_key",
           "structure_from_json"]

Node = tuple[str, str, tuple[str, ...]]

_GROWABLE = frozenset({"dict", "list", "tuple"})  # containers that may gain entries
_PLACEHOLDERS = frozenset({"MaskedNode"})  # "no state for this param here": may gain one


def is_prng_key(leaf: Any) -> bool:
    """Whether ``leaf`` is a typed PRNG key array (``jax.random.key``), concrete or abstract."""
    dtype = getattr(leaf, "dtype", None)
    return dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


def _leaf_kind(leaf: Any) -> str:
    return str(leaf.dtype) if is_prng_key(leaf) else "*"


def describe_structure(state: Any) -> list[Node]:
    """Every node of ``state`` as ``(key, kind, children)``, depth first (see module doc).

    Works on any pytree, concrete or abstract (``jax.eval_shape(tx.init, params)``).
    """
    nodes: list[Node] = []

    def visit(node: Any, key: str) -> None:
        if node is None:
            nodes.append((key, "None", ()))
            return
        flat, _ = jax.tree_util.tree_flatten_with_path(node, is_leaf=lambda x: x is not node)
        if len(flat) == 1 and not flat[0][0]:
            nodes.append((key, _leaf_kind(node), ()))
            return
        children = [(child_key(key, child_path[0]), child) for child_path, child in flat]
        nodes.append((key, type(node).__name__, tuple(k for k, _ in children)))
        for k, child in children:
            visit(child, k)

    visit(state, ROOT_KEY)
    return nodes


def structure_from_json(value: Any) -> list[Node]:
    """Nodes from their JSON form ``[[key, kind, [child, ...]], ...]``; ``ValueError`` if
    ``value`` is not such a list."""
    if not isinstance(value, list) or not value:
        raise ValueError("the structure description is not a non-empty list")
    nodes = []
    for item in value:
        if (not isinstance(item, (list, tuple)) or len(item) != 3
                or not isinstance(item[0], str) or not isinstance(item[1], str)
                or not isinstance(item[2], (list, tuple))
                or not all(isinstance(child, str) for child in item[2])):
            raise ValueError(f"the structure description has a malformed entry {item!r:.200}")
        nodes.append((item[0], item[1], tuple(item[2])))
    return nodes


def _kind_text(node: Node) -> str:
    _, kind, children = node
    if kind == "*":
        return "an array"
    if kind == "None":
        return "None"
    if kind.startswith("key<"):
        return f"a PRNG key array ({kind})"
    if kind in ("tuple", "list"):
        return f"a {kind} of {len(children)}"
    return ("an " if kind[:1] in "AEIOUaeiou" else "a ") + kind


def _difference(found: Node, expected: Node, found_name: str, expected_name: str,
                additions: bool) -> str | None:
    """What differs between one node of each description, or ``None``."""
    key = found[0]
    if key != expected[0]:
        return (f"the {found_name} describes entry {key!r} where the {expected_name} has "
                f"{expected[0]!r}")
    if additions and found[1] in _PLACEHOLDERS:
        return None
    if found[1] != expected[1]:
        return (f"at {key!r} the {found_name} has {_kind_text(found)} where the "
                f"{expected_name} has {_kind_text(expected)}")
    if found[2] == expected[2]:
        return None
    found_children, expected_children = set(found[2]), set(expected[2])
    only_found = [child for child in found[2] if child not in expected_children]
    if only_found:
        return (f"entry {only_found[0]!r} is in the {found_name} but not in the "
                f"{expected_name} ({len(only_found)} such under {key!r})")
    if additions and found[1] in _GROWABLE:
        return None
    only_expected = [child for child in expected[2] if child not in found_children]
    if only_expected:
        return (f"entry {only_expected[0]!r} is in the {expected_name} but not in the "
                f"{found_name} ({len(only_expected)} such under {key!r})")
    return f"at {key!r} the entries come in another order"


def check_structure(found: list[Node], expected: list[Node], *, where: str,
                    found_name: str, expected_name: str, additions: bool = False) -> None:
    """Raise ``ValueError`` naming the first node where ``found`` differs from ``expected``.

    Nodes are compared depth first, a node before its children, so a difference is
    reported where it starts: a different optimizer is named by its state type (``at '0' the checkpoint has a
    ScaleByAdamaxState where the template has a ScaleByAdamState``), a different param by
    its entry. With ``additions`` (for :func:`optxform.extend_state`), ``expected`` may
    have more entries than ``found``: dicts, lists and tuples may gain children, a
    ``MaskedNode`` (a param that had no state there) may become anything, and every other
    node of ``found`` must be in ``expected`` with the same kind.
    """
    if additions:
        by_key = {node[0]: node for node in expected}
        pairs = [(node, by_key.get(node[0])) for node in found]
    else:
        pairs = list(zip(found, expected))
    for node, other in pairs:
        problem = (f"entry {node[0]!r} is in the {found_name} but not in the {expected_name}"
                   if other is None else
                   _difference(node, other, found_name, expected_name, additions))
        if problem:
            raise ValueError(f"{where}: {problem}")
    if not additions and len(found) != len(expected):
        raise ValueError(f"{where}: the {found_name} describes {len(found)} nodes, the "
                         f"{expected_name} {len(expected)}")
