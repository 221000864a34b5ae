r"""Kronecker-factored preconditioners (Shampoo, SOAP): one square factor per tensor axis.

A param of shape :math:`(d_0, \ldots, d_{n-1})` gets, for each axis :math:`k` it
preconditions, a :math:`d_k \times d_k` statistic :math:`G_{(k)} G_{(k)}^\top` (the gradient
unfolded along axis :math:`k`) and a matrix derived from it (an inverse root, an
eigenbasis). The factors of one param are kept *packed*: one flat vector holding every
factor's entries in axis order, so each param has exactly one state leaf per kind of factor
and its shape depends only on the param's shape. These helpers pack, unpack and apply them.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

__all__: list[str] = []  # internal helpers of soap.py and shampoo.py

#: One entry per axis of the (possibly reshaped) param: the factor's size, or ``None`` for
#: an axis left unpreconditioned (the identity).
Dims = Sequence[int | None]


def packed_size(dims: Dims) -> tuple[int]:
    """The shape of the flat vector holding the factors of ``dims``."""
    return (sum(d * d for d in dims if d is not None),)


def unpack(flat: jax.Array, dims: Dims) -> list[jax.Array | None]:
    """The factors packed in ``flat``, one per axis (``None`` where unpreconditioned)."""
    out: list[jax.Array | None] = []
    start = 0
    for d in dims:
        if d is None:
            out.append(None)
            continue
        out.append(flat[start:start + d * d].reshape(d, d))
        start += d * d
    return out


def pack(factors: Sequence[jax.Array | None], like: jax.Array) -> jax.Array:
    """The flat vector holding ``factors`` (the inverse of :func:`unpack`)."""
    parts = [f.reshape(-1) for f in factors if f is not None]
    return jnp.concatenate(parts) if parts else jnp.zeros((0,), like.dtype)


def axis_gram(x: jax.Array, k: int) -> jax.Array:
    r""":math:`X_{(k)} X_{(k)}^\top`: ``x`` contracted with itself over every axis but ``k``."""
    others = [i for i in range(x.ndim) if i != k]
    return jnp.tensordot(x, x, axes=(others, others))


def identity_like(factor: jax.Array) -> jax.Array:
    return jnp.eye(factor.shape[0], dtype=factor.dtype)


def keep_if_not_finite(new: jax.Array, old: jax.Array) -> jax.Array:
    """``new``, or ``old`` where any entry of ``new`` is NaN or infinite (a failed
    decomposition keeps the last good factor)."""
    return jnp.where(jnp.all(jnp.isfinite(new)), new, old)
