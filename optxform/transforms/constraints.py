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

    State: ``EmptyState``.
    """
    return lift(KEEP_PARAMS_NONNEGATIVE)
