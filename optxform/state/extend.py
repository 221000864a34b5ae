"""extend_state: torch's add_param_group for a functional state."""

from __future__ import annotations

from typing import Any, Hashable

import jax
import jax.numpy as jnp
import numpy as np

from optxform.core import GradientTransformation
from optxform.state.keys import keyed_leaves
from optxform.state.structure import check_structure, describe_structure
from optxform.wrappers.multi_transform import MultiTransformState

__all__ = ["extend_state"]


def extend_state(tx: GradientTransformation, state: Any, new_params: Any, *,
                 old_group: Hashable | None = None) -> Any:
    """The state of ``tx`` for ``new_params`` (old params plus added ones), old entries kept.

    ``new_params`` is the whole params tree after the addition (e.g. ``{**params,
    "adapter": adapter_params}``) and ``tx`` the transform used from now on (for
    :func:`multi_transform`, with labels covering the new params). A fresh state
    ``tx.init(new_params)`` is built, then every entry that already existed in ``state``
    (same key in :func:`state_dict` terms) takes its old value: moment buffers of the old
    params, step counters, injected hyperparameters. Entries of the added params keep their
    fresh ``init`` values (zeros for moments). Matching is by path: params are recognised
    by their names, so add params under new names rather than re-indexing a list.

    The old state must fit the new one: every node of ``state`` must be in the fresh state
    at the same key with the same type (a ``ScaleByAdamState`` stays a ``ScaleByAdamState``;
    dicts, lists and tuples may gain entries, and a param that had no state under a label,
    a ``MaskedNode``, may get some: moving a param from a frozen label to a trained one
    starts its moments afresh). Raises ``ValueError`` naming the first
    difference if not (a param was removed or renamed, or ``tx`` is another optimizer, even
    one whose state has the same keys, such as Adamax for Adam), or naming the key if an
    entry's shape or dtype changed (e.g. a param was resized, or ``tx`` is a
    :func:`flatten` transform whose single vector cannot keep per-param state:
    re-initialise instead).

    torch equivalent: ``optimizer.add_param_group({"params": new_params, ...})``. A
    difference to know: torch keeps a step count per param, so added params start at step
    0; here a transform's counter is shared by its params and is kept, so params added to an
    existing group continue at that group's step (Adam's bias correction is then ~1 for
    their zero-initialised moments, and their first updates are larger than torch's). To
    get torch's behaviour exactly, give the added params a NEW label in a
    :func:`multi_transform`: that label's transform starts with a fresh state of its own,
    counter 0, just like a new torch param group (with its own options)::

        new_params = {**params, "adapter": adapter_params}
        tx2 = optxform.multi_transform(
            {"base": optxform.adam(1e-3), "adapter": optxform.adam(1e-2)},
            {**{name: "base" for name in params}, "adapter": "adapter"})
        state2 = optxform.extend_state(tx2, state, new_params, old_group="base")

    ``old_group`` says that ``state`` (the state of a plain optimizer, e.g. ``adam``) becomes
    the state of that label of ``tx``, which must then be a :func:`multi_transform`; without
    it ``state`` must already have ``tx``'s layout.

    Args:
      tx: the transform used from now on, for ``new_params``.
      state: the current state (of ``tx`` for the old params, or of the plain optimizer
        that becomes label ``old_group``).
      new_params: the whole params tree after the addition (arrays or
        ``jax.ShapeDtypeStruct``s).
      old_group: a label of ``tx`` (a :func:`multi_transform`) that takes ``state`` over;
        ``None`` when ``state`` already has ``tx``'s layout.

    Returns:
      The state ``tx.init(new_params)`` with every entry that ``state`` holds replaced by
        its old value (same structure, shapes and dtypes as a fresh state).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.adam(0.1)
        >>> params = {"w": jnp.ones(2)}
        >>> _, state = tx.update({"w": jnp.array([1.0, -1.0])}, tx.init(params), params)
        >>> state = optxform.extend_state(tx, state, {**params, "b": jnp.zeros(1)})
        >>> state["adam"].mu  # w's moment kept, b's fresh
        {'b': Array([0.], dtype=float32), 'w': Array([ 0.1, -0.1], dtype=float32)}
    """
    fresh = tx.init(new_params)
    if old_group is None:
        return _merge(fresh, state)
    if not isinstance(fresh, MultiTransformState):
        raise ValueError("extend_state: old_group needs tx to be a multi_transform (its "
                         f"state is a {type(fresh).__name__})")
    if old_group not in fresh.inner_states:
        raise ValueError(f"extend_state: old_group {old_group!r} is not a label of tx "
                         f"(labels: {list(fresh.inner_states)})")
    inner = dict(fresh.inner_states)
    inner[old_group] = _merge(fresh.inner_states[old_group], state)
    return MultiTransformState(inner_states=inner)


def _merge(fresh: Any, state: Any) -> Any:
    """``fresh`` with every entry that ``state`` also has replaced by the old value."""
    check_structure(describe_structure(state), describe_structure(fresh),
                    where="extend_state: the old state does not fit tx's state for "
                          "new_params (new_params must contain every old param under the "
                          "same name, and tx must be the same kind of optimizer)",
                    found_name="old state", expected_name="new state", additions=True)
    fresh_keyed, treedef = keyed_leaves(fresh)
    old = dict(keyed_leaves(state)[0])
    leaves = []
    for key, fresh_leaf in fresh_keyed:
        if key not in old:
            leaves.append(fresh_leaf)
            continue
        old_leaf = old[key]
        if np.shape(old_leaf) != np.shape(fresh_leaf):
            raise ValueError(
                f"extend_state: entry {key!r} has shape {np.shape(old_leaf)} in the old "
                f"state but {np.shape(fresh_leaf)} for new_params: a param changed shape, "
                f"or the state is not per-param (e.g. flatten); re-initialise instead")
        if jnp.asarray(old_leaf).dtype != jnp.asarray(fresh_leaf).dtype:
            raise ValueError(
                f"extend_state: entry {key!r} has dtype {jnp.asarray(old_leaf).dtype} in "
                f"the old state but {jnp.asarray(fresh_leaf).dtype} for new_params")
        leaves.append(old_leaf)
    return jax.tree_util.tree_unflatten(treedef, leaves)
