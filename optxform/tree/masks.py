"""Masks and labels: a pytree of per-param values, given as a tree, a prefix, or a function.

The one home of "a mask is a prefix tree or a function of params": weight decay masks,
``masked``, ``multi_transform``'s labels and ``packed``'s labels all resolve through
:func:`resolve_prefix`. Whether a mask is a function follows optax: it is when every leaf
of it is callable. A plain function is its own single leaf; a callable pytree (an equinox
Module, a flax struct with ``__call__``) whose leaves are booleans is a mask *tree*.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Callable, Iterator

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


class _Packing:
    """The params tree behind packed buffers, and how per-leaf flags map onto the buffers."""

    def __init__(self, params: Any, keys: frozenset, to_buffers: Callable[[Any], dict]):
        self.params, self.keys, self.to_buffers = params, keys, to_buffers


_PACKING: contextvars.ContextVar = contextvars.ContextVar("optxform_packing", default=None)


@contextlib.contextmanager
def masks_over_params(params: Any, keys, to_buffers: Callable[[Any], dict]) -> Iterator[None]:
    """While active, a mask resolved on a packed dict (keys ``keys``) is evaluated on the
    ``params`` tree, as the user wrote it, and carried to the buffers by ``to_buffers``
    (per-leaf flags -> ``{key: bool or bool array}``). ``packed`` sets this around the
    transform it runs, so a mask function never sees packed buffers (unless it is marked
    ``on_packed_buffers``, as :func:`optxform.label_mask`'s are)."""
    token = _PACKING.set(_Packing(params, frozenset(keys), to_buffers))
    try:
        yield
    finally:
        _PACKING.reset(token)


def resolve_mask(mask: Any, tree: Any, what: str = "the mask",
                 elementwise: bool = False) -> Any:
    """The mask as a tree of Python bools with ``tree``'s structure (``None`` leaves kept).

    This is how every ``mask=`` argument (weight decay, :func:`masked`, :func:`freeze`) is
    read: a pytree of bools with the params' structure, a prefix of it (one bool for a
    whole sub-tree), or a function of the params returning either (optax's rule: a mask is
    a function when every leaf of it is callable). Inside ``packed``, on packed buffers,
    the mask is evaluated on the params tree as the user wrote it; a buffer that holds
    selected and unselected leaves gets a bool array, which only ``elementwise`` callers
    accept.

    Args:
      mask: the mask as given: ``None`` (select every leaf), a tree or prefix tree of
        bools, or a function of ``tree`` returning one.
      tree: the tree the mask applies to (usually the params or the updates).
      what: how error messages name the mask (e.g. ``"masked: the mask"``).
      elementwise: accept a bool array for a packed buffer that holds selected and
        unselected leaves (for callers that act element by element).

    Returns:
      A tree with ``tree``'s structure holding one Python bool per leaf (``None`` where
        ``tree`` has a ``None`` leaf; on packed buffers, a bool array where a buffer is
        partly selected).

    Raises:
      ValueError: if the mask is not a prefix of ``tree``, or naming the first leaf whose
        flag is not a concrete boolean (a traced value, an array of several bools).

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> params = {"w": jnp.ones((2, 2)), "head": {"w": jnp.ones(2), "b": jnp.ones(1)}}
        >>> optxform.resolve_mask({"w": True, "head": False}, params)
        {'head': {'b': False, 'w': False}, 'w': True}
        >>> optxform.resolve_mask(lambda p: jax.tree.map(lambda x: x.ndim >= 2, p), params)
        {'head': {'b': False, 'w': False}, 'w': True}
    """
    packing = _PACKING.get()
    if (mask is not None and packing is not None and isinstance(tree, dict)
            and frozenset(tree) == packing.keys
            and not getattr(mask, "on_packed_buffers", False)):
        flags = packing.to_buffers(resolve_mask(mask, packing.params, what))
        mixed = [key for key, flag in flags.items() if not isinstance(flag, bool)]
        if mixed and not elementwise:
            raise ValueError(f"{what} selects part of the packed buffer {mixed[0]!r}; give "
                             "packed(..., labels=...) so that each buffer is selected whole")
        return flags
    if mask is None:
        return jax.tree.map(lambda _: True, tree, is_leaf=_is_none)
    full = resolve_prefix(mask, tree, what)
    flat, treedef = jax.tree_util.tree_flatten_with_path(full, is_leaf=_is_none)
    flags = [None if flag is None else _as_python_bool(flag, path_to_str(path), what)
             for path, flag in flat]
    return jax.tree_util.tree_unflatten(treedef, flags)
