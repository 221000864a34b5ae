"""Flat, readable state dicts: state_dict, load_state_dict.

A state is a nested pytree (chain tuples, NamedTuples of fields, dicts of params). Its flat
form maps one readable key per array leaf to a host ``numpy`` copy, the way torch's
``Optimizer.state_dict()`` exposes ``state[param_id]['exp_avg']``::

    tx = optxform.adam(1e-3, weight_decay=0.1)  # chain(add_decayed_weights, scale_by_adam, lr)
    optxform.state_dict(tx.init({"layer1": {"w": w, "b": b}}))
    # {"1.count": array(0, dtype=int32), "1.mu/layer1/b": ..., "1.mu/layer1/w": ...,
    #  "1.nu/layer1/b": ..., "1.nu/layer1/w": ..., "2.count": array(0, dtype=int32)}

Key grammar: the path of the leaf in the state tree, where a NamedTuple field is joined
with ``"."`` and every other step (chain index, dict key, list index) with ``"/"``; so
``"1.mu/layer1/w"`` reads "field ``mu`` of chain member 1, param ``layer1/w``". A state
that is a single array has the key ``"<root>"``. ``None`` leaves (frozen params) and empty
nodes hold no array and have no key.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from optxform.core.trees import path_to_str

__all__ = ["load_state_dict", "state_dict", "state_keys"]


def _key_of_path(path) -> str:
    if not path:
        return "<root>"
    parts = []
    for i, step in enumerate(path):
        if i:
            parts.append("." if isinstance(step, jax.tree_util.GetAttrKey) else "/")
        parts.append(path_to_str((step,)))
    return "".join(parts)


def _flatten(state: Any) -> tuple[list[tuple[str, Any]], Any]:
    """``[(key, leaf), ...]`` in flattening order, and the treedef; keys must be unique."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(state)
    keyed = [(_key_of_path(path), leaf) for path, leaf in flat]
    seen: dict[str, int] = {}
    for index, (key, _) in enumerate(keyed):
        if key in seen:
            raise ValueError(
                f"state_dict: two state leaves (numbers {seen[key]} and {index}) have the "
                f"same key {key!r}; rename the params so their paths are distinct")
        seen[key] = index
    return keyed, treedef


def state_keys(state: Any) -> list[str]:
    """The keys :func:`state_dict` would produce for ``state``, in flattening order.

    ``state`` may be abstract (e.g. ``jax.eval_shape(tx.init, params)``): only its structure
    is read.
    """
    return [key for key, _ in _flatten(state)[0]]


def state_dict(state: Any) -> dict[str, np.ndarray]:
    """The state as ``{readable_key: numpy array}`` (host copies), like torch's ``state_dict()``.

    Keys follow the grammar in the module docstring (e.g. ``"1.mu/layer1/w"``); their
    order is the state's flattening order. The arrays are exact copies: dtypes (bfloat16
    included) and bits are preserved. Torch equivalent: ``optimizer.state_dict()``, whose
    ``'state'`` entries are keyed by param index and whose ``'param_groups'`` hold the
    hyperparameters; here hyperparameters are part of the state only when the optimizer was
    built with ``inject_hyperparams``.
    """
    keyed, _ = _flatten(state)
    return {key: np.array(leaf, copy=True) for key, leaf in keyed}


def _dtype_of(leaf: Any) -> np.dtype:
    dtype = getattr(leaf, "dtype", None)
    return np.dtype(dtype) if dtype is not None else np.asarray(leaf).dtype


def _shape_of(leaf: Any) -> tuple[int, ...]:
    shape = getattr(leaf, "shape", None)
    return tuple(shape) if shape is not None else np.shape(leaf)


def _place_like(template_leaf: Any, value: np.ndarray) -> jax.Array:
    sharding = getattr(template_leaf, "sharding", None)
    if isinstance(sharding, jax.sharding.Sharding):
        return jax.device_put(value, sharding)
    return jnp.asarray(value)


def load_state_dict(template_state: Any, d: Mapping[str, Any]) -> Any:
    """The inverse of :func:`state_dict`: a state shaped like ``template_state`` holding ``d``.

    ``template_state`` gives the structure, shapes and dtypes: a state from ``tx.init`` or
    an abstract one from ``jax.eval_shape(tx.init, params)``. Every key of the template must
    be in ``d`` and every key of ``d`` in the template, with equal shape and dtype (no silent
    casting); otherwise ``ValueError`` names the key. Everything is checked before anything
    is built, so a failure never yields a half-loaded state. Leaves are placed with the
    template leaf's sharding when it has one. Torch equivalent:
    ``optimizer.load_state_dict(sd)``.
    """
    if not isinstance(d, Mapping):
        raise ValueError(f"load_state_dict: expected a mapping of key -> array, got {type(d)}")
    keyed, treedef = _flatten(template_state)
    template_keys = {key for key, _ in keyed}
    missing = [key for key, _ in keyed if key not in d]
    if missing:
        raise ValueError(
            f"load_state_dict: key {missing[0]!r} of the optimizer state is missing from the "
            f"state dict ({len(missing)} missing in all)")
    extra = [key for key in d if key not in template_keys]
    if extra:
        raise ValueError(
            f"load_state_dict: unexpected key {extra[0]!r} in the state dict: the optimizer "
            f"state has no such entry ({len(extra)} unexpected in all); was it saved from "
            f"another optimizer or other params?")
    values = []
    for key, leaf in keyed:
        value = np.asarray(d[key])
        want_shape, want_dtype = _shape_of(leaf), _dtype_of(leaf)
        if value.shape != want_shape:
            raise ValueError(
                f"load_state_dict: shape mismatch for key {key!r}: the state dict has "
                f"{value.shape}, the optimizer state expects {want_shape}")
        if value.dtype != want_dtype:
            raise ValueError(
                f"load_state_dict: dtype mismatch for key {key!r}: the state dict has "
                f"{value.dtype}, the optimizer state expects {want_dtype}")
        values.append(value)
    leaves = [_place_like(leaf, value) for (_, leaf), value in zip(keyed, values)]
    return jax.tree_util.tree_unflatten(treedef, leaves)
