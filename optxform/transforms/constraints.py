"""Constraints on params: keep_params_nonnegative."""

from __future__ import annotations

import jax.numpy as jnp

from optxform import tree as otu
from optxform.core import EmptyState, GradientTransformation
from optxform.core.trees import require_params

__all__ = ["keep_params_nonnegative"]


def keep_params_nonnegative() -> GradientTransformation:
    r"""Change updates so that no param goes below zero: :math:`u \leftarrow -\theta` where
    :math:`\theta + u < 0`, otherwise :math:`u` unchanged.

    Put it last in a chain (it sees the final updates). A param that is already negative
    is moved to 0. Equals ``optax.keep_params_nonnegative``; torch has no counterpart
    (one clamps the params after ``step()``).

    State: ``EmptyState``.
    """

    def init(params):
        del params
        return EmptyState()

    def update(updates, state, params=None, **extra):
        del extra
        require_params(params, updates, "keep_params_nonnegative")

        def constrain(u, p):
            p = p.astype(u.dtype)
            return jnp.where(p + u < 0, -p, u)

        return otu.tree_map(constrain, updates, params), state

    return GradientTransformation(init, update)
