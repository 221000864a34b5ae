"""flatten: run a transform on all params concatenated into one vector.

A change of layout, not of math: for element-wise transforms (Adam, RMSprop, momentum, ...)
the updates are those of the unflattened transform, while the state becomes a few long
vectors instead of one small array per param, which is faster when there are many small
params. Transforms that look at each param's shape (factored second moments, per-param
norms or block clipping) see one vector instead, so their math changes.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from optxform import tree as otu
from optxform.core import GradientTransformation, call_update

__all__ = ["flatten"]


def _common_dtype(tree: Any) -> Any:
    """The widest dtype among the leaves (float32 for an empty tree)."""
    dtypes = {jnp.asarray(leaf).dtype for leaf in jax.tree.leaves(tree)}
    if not dtypes:
        return jnp.dtype(jnp.float32)
    with jax.numpy_dtype_promotion("standard"):  # an explicit choice, not an implicit one
        return functools.reduce(jnp.promote_types, sorted(dtypes, key=str))


def _ravel(tree: Any) -> jax.Array:
    return otu.ravel(tree, dtype=_common_dtype(tree))


def _same_layout(value: Any, updates: Any, updates_def) -> bool:
    """Whether ``value`` is a tree with the updates' structure and leaf shapes."""
    if jax.tree.structure(value) != updates_def or updates_def.num_leaves == 0:
        return False
    return all(jnp.shape(a) == jnp.shape(b)
               for a, b in zip(jax.tree.leaves(value), jax.tree.leaves(updates)))


def flatten(tx: GradientTransformation) -> GradientTransformation:
    """Run ``tx`` on a single vector: all params (and updates) raveled and concatenated.

    ``init`` returns ``tx``'s state for that vector (its per-param buffers are vectors of
    length ``total number of param elements``); ``update`` ravels the updates (and params),
    calls ``tx`` and splits its output back into the params' structure, shapes and dtypes.
    Leaves of different dtypes are concatenated in their common (widest) dtype. For
    element-wise transforms the updates equal those of ``tx`` itself; the point is speed
    (a few large kernels instead of many small ones). Extra arguments that are trees with
    the updates' structure (``grad=``) are raveled too, and ``value_fn=`` receives
    unraveled params.

    Args:
      tx: the transform to run on the flat vector.

    Returns:
      A :class:`GradientTransformation` whose state is ``tx``'s state for a single vector
        of all the param elements (its per-param buffers are such vectors).

    torch equivalent: ``foreach=True`` / ``fused=True`` implementations (same math,
    batched kernels). Equivalent: ``optax.flatten``.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.flatten(optxform.sgd(0.1, momentum=0.9))
        >>> params = {"a": jnp.ones(2), "b": jnp.ones((2, 2))}
        >>> state = tx.init(params)
        >>> state["momentum_buffer"].trace.shape  # one buffer for all 6 elements
        (6,)
        >>> updates, state = tx.update({"a": jnp.ones(2), "b": jnp.ones((2, 2))}, state)
        >>> updates["b"]
        Array([[-0.1, -0.1],
               [-0.1, -0.1]], dtype=float32)
    """

    def init(params):
        return tx.init(_ravel(params))

    def update(updates, state, params=None, **extra):
        flat_updates = _ravel(updates)
        flat_params = None if params is None else _ravel(params)
        ref_def = jax.tree.structure(updates)
        flat_extra = {}
        for name, value in extra.items():
            if name == "value_fn" and callable(value):
                reference = updates if params is None else params
                flat_extra[name] = (lambda fn, ref: lambda v, *a, **k: fn(
                    otu.unravel_like(v, ref), *a, **k))(value, reference)
            elif not callable(value) and _same_layout(value, updates, ref_def):
                flat_extra[name] = _ravel(value)
            else:
                flat_extra[name] = value
        new_flat, state = call_update(tx, flat_updates, state, flat_params, flat_extra)
        return otu.unravel_like(new_flat, updates), state

    return GradientTransformation(init, update)
