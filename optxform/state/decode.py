"""float32_state: a compactly stored optimizer state as plain float32 arrays, to inspect."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from optxform.core.trees import path_to_str
from optxform.tree.quantize import QuantizedBlocks, dequantize_blockwise

__all__ = ["float32_state"]


def _is_stored(x: Any) -> bool:
    return x is None or isinstance(x, QuantizedBlocks)


def _shape_for(state_path: tuple, param_paths: list) -> tuple[int, ...]:
    """The shape of the param whose path ends ``state_path`` (the longest such path)."""
    best = None
    for path, shape in param_paths:
        if len(path) <= len(state_path) and tuple(state_path[len(state_path) - len(path):]) \
                == tuple(path) and (best is None or len(path) > len(best[0])):
            best = (path, shape)
    if best is None:
        raise ValueError(f"float32_state: no param matches the state leaf "
                         f"{path_to_str(state_path)!r}")
    return best[1]


def float32_state(state: Any, params: Any) -> Any:
    """``state`` with every compactly stored buffer decoded to float32, for inspection.

    A :class:`~optxform.tree.quantize.QuantizedBlocks` node (8-bit codes and block
    scales) becomes the float32 array it encodes, shaped like the param it belongs to
    (the param whose path ends the node's path; a complex param's real view); a
    floating leaf narrower than float32 (bfloat16, float16) is cast to float32; every
    other leaf is returned as it is. The result is for reading (plots, checks, export);
    the optimizer keeps using the stored form.

    Args:
      state: an optimizer state, e.g. of ``adam(mu_dtype="int8_blockwise")``.
      params: the params the state was built for (their shapes).

    Returns:
      A tree like ``state`` with plain arrays where compact buffers were.

    Equivalent: bitsandbytes has no public helper (``F.dequantize_blockwise`` on each
    ``state1``/``state2`` with its ``absmax``); optax keeps no compact state.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.adam(0.1, mu_dtype="int8_blockwise", nu_dtype="int8_blockwise")
        >>> params = {"w": jnp.zeros(3)}
        >>> _, state = tx.update({"w": jnp.array([1.0, -0.5, 0.25])}, tx.init(params), params)
        >>> optxform.float32_state(state, params)["adam"].mu["w"]
        Array([ 0.1       , -0.05007812,  0.02476563], dtype=float32)
    """
    param_paths = []
    for path, p in jax.tree_util.tree_flatten_with_path(params, is_leaf=lambda x: x is None)[0]:
        if p is not None:
            shape = tuple(jnp.shape(p)) + ((2,) if jnp.iscomplexobj(p) else ())
            param_paths.append((tuple(path), shape))

    def decode(path, leaf):
        if leaf is None:
            return None
        if isinstance(leaf, QuantizedBlocks):
            return dequantize_blockwise(leaf, _shape_for(tuple(path), param_paths))
        if (hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jnp.floating)
                and jnp.finfo(leaf.dtype).bits < 32):
            return leaf.astype(jnp.float32)
        return leaf

    return jax.tree_util.tree_map_with_path(decode, state, is_leaf=_is_stored)
