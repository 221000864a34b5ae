"""Step counters: int32 scalars that saturate instead of wrapping."""

from __future__ import annotations

import jax
import jax.numpy as jnp

INT32_MAX = jnp.iinfo(jnp.int32).max


def zero_count() -> jax.Array:
    """A fresh step counter."""
    return jnp.zeros([], jnp.int32)


def increment(count: jax.Array) -> jax.Array:
    """``count + 1``, saturating at the int32 maximum (never wraps to a negative step)."""
    count = jnp.asarray(count, jnp.int32)
    return jnp.where(count < INT32_MAX, count + 1, INT32_MAX).astype(jnp.int32)
