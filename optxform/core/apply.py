"""Adding updates to params."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from optxform.core.base import Params, Updates
from optxform.core.trees import check_same_structure


def _wider_dtype(a, b):
    """The dtype to add ``a`` and ``b`` in, without relying on implicit promotion."""
    a, b = jnp.dtype(a), jnp.dtype(b)
    if a == b:
        return a
    if a.itemsize != b.itemsize:
        return a if a.itemsize > b.itemsize else b
    return jnp.dtype(jnp.float32)  # e.g. bfloat16 with float16


def apply_updates(params: Params, updates: Updates) -> Params:
    """Return ``params + updates`` leaf by leaf, keeping each param's dtype (optax.apply_updates).

    The sum is computed in the wider of the two dtypes and cast back to the param's dtype, so a
    bfloat16 param receiving a float32 update stays bfloat16. ``None`` leaves (frozen or
    absent params) stay ``None``; a ``None`` update leaf (a partial gradient) leaves its
    param as it is (as ``equinox.apply_updates``). A structure or shape mismatch raises
    ``ValueError`` naming the first bad path.

    .. math:: \theta_t = \theta_{t-1} + u_t

    Args:
      params: the params tree :math:`\theta_{t-1}`.
      updates: a tree with the structure and leaf shapes of ``params`` (the updates a
        transform's ``update`` returned); ``None`` leaves are allowed.

    Returns:
      A tree like ``params``: each leaf is the param plus its update, in the param's
        dtype.

    Equivalents: ``optax.apply_updates``; torch applies updates in place inside
    ``optimizer.step()``.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> params = {"w": jnp.array([1.0, 2.0]), "frozen": None}
        >>> optxform.apply_updates(params, {"w": jnp.array([0.5, -0.5]), "frozen": None})
        {'frozen': None, 'w': Array([1.5, 1.5], dtype=float32)}
        >>> optxform.apply_updates({"w": jnp.ones(2, jnp.bfloat16)}, {"w": jnp.full(2, 0.5)})
        {'w': Array([1.5, 1.5], dtype=bfloat16)}
    """
    check_same_structure(params, updates, "params", "updates", none_passes=True)

    def add(p, u):
        if p is None or u is None:
            return p
        p = jnp.asarray(p)
        u = jnp.asarray(u)
        wide = _wider_dtype(p.dtype, u.dtype)
        return (p.astype(wide) + u.astype(wide)).astype(p.dtype)

    return jax.tree.map(add, params, updates, is_leaf=lambda x: x is None)
