"""Reading and setting named fields anywhere in a nested state: tree_get, tree_set.

A name is a NamedTuple field (``"count"``, ``"mu"``), a dict key (``"learning_rate"`` in
:func:`optxform.inject_hyperparams`'s ``hyperparams``), or a ``/``-separated path suffix
that disambiguates (``"hyperparams/learning_rate"``, ``"0/count"`` for the count of chain
member 0). Like torch's ``param_group['lr']``, but for any field of any state::

    tx = optxform.inject_hyperparams(optxform.sgd)(learning_rate=0.1, momentum=0.9)
    state = tx.init(params)
    optxform.tree_get(state, "learning_rate")            # Array(0.1, dtype=float32)
    state = optxform.tree_set(state, learning_rate=0.01)  # same dtype/shape: no retrace

Both work on optax states too (optax's InjectHyperparamsState is also a NamedTuple).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["tree_get", "tree_set"]

_MISSING = object()


def _is_namedtuple(node: Any) -> bool:
    return isinstance(node, tuple) and hasattr(node, "_fields")


def _children(node: Any) -> list[tuple[str, Any]] | None:
    """``[(name, child), ...]`` for a container node, ``None`` for a leaf."""
    if _is_namedtuple(node):
        return list(zip(node._fields, node))
    if isinstance(node, Mapping):
        return [(str(k), v) for k, v in node.items()]
    if isinstance(node, (list, tuple)):
        return [(str(i), v) for i, v in enumerate(node)]
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return [(f.name, getattr(node, f.name)) for f in dataclasses.fields(node)]
    return None


def _rebuild(node: Any, children: list[Any]) -> Any:
    if _is_namedtuple(node):
        return type(node)(*children)
    if isinstance(node, Mapping):
        items = dict(zip(node.keys(), children))
        return items if type(node) is dict else type(node)(items)
    if isinstance(node, (list, tuple)):
        return type(node)(children)
    names = [f.name for f in dataclasses.fields(node)]
    return dataclasses.replace(node, **dict(zip(names, children)))


def _steps(names) -> tuple[str, ...]:
    """Path steps split at ``"/"`` and ``"."``: state_dict keys join NamedTuple fields with
    ``"."`` (``"adam.mu/w"``), so both separators are accepted, and a dict key that holds a
    dot (``"layer1.weight"``) is compared as the same steps."""
    return tuple(step for name in names for step in name.replace(".", "/").split("/"))


def _matches(path: tuple[str, ...], parts: tuple[str, ...]) -> bool:
    steps = _steps(path)
    return len(steps) >= len(parts) and steps[len(steps) - len(parts):] == parts


def _find(node: Any, parts: tuple[str, ...], path: tuple[str, ...], out: list) -> None:
    if path and _matches(path, parts):
        out.append(("/".join(path), node))
        return
    children = _children(node)
    for name, child in children or ():
        _find(child, parts, path + (name,), out)


def _parts(name: str) -> tuple[str, ...]:
    if not isinstance(name, str) or not name or any(not p for p in _steps([name])):
        raise ValueError(f"tree_get/tree_set: invalid name {name!r} (a field name, or a "
                         "path suffix in state_dict's syntax such as 'adam.mu' or "
                         "'hyperparams/learning_rate')")
    return _steps([name])


def _available(state: Any, limit: int = 12) -> str:
    names: list[str] = []

    def walk(node, depth):
        for child_name, child in _children(node) or ():
            if not child_name.isdigit() and child_name not in names:
                names.append(child_name)
            if depth < 6:
                walk(child, depth + 1)

    walk(state, 0)
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (", ..." if len(names) > limit else "") if names else "none"


def tree_get(state: Any, name: str, default: Any = _MISSING) -> Any:
    """The value of the one field or dict key called ``name`` anywhere in ``state``.

    Args:
      state: an optimizer state (nested tuples, NamedTuples, dicts, dataclasses).
      name: a field/key name, or a path suffix in :func:`state_dict`'s key syntax
        (``"adam.count"``, ``"0.count"``, ``"hyperparams/b1"``; ``"."`` and ``"/"`` both
        separate steps) matching the end of the path to the node.
      default: returned when nothing matches; without it a missing name raises
        ``KeyError`` listing the names the state has.

    Returns:
      The matching node (an array, or a whole subtree for a container name), or
        ``default``. When the name matches several places, the shallowest match is
        returned if it is the only one at its depth (``tree_get(inject_state, "count")``
        is the wrapper's own count); otherwise ``ValueError`` lists the paths, so that a
        longer suffix can pick one.

    Equivalent: torch's ``optimizer.param_groups[0]["lr"]`` or
    ``optimizer.state[p]["exp_avg"]``; optax's ``state.hyperparams["learning_rate"]``.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.inject_hyperparams(optxform.sgd)(learning_rate=0.1, momentum=0.9)
        >>> state = tx.init({"w": jnp.ones(2)})
        >>> optxform.tree_get(state, "learning_rate")
        Array(0.1, dtype=float32)
        >>> optxform.tree_get(state, "trace")  # the momentum buffer, a tree like the params
        {'w': Array([0., 0.], dtype=float32)}
        >>> print(optxform.tree_get(state, "nesterov", None))
        None
    """
    parts = _parts(name)
    found: list[tuple[str, Any]] = []
    _find(state, parts, (), found)
    if not found:
        if default is not _MISSING:
            return default
        raise KeyError(f"tree_get: the state has no field or key {name!r}; names present: "
                       f"{_available(state)}")
    if len(found) > 1:
        depths = [p.count("/") for p, _ in found]
        shallowest = [f for f, d in zip(found, depths) if d == min(depths)]
        if len(shallowest) == 1:
            return shallowest[0][1]
        paths = ", ".join(repr(p) for p, _ in found)
        raise ValueError(f"tree_get: {name!r} is ambiguous, it matches {paths}; pass a longer "
                         "path suffix (e.g. 'hyperparams/learning_rate' or '0/count')")
    return found[0][1]


def _cast_like(old: Any, new: Any, where: str) -> Any:
    children = _children(old)
    if children is not None:
        if isinstance(old, Mapping) and isinstance(new, Mapping) and set(map(str, new)) == {
                n for n, _ in children}:
            new = {k: new[k] for k in old}  # match dict entries by key, not by order
        new_children = _children(new)
        if new_children is None or [n for n, _ in new_children] != [n for n, _ in children]:
            raise ValueError(f"tree_set: the value for {where!r} must have the structure of "
                             f"the current one ({jax.tree.structure(old)})")
        return _rebuild(old, [_cast_like(o, v, f"{where}/{n}")
                              for (n, o), (_, v) in zip(children, new_children)])
    if old is None:
        if new is not None:
            raise ValueError(f"tree_set: {where!r} is None in the state and cannot be set")
        return None
    old_shape, old_dtype = np.shape(old), jnp.result_type(old)
    value = jnp.asarray(new, dtype=old_dtype)
    if value.shape != tuple(old_shape):
        if value.ndim != 0:
            raise ValueError(f"tree_set: {where!r} has shape {tuple(old_shape)}, got a value "
                             f"of shape {value.shape}")
        value = jnp.broadcast_to(value, old_shape)
    return value


def _set(node: Any, parts: tuple[str, ...], path: tuple[str, ...], value: Any,
         count: list[int]) -> Any:
    if path and _matches(path, parts):
        count[0] += 1
        return _cast_like(node, value, "/".join(path))
    children = _children(node)
    if children is None:
        return node
    return _rebuild(node, [_set(child, parts, path + (n,), value, count)
                           for n, child in children])


def tree_set(state: Any, **values: Any) -> Any:
    """A copy of ``state`` with each named field or dict key set to the given value.

    ``tree_set(state, learning_rate=0.01, count=0)``. Each name is matched as in
    :func:`tree_get` (use ``**{"0/count": 5}`` for a path suffix); a name matching several
    places sets all of them (e.g. every ``count`` of a chain). A name that matches nothing
    raises ``KeyError``. New values are cast to the dtype of the value they replace and a
    scalar is broadcast to its shape (any other shape change raises ``ValueError``), so a
    jitted step does not retrace; a container is replaced leaf by leaf and must keep its
    structure. Works under ``jit`` and ``vmap`` (e.g. a batch of learning rates:
    ``jax.vmap(lambda lr: tree_set(state, learning_rate=lr))(lrs)``).

    Args:
      state: an optimizer state (nested tuples, NamedTuples, dicts, dataclasses).
      **values: ``name=value`` pairs; each name as in :func:`tree_get`, each value an
        array or number (or, for a container name, a tree of the same structure).

    Returns:
      A new state of the same structure, shapes and dtypes as ``state``, with the named
        entries replaced; ``state`` itself is not modified.

    Equivalent: torch's ``for group in optimizer.param_groups: group["lr"] = 0.01``;
    optax's ``state.hyperparams["learning_rate"] = 0.01`` (a mutation).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.inject_hyperparams(optxform.sgd)(learning_rate=0.1, momentum=0.9)
        >>> state = optxform.tree_set(tx.init({"w": jnp.ones(2)}), learning_rate=0.01)
        >>> optxform.tree_get(state, "learning_rate")
        Array(0.01, dtype=float32)
    """
    for name, value in values.items():
        parts = _parts(name)
        count = [0]
        state = _set(state, parts, (), value, count)
        if not count[0]:
            raise KeyError(f"tree_set: the state has no field or key {name!r}; names "
                           f"present: {_available(state)}")
    return state
