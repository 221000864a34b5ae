"""Masks and labels: a pytree of per-param values, given as a tree, a prefix, or a function.

The one home of "a mask is a prefix tree or a function of params": weight decay masks,
``masked``, ``multi_transform``'s labels and ``packed``'s labels all resolve through
:func:`resolve_prefix`. Whether a mask is a function follows optax: it is when every leaf
of it is callable. A plain function is its own single leaf; a callable pytree (an equinox
Module, a flax struct with ``__call__``) whose leaves are booleans is a mask *tree*.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from optxform.core.trees import path_to_str

__all__: list[str] = []  # internal helpers; re-exported where public

_is_none = lambda x: x is None  # noqa: E731


def is_tree_function(value: Any) -> bool:
    """True when ``value`` is a function ``params -> tree`` rather than a tree (optax's rule)."""
    flags = jax.tree.leaves(jax.tree.map(callable, value))
    return bool(flags) and all(flags)


def broadcast_prefix(prefix_tree: Any, tree: Any, what: str) -> Any:
    """Repeat each leaf of ``prefix_tree`` over the matching subtree of ``tree``.

    ``prefix_tree`` has the structure of ``tree`` or of a prefix of it (a single value for a
    whole sub-dict). Raises ``ValueError`` if it is not a prefix of ``tree``.
    """
    try:
        return jax.tree.map(
            lambda value, sub: jax.tree.map(lambda _: value, sub, is_leaf=_is_none),
            prefix_tree, tree, is_leaf=_is_none)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{what} does not match the params' structure (it must be a "
                         f"tree with the params' structure or a prefix of it): {err}") from err


def resolve_prefix(spec: Any, tree: Any, what: str) -> Any:
    """``spec`` (a prefix tree of ``tree``, or a function of ``tree`` returning one) as a
    tree with ``tree``'s structure, one value per leaf (``None`` leaves of ``tree`` kept)."""
    prefix = spec(tree) if is_tree_function(spec) else spec
    return broadcast_prefix(prefix, tree, what)


def _as_python_bool(flag: Any, where: str, what: str) -> bool:
    if isinstance(flag, jax.core.Tracer):
        raise ValueError(f"{what} at {where!r} is a traced value; a mask must be concrete "
                         f"booleans (it decides which params an update touches)")
    array = np.asarray(flag)
    if array.shape != () or array.dtype != np.bool_:
        raise ValueError(f"{what} at {where!r} must be a boolean, got {flag!r}")
    return bool(array)


def resolve_mask(mask: Any, tree: Any, what: str = "the mask") -> Any:
    """The mask as a tree of Python bools with ``tree``'s structure (``None`` leaves kept).

    ``mask=None`` selects every leaf. Raises ``ValueError`` naming the first leaf whose
    flag is not a concrete boolean.
    """
    if mask is None:
        return jax.tree.map(lambda _: True, tree, is_leaf=_is_none)
    full = resolve_prefix(mask, tree, what)
    flat, treedef = jax.tree_util.tree_flatten_with_path(full, is_leaf=_is_none)
    flags = [None if flag is None else _as_python_bool(flag, path_to_str(path), what)
             for path, flag in flat]
    return jax.tree_util.tree_unflatten(treedef, flags)
