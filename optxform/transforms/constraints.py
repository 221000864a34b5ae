"""Constraints on params: keep_params_nonnegative."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from optxform.core import EmptyState, GradientTransformation
from optxform.rules import Leaf, Rule, lift

__all__ = ["keep_params_nonnegative"]


def _keep_params_nonnegative_leaf(x: Leaf) -> tuple[jax.Array, dict]:
    return jnp.where(x.p + x.g < 0, -x.p, x.g), {}


KEEP_PARAMS_NONNEGATIVE = Rule(
    name="keep_params_nonnegative", kind="elementwise", state=EmptyState,
    counts_steps=False, reads_params=True, leaf=_keep_params_nonnegative_leaf)


def keep_params_nonnegative() -> GradientTransformation:
    r"""Change updates so that no param goes below zero: :math:`u \leftarrow -\theta` where
    :math:`\theta + u < 0`, otherwise :math:`u` unchanged.

    Put it last in a chain (it sees the final updates). A param that is already negative
    is moved to 0. Equals ``optax.keep_params_nonnegative``; torch has no counterpart
    (one clamps the params after ``step()``). A complex param is kept in the quadrant
    where both its real and imaginary parts are non-negative (each part is an element, as
    torch's ``view_as_real`` sees it).

    Returns:
      A :class:`GradientTransformation` whose state is an :class:`EmptyState`; its
        ``update`` needs ``params``.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.keep_params_nonnegative()
        >>> params = {"w": jnp.array([1.0, 0.5])}
        >>> updates, _ = tx.update({"w": jnp.array([-0.25, -2.0])}, tx.init(params), params)
        >>> optxform.apply_updates(params, updates)["w"]
        Array([0.75, 0.  ], dtype=float32)
    """
    return lift(KEEP_PARAMS_NONNEGATIVE)
