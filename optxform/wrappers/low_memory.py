r"""low_memory: build any optimizer with its moments stored in a compact format."""

from __future__ import annotations

import functools
from typing import Callable, Literal

from jax.typing import DTypeLike

from optxform.core import GradientTransformation
from optxform.core.validation import check_dtype
from optxform.rules.lift import moment_storage
from optxform.tree.quantize import StateStorage, as_storage

__all__ = ["low_memory"]

StorageName = Literal["bfloat16_sr", "int8_blockwise", "int8_blockwise_sr"]


def low_memory(factory: Callable[..., GradientTransformation],
               storage: StateStorage | StorageName | DTypeLike
               ) -> Callable[..., GradientTransformation]:
    r"""Wrap an optimizer factory so every moment buffer it keeps uses ``storage``.

    The moment buffers are those an alias exposes as ``mu_dtype`` / ``nu_dtype`` (Adam's
    :math:`m` and :math:`v`, Lion's and Muon's momentum, schedule-free AdamW's
    :math:`v`, ...); a dtype given explicitly to the factory wins. Other state (counters,
    Schedule-Free's iterate :math:`z`, Rprop's step sizes) keeps its own dtype. Storage
    (bytes per element of a buffer):

    * a dtype such as ``jnp.bfloat16`` (2 bytes, rounded to nearest);
    * ``"bfloat16_sr"`` (2 bytes, stochastic rounding keyed by the step and the leaf's
      path: unbiased, reproducible, resumes bit-identically);
    * ``"int8_blockwise"`` or ``StateStorage("int8_blockwise", block_size)`` (8-bit
      dynamic codes and a float32 scale per block: :math:`1 + 4/256` bytes at the
      default block size; signed map for first moments, unsigned for second), each
      element rounded to the nearest code, as in the paper;
    * ``"int8_blockwise_sr"`` (the same 8-bit codes written with stochastic rounding:
      unbiased, so small exponential-average updates are not lost; its final losses
      track float32 moments more closely).

    The update decodes each buffer to float32, runs the optimizer's own math and
    encodes the result; nothing else changes. Wrap the alias before
    :func:`inject_hyperparams`: ``inject_hyperparams(low_memory(adamw, "int8_blockwise"))``.

    Args:
      factory: an alias such as :func:`optxform.adamw` (any callable returning a
        ``GradientTransformation`` built from declared rules).
      storage: the storage of the moments.

    Returns:
      A factory taking the same arguments as ``factory``.

    Equivalents: ``bitsandbytes.optim.AdamW8bit`` (8-bit blocks), torchao's
    ``AdamW(bf16_stochastic_round=True)`` (bfloat16 with stochastic rounding); optax
    has only ``mu_dtype``.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.low_memory(optxform.adam, "int8_blockwise")(1e-3)
        >>> state = tx.init({"w": jnp.ones((4, 100))})
        >>> state["adam"].mu["w"].codes.shape, state["adam"].nu["w"].codes.dtype
        ((2, 256), dtype('uint8'))
    """
    storage = as_storage(storage)
    if not isinstance(storage, StateStorage):
        check_dtype("storage", storage)
        if storage is None:
            raise ValueError("Invalid storage: None (a dtype, \"bfloat16_sr\", "
                             "\"int8_blockwise\", \"int8_blockwise_sr\" or a StateStorage)")

    @functools.wraps(factory)
    def build(*args, **kwargs) -> GradientTransformation:
        with moment_storage(storage):
            return factory(*args, **kwargs)

    return build
