"""Flat, readable state dicts: state_dict, load_state_dict.

A state is a nested pytree (chain tuples, NamedTuples of fields, dicts of params). Its flat
form maps one readable key per array leaf to a host ``numpy`` copy, the way torch's
``Optimizer.state_dict()`` exposes ``state[param_id]['exp_avg']``, plus one reserved entry
describing the state's structure::

    tx = optxform.adam(1e-3, weight_decay=0.1)  # named_chain(sign, decay, adam, lr)
    optxform.state_dict(tx.init({"layer1": {"w": w, "b": b}}))
    # {"adam.count": array(0, dtype=int32), "adam.mu/layer1/b": ..., "adam.mu/layer1/w": ...,
    #  "adam.nu/layer1/b": ..., "adam.nu/layer1/w": ..., "lr.count": array(0, dtype=int32),
    #  "<structure>": array('[["<root>", "dict", ["adam", "decay", "lr", "sign"]], ...]')}

Key grammar (:mod:`optxform.state.keys`): the path of the leaf in the state tree, where a
NamedTuple field is joined with ``"."`` and every other step (chain index, dict key, list
index) with ``"/"``; so ``"adam.mu/layer1/w"`` reads "field ``mu`` of the chain member
``adam``, param ``layer1/w``". A state that is a single array has the key ``"<root>"``. ``None`` leaves
(frozen params) and empty nodes hold no array and have no key. A typed PRNG key leaf
(``jax.random.key``) is stored as its key data (``jax.random.key_data``).

``"<structure>"`` holds the state's node types and structure
(:func:`optxform.state.structure.describe_structure`) as JSON text, one line per node, in
a 0-d numpy string array: it is what tells an Adam state from an Adamax state with the
same keys.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from optxform.state.keys import keyed_leaves
from optxform.state.structure import (Node, check_structure, describe_structure,
                                      is_prng_key, structure_from_json)

__all__ = ["STRUCTURE_KEY", "load_state_dict", "state_dict", "state_keys"]

STRUCTURE_KEY = "<structure>"


def state_keys(state: Any) -> list[str]:
    """The array keys :func:`state_dict` would produce for ``state``, in flattening order
    (``"<structure>"`` aside).

    ``state`` may be abstract (e.g. ``jax.eval_shape(tx.init, params)``): only its structure
    is read.

    Args:
      state: an optimizer state, concrete or abstract.

    Returns:
      A list of strings, one key per array leaf in the grammar of :func:`state_dict`
        (``None`` leaves and empty nodes have none).

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> tx = optxform.adam(0.1)
        >>> optxform.state_keys(jax.eval_shape(tx.init, {"w": jnp.ones(2)}))
        ['adam.count', 'adam.mu/w', 'adam.nu/w', 'lr.count']
    """
    return [key for key, _ in keyed_leaves(state)[0]]


def _to_host(leaf: Any) -> np.ndarray:
    return np.array(jax.random.key_data(leaf) if is_prng_key(leaf) else leaf, copy=True)


def encode_structure(nodes: list[Node]) -> np.ndarray:
    """The ``"<structure>"`` entry: a JSON list with one ``[key, kind, children]`` line per
    node, as a 0-d numpy string array."""
    lines = ",\n".join(json.dumps([key, kind, list(children)]) for key, kind, children in nodes)
    return np.array(f"[\n{lines}\n]")


def decode_structure(value: Any) -> list[Node]:
    """The nodes of a ``"<structure>"`` entry; ``ValueError`` if it is malformed."""
    text = np.asarray(value)
    if text.ndim != 0 or text.dtype.kind != "U":
        raise ValueError(f"the {STRUCTURE_KEY!r} entry is not a 0-d string array")
    try:
        return structure_from_json(json.loads(str(text)))
    except json.JSONDecodeError as err:
        raise ValueError(f"the {STRUCTURE_KEY!r} entry is not JSON ({err})") from err


def state_dict(state: Any) -> dict[str, np.ndarray]:
    """The state as ``{readable_key: numpy array}`` (host copies), like torch's ``state_dict()``.

    Keys follow the grammar in the module docstring (e.g. ``"1.mu/layer1/w"``); their
    order is the state's flattening order, followed by the reserved ``"<structure>"``
    entry (the state's node types, a string array). The arrays are exact copies: dtypes
    (bfloat16 included) and bits are preserved. Torch equivalent:
    ``optimizer.state_dict()``, whose ``'state'`` entries are keyed by param index and
    whose ``'param_groups'`` hold the hyperparameters; here hyperparameters are part of the
    state only when the optimizer was built with ``inject_hyperparams``.

    Args:
      state: an optimizer state (a pytree of arrays).

    Returns:
      A dict ``{key: numpy array}``: one host copy per array leaf, keyed as in
        :func:`state_keys`, then the ``"<structure>"`` entry (a 0-d string array).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.adam(0.1)
        >>> params = {"w": jnp.ones(2)}
        >>> _, state = tx.update({"w": jnp.array([1.0, -1.0])}, tx.init(params), params)
        >>> d = optxform.state_dict(state)
        >>> list(d)
        ['adam.count', 'adam.mu/w', 'adam.nu/w', 'lr.count', '<structure>']
        >>> d["adam.mu/w"]
        array([ 0.1, -0.1], dtype=float32)
    """
    keyed, _ = keyed_leaves(state)
    if any(key == STRUCTURE_KEY for key, _ in keyed):
        raise ValueError(f"state_dict: a state leaf has the reserved key {STRUCTURE_KEY!r}")
    result = {key: _to_host(leaf) for key, leaf in keyed}
    result[STRUCTURE_KEY] = encode_structure(describe_structure(state))
    return result


def _host_shape_dtype(leaf: Any) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype :func:`state_dict` gives this template leaf."""
    if is_prng_key(leaf):
        data = jax.eval_shape(jax.random.key_data, leaf)
        return tuple(data.shape), np.dtype(data.dtype)
    dtype = getattr(leaf, "dtype", None)
    shape = getattr(leaf, "shape", None)
    return (tuple(shape) if shape is not None else np.shape(leaf),
            np.dtype(dtype) if dtype is not None else np.asarray(leaf).dtype)


def _key_impl(leaf: Any) -> Any:
    found = []
    jax.eval_shape(lambda key: found.append(jax.random.key_impl(key)), leaf)
    return found[0]


def _leaf_like(template_leaf: Any, value: np.ndarray) -> Any:
    """``value`` as the kind of leaf ``template_leaf`` is: a Python scalar stays a Python
    scalar, a numpy array a numpy array, a key a key; a jax array is placed with the
    template's sharding when it has one."""
    if isinstance(template_leaf, np.ndarray):
        return value.copy()
    if isinstance(template_leaf, np.generic):
        return value[()]
    if isinstance(template_leaf, (bool, int, float, complex)):
        return type(template_leaf)(value.item())
    array = value
    if is_prng_key(template_leaf):
        array = jax.random.wrap_key_data(jnp.asarray(value), impl=_key_impl(template_leaf))
    sharding = getattr(template_leaf, "sharding", None)
    if isinstance(sharding, jax.sharding.Sharding):
        return jax.device_put(array, sharding)
    return jnp.asarray(array)


def load_state_dict(template_state: Any, d: Mapping[str, Any]) -> Any:
    """The inverse of :func:`state_dict`: a state shaped like ``template_state`` holding ``d``.

    ``template_state`` gives the structure, shapes and dtypes: a state from ``tx.init`` or
    an abstract one from ``jax.eval_shape(tx.init, params)``. When ``d`` has a
    ``"<structure>"`` entry (every dict :func:`state_dict` returns does), the state's node
    types and structure must equal the template's; otherwise ``ValueError`` names the first
    difference (e.g. an Adamax state given to Adam: ``at '0' the state dict has a
    ScaleByAdamaxState where the template state has a ScaleByAdamState``). Then every key
    of the template must be in ``d`` and every key of ``d`` in the template, with equal
    shape and dtype (no silent casting); otherwise ``ValueError`` names the key.
    Everything is checked before anything is built, so a failure never yields a
    half-loaded state. Leaves come back as the template's kind of leaf: jax arrays (placed
    with the template leaf's sharding when it has one), numpy arrays, Python scalars, PRNG
    keys. Torch equivalent: ``optimizer.load_state_dict(sd)``.

    Args:
      template_state: a state of the optimizer being restored, concrete or abstract; it
        gives the structure, shapes, dtypes and shardings.
      d: a mapping ``{key: array}`` such as :func:`state_dict` returns (the
        ``"<structure>"`` entry is optional).

    Returns:
      A state with the structure of ``template_state`` holding the arrays of ``d``.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.adam(0.1)
        >>> params = {"w": jnp.ones(2)}
        >>> _, state = tx.update({"w": jnp.array([1.0, -1.0])}, tx.init(params), params)
        >>> restored = optxform.load_state_dict(tx.init(params), optxform.state_dict(state))
        >>> restored["adam"].mu
        {'w': Array([ 0.1, -0.1], dtype=float32)}
    """
    if not isinstance(d, Mapping):
        raise ValueError(f"load_state_dict: expected a mapping of key -> array, got {type(d)}")
    structure = None
    if STRUCTURE_KEY in d:
        try:
            structure = decode_structure(d[STRUCTURE_KEY])
        except ValueError as err:
            raise ValueError(f"load_state_dict: {err}") from err
    arrays = {key: value for key, value in d.items() if key != STRUCTURE_KEY}
    return load_arrays(template_state, arrays, structure, caller="load_state_dict",
                       source="state dict")


def load_arrays(template_state: Any, arrays: Mapping[str, Any], structure: list[Node] | None,
                *, caller: str, source: str) -> Any:
    """:func:`load_state_dict` of ``arrays`` (no ``"<structure>"`` entry) whose structure
    description is ``structure`` (``None``: unknown, only keys, shapes and dtypes are
    checked). Errors start with ``caller`` and call ``arrays`` "the ``source``"."""
    keyed, treedef = keyed_leaves(template_state)
    if structure is not None:
        check_structure(structure, describe_structure(template_state),
                        where=f"{caller}: the {source} is from another optimizer or other "
                              f"params",
                        found_name=source, expected_name="template state")
    template_keys = {key for key, _ in keyed}
    missing = [key for key, _ in keyed if key not in arrays]
    if missing:
        raise ValueError(
            f"{caller}: key {missing[0]!r} of the optimizer state is missing from the "
            f"{source} ({len(missing)} missing in all)")
    extra = [key for key in arrays if key not in template_keys]
    if extra:
        raise ValueError(
            f"{caller}: unexpected key {extra[0]!r} in the {source}: the optimizer state "
            f"has no such entry ({len(extra)} unexpected in all); was it saved from another "
            f"optimizer or other params?")
    values = []
    for key, leaf in keyed:
        value = np.asarray(arrays[key])
        want_shape, want_dtype = _host_shape_dtype(leaf)
        if value.shape != want_shape:
            raise ValueError(
                f"{caller}: shape mismatch for key {key!r}: the {source} has {value.shape}, "
                f"the optimizer state expects {want_shape}")
        if value.dtype != want_dtype:
            raise ValueError(
                f"{caller}: dtype mismatch for key {key!r}: the {source} has {value.dtype}, "
                f"the optimizer state expects {want_dtype}")
        values.append(value)
    leaves = [_leaf_like(leaf, value) for (_, leaf), value in zip(keyed, values)]
    return jax.tree_util.tree_unflatten(treedef, leaves)
