"""Whole-array views of explicitly sharded leaves, for rules that multiply whole matrices."""

from __future__ import annotations

from typing import Any

import jax
from jax.sharding import NamedSharding, PartitionSpec

__all__: list[str] = []  # internal helpers for update rules


def gathered(a: jax.Array) -> tuple[jax.Array, Any]:
    """``a`` replicated, and its sharding, where it is sharded over explicit mesh axes.

    Newton-Schulz and Kronecker-factored preconditioners multiply whole matrices, so a
    matrix sharded over an explicit mesh axis is gathered first (under automatic sharding
    XLA places the collectives itself); the sharding is ``None`` otherwise.
    """
    sharding = jax.typeof(a).sharding
    if not isinstance(sharding, NamedSharding) or all(s is None for s in sharding.spec):
        return a, None
    return jax.sharding.reshard(a, NamedSharding(sharding.mesh, PartitionSpec())), sharding


def resharded(a: jax.Array, sharding: Any) -> jax.Array:
    """``a`` laid out as ``sharding`` (from :func:`gathered`); as it is for ``None``."""
    return a if sharding is None else jax.sharding.reshard(a, sharding)
