r"""Compact storage of optimizer state: bfloat16 stochastic rounding and 8-bit blocks.

Two encodings of a float32 array, used by the storage policies of
:class:`~optxform.rules.Buffer` (see :class:`StateStorage`):

* **bfloat16 with stochastic rounding** (:func:`stochastic_round_bfloat16`): add 16
  random bits below the bfloat16 mantissa to the float32 bit pattern, then truncate.
  A value between two bfloat16 neighbours rounds up with probability equal to its
  distance from the lower one, so the rounding is unbiased: small increments to a
  moment accumulate in expectation instead of being rounded away. The random bits come
  from a key made of the step counter and a per-leaf id (:func:`leaf_key`), so a run is
  reproducible and a resumed run is bit-identical.
* **8-bit block-wise dynamic quantization** (Dettmers et al. 2022, "8-bit Optimizers via
  Block-wise Quantization"): the array is cut into blocks of ``block_size`` elements;
  each block keeps its absolute maximum as a float32 scale and each element the index
  of the code nearest to ``x / absmax`` in a 256-value *dynamic tree* map
  (:func:`dynamic_map`): the signed map for first moments (codes stored as int8), the
  unsigned map for second moments (codes stored as uint8), so the stored dtype says
  which map decodes it. The code is the nearest one (as in the paper), or, with a
  key, one of the two codes around the value, drawn so that the decoded value is
  unbiased (:func:`quantize_blockwise`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import zlib
from typing import Any, Literal, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["QuantizedBlocks", "StateStorage", "as_storage", "dequantize_blockwise",
           "dynamic_map", "is_signed", "leaf_key", "quantize_blockwise",
           "stochastic_round_bfloat16"]


@functools.lru_cache(maxsize=None)
def _dynamic_map(signed: bool) -> np.ndarray:
    values = [0.0, 1.0]
    sign_bits = 1 if signed else 0
    for exponent in range(7):  # the number of zero bits before the indicator bit
        fraction_bits = 7 - sign_bits - exponent
        count = 2 ** fraction_bits
        # the midpoints of ``count`` equal intervals of [0.1, 1], scaled by 10^-exponent
        mids = 0.1 + 0.9 * (np.arange(count, dtype=np.float64) + 0.5) / count
        magnitudes = (10.0 ** -exponent) * mids
        values.extend(magnitudes)
        if signed:
            values.extend(-magnitudes)
    table = np.sort(np.asarray(values, dtype=np.float32))
    assert table.shape == (256,)
    table.setflags(write=False)
    return table


def dynamic_map(signed: bool) -> np.ndarray:
    r"""The 256 values of the dynamic tree quantization map, sorted ascending.

    A code reads as: a sign bit (signed map only), then :math:`E` zero bits (the decimal
    exponent), an indicator bit, and :math:`F` remaining bits holding a linear fraction
    index :math:`k`; its value is

    .. math::

        \pm 10^{-E} \left(0.1 + 0.9 \, \frac{k + 1/2}{2^F}\right),
        \qquad E = 0, \dots, 6, \quad F = 7 - s - E

    (:math:`s = 1` for the signed map), plus the two values 0 and 1. The signed map has
    127 positive and 127 negative magnitudes, 0 and 1 (no -1: a block's most negative
    element maps to the largest negative code, :math:`-0.993`); the unsigned map has 254
    positive magnitudes, 0 and 1, from :math:`3.25 \cdot 10^{-7}` up.

    Args:
      signed: the signed map (first moments) or the unsigned one (second moments).

    Returns:
      A read-only float32 numpy array of shape ``(256,)``, sorted ascending.

    Equivalent: ``bitsandbytes.functional.create_dynamic_map(signed)`` (its default
    ``max_exponent_bits=7``, ``total_bits=8``), which works the values out in float32
    arithmetic: a third of its codes differ from these correctly rounded ones by 1 or 2
    ulps.

    Example::

        >>> from optxform.tree.quantize import dynamic_map
        >>> m = dynamic_map(signed=True)
        >>> m.shape, round(float(m[0]), 6), float(m[-1])
        ((256,), -0.992969, 1.0)
    """
    return _dynamic_map(bool(signed))


class QuantizedBlocks(NamedTuple):
    """An array stored as 8-bit codes in blocks, each with a float32 absmax scale.

    Attributes:
      codes: shape ``(n_blocks, block_size)``: the position of each element's code in
        :func:`dynamic_map`, as uint8 for the unsigned map and as int8 (position minus
        128) for the signed map; the last block is padded with the code of 0.
      scales: float32, shape ``(n_blocks,)``: each block's absolute maximum.
    """

    codes: jax.Array
    scales: jax.Array


def _blocks(size: int, block_size: int) -> int:
    return max(1, math.ceil(size / block_size))


def _lookup(table: jax.Array, index: jax.Array) -> jax.Array:
    """``table[index]``, the result laid out like ``index`` (a mesh with explicit axes
    asks for the layout of a gather's result)."""
    return table.at[index].get(out_sharding=jax.typeof(index).sharding)


def _count_below(normalized: jax.Array, edges: np.ndarray, or_equal: bool) -> jax.Array:
    """How many of the 255 sorted ``edges`` lie below each value (or at it, with
    ``or_equal``): a binary search of 8 halvings, elementwise."""
    sorted_edges = jnp.asarray(edges)  # 255 = 2^8 - 1 entries
    below = jnp.zeros(normalized.shape, jnp.int32)
    for half in (128, 64, 32, 16, 8, 4, 2, 1):
        candidate = below + half
        edge = _lookup(sorted_edges, candidate - 1)
        inside = edge <= normalized if or_equal else edge < normalized
        below = jnp.where(inside, candidate, below)
    return below


def _nearest_code(normalized: jax.Array, table: np.ndarray) -> jax.Array:
    """The position of the code nearest to each value: the number of midpoints between
    neighbouring codes that lie below it (a tie goes to the lower code)."""
    return _count_below(normalized, (table[1:] + table[:-1]) / 2, or_equal=False)


def _code_below(normalized: jax.Array, table: np.ndarray) -> jax.Array:
    """The position of the largest code not above each value (0 below the first code):
    the number of codes after the first that are not above it."""
    return _count_below(normalized, table[1:], or_equal=True)


def _stochastic_code(normalized: jax.Array, table: np.ndarray, key: jax.Array) -> jax.Array:
    """One of the two codes around each value, the upper with probability equal to the
    value's distance from the lower over their gap: the decoded value is unbiased."""
    codes = jnp.asarray(table)
    low = jnp.minimum(_code_below(normalized, table), len(table) - 2)
    a, b = _lookup(codes, low), _lookup(codes, low + 1)
    up = jax.random.uniform(key, normalized.shape) < (normalized - a) / (b - a)
    return low + up.astype(jnp.int32)


def quantize_blockwise(x: jax.Array, signed: bool, block_size: int = 256,
                       key: jax.Array | None = None) -> QuantizedBlocks:
    r"""Block-wise dynamic quantization of ``x`` (any shape, read as float32).

    .. math::

        s_b = \max_{i \in b} |x_i|, \qquad
        c_i = \operatorname*{arg\,min}_{j} \left| q_j - x_i / s_b \right|

    with :math:`q` the :func:`dynamic_map` (a block of zeros keeps :math:`s_b = 0` and the
    code of 0). The elements are taken in row-major order; the last block is padded.
    With the unsigned map, a positive value below the smallest positive code is stored
    as that code, never as 0: a second moment stored as 0 under a nonzero first moment
    would leave only ``eps`` to divide the step by (the "zero-point problem" of Li et al.
    2023, "Memory Efficient Optimizers with 4-bit States").

    With a ``key``, the code is drawn instead (stochastic rounding): between the
    neighbouring codes :math:`q_j \le x_i / s_b < q_{j+1}` it is :math:`q_{j+1}` with
    probability :math:`(x_i / s_b - q_j) / (q_{j+1} - q_j)`, so
    :math:`E[q_{c_i} s_b] = x_i`. A moment whose per-step change is below half the gap
    between its codes then still moves in expectation, where the nearest code would keep
    it where it is (unbiased above the smallest positive code; below it, the rule above).

    Args:
      x: the array to store.
      signed: use the signed map (values of both signs) or the unsigned one (values
        :math:`\ge 0`; a negative value is stored as 0).
      block_size: elements per block (bitsandbytes' 8-bit optimizers use 256).
      key: ``None`` for the nearest code, or the ``jax.random`` key of the draw (see
        :func:`leaf_key`).

    Returns:
      :class:`QuantizedBlocks` with ``n_blocks = ceil(x.size / block_size)`` (at least 1).

    Equivalent: ``bitsandbytes.functional.quantize_blockwise(x, code, blocksize)`` (the
    same scales; its CPU kernel looks codes up approximately, so its codes agree with
    the nearest ones on values above a tenth of the block's maximum, and are farther off
    below).

    Example::

        >>> import jax.numpy as jnp
        >>> from optxform.tree.quantize import quantize_blockwise, dequantize_blockwise
        >>> q = quantize_blockwise(jnp.array([0.5, -1.0, 0.01]), signed=True, block_size=4)
        >>> q.codes.shape, q.codes.dtype, q.scales
        ((1, 4), dtype('int8'), Array([1.], dtype=float32))
        >>> dequantize_blockwise(q, (3,))
        Array([ 0.50078124, -0.99296874,  0.00971875], dtype=float32)
    """
    x = jnp.asarray(x, jnp.float32).reshape(-1)
    n_blocks = _blocks(x.size, block_size)
    x = jnp.pad(x, (0, n_blocks * block_size - x.size)).reshape(n_blocks, block_size)
    scales = jnp.max(jnp.abs(x), axis=1)
    normalized = x / jnp.where(scales > 0, scales, 1.0)[:, None]
    if key is None:
        codes = _nearest_code(normalized, dynamic_map(signed))
    else:
        codes = _stochastic_code(normalized, dynamic_map(signed), key)
    if not signed:  # a positive second moment is never stored as 0 (the code of 0 is 0)
        codes = jnp.where((normalized > 0) & (codes == 0), 1, codes)
    if signed:
        return QuantizedBlocks((codes - 128).astype(jnp.int8), scales)
    return QuantizedBlocks(codes.astype(jnp.uint8), scales)


def is_signed(q: QuantizedBlocks) -> bool:
    """Whether ``q``'s codes index the signed map (int8 codes) or the unsigned (uint8)."""
    return q.codes.dtype == jnp.int8


def dequantize_blockwise(q: QuantizedBlocks, shape: tuple[int, ...],
                         dtype: Any = jnp.float32) -> jax.Array:
    r"""The array :math:`x_i = q_{c_i} \, s_b` that :func:`quantize_blockwise` stored.

    Args:
      q: the stored codes and scales (int8 codes: the signed map; uint8: unsigned).
      shape: the original array's shape.
      dtype: the result's dtype (the product is taken in float32, then cast).

    Returns:
      An array of ``shape`` and ``dtype``.

    Equivalent: ``bitsandbytes.functional.dequantize_blockwise``.

    Example::

        >>> import jax.numpy as jnp
        >>> from optxform.tree.quantize import quantize_blockwise, dequantize_blockwise
        >>> q = quantize_blockwise(jnp.array([2.0, 1.0]), signed=False)
        >>> dequantize_blockwise(q, (2,))
        Array([2.       , 0.9945313], dtype=float32)
    """
    signed = is_signed(q)
    index = q.codes.astype(jnp.int32) + (128 if signed else 0)
    values = _lookup(jnp.asarray(dynamic_map(signed)), index) * q.scales[:, None]
    size = math.prod(shape)
    return values.reshape(-1)[:size].reshape(shape).astype(dtype)


def leaf_key(path: str, step: jax.Array | int, stream: int = 0) -> jax.Array:
    """The PRNG key of one leaf's random bits at one step.

    ``path`` (a leaf's readable key path) is hashed (CRC-32) to a per-leaf id, so the key
    does not depend on the order of the leaves nor on the process: the same ``(path,
    step, stream)`` gives the same bits in any run, and a resumed run draws what the
    uninterrupted one drew.

    Args:
      path: a per-leaf name (a state or param path such as ``"w/0"``).
      step: the step counter (an int32 array or an int).
      stream: separates the draws of several buffers of one leaf.

    Returns:
      A ``jax.random`` key.

    Example::

        >>> import jax
        >>> from optxform.tree.quantize import leaf_key
        >>> bool((jax.random.key_data(leaf_key("w", 3)) ==
        ...       jax.random.key_data(leaf_key("w", 3))).all())
        True
    """
    key = jax.random.key(zlib.crc32(path.encode()) & 0x7FFFFFFF)
    return jax.random.fold_in(jax.random.fold_in(key, stream), step)


def stochastic_round_bfloat16(x: jax.Array, key: jax.Array) -> jax.Array:
    r"""``x`` (float32) rounded to bfloat16 stochastically: unbiased, :math:`E[r(x)] = x`.

    With :math:`u` 16 uniform random bits, the bfloat16 result is the float32 bit pattern
    of :math:`x` plus :math:`u`, truncated to its upper 16 bits. Between the bfloat16
    neighbours :math:`a \le x < b` it gives :math:`b` with probability
    :math:`(x - a) / (b - a)`. Infinities and NaN pass unchanged.

    Args:
      x: the values, read as float32.
      key: the ``jax.random`` key of the draw (see :func:`leaf_key`).

    Returns:
      A bfloat16 array shaped like ``x``.

    Example::

        >>> import jax, jax.numpy as jnp
        >>> from optxform.tree.quantize import stochastic_round_bfloat16
        >>> x = jnp.full((4096,), 1.0 + 2.0 ** -9)   # a quarter ulp above 1 in bfloat16
        >>> r = stochastic_round_bfloat16(x, jax.random.key(0)).astype(jnp.float32)
        >>> sorted(set(r.tolist()))
        [1.0, 1.0078125]
    """
    x = jnp.asarray(x, jnp.float32)
    bits = jax.lax.bitcast_convert_type(x, jnp.uint32)
    noise = jax.random.bits(key, x.shape, jnp.uint32) >> jnp.uint32(16)
    rounded = (bits + noise) & jnp.uint32(0xFFFF0000)
    out = jax.lax.bitcast_convert_type(rounded, jnp.float32)
    return jnp.where(jnp.isfinite(x), out, x).astype(jnp.bfloat16)


Format = Literal["bfloat16_sr", "int8_blockwise", "int8_blockwise_sr"]
FORMATS = ("bfloat16_sr", "int8_blockwise", "int8_blockwise_sr")


@dataclasses.dataclass(frozen=True)
class StateStorage:
    """A storage policy for an optimizer-state buffer beyond a plain dtype.

    Moment buffers (``mu_dtype``/``nu_dtype`` of the Adam family, Lion's and Muon's
    ``mu_dtype``, ...) take a dtype, the strings ``"bfloat16_sr"``, ``"int8_blockwise"``
    and ``"int8_blockwise_sr"``, or one of these objects:

    * ``StateStorage("bfloat16_sr")``: bfloat16, written with stochastic rounding keyed
      by the step and the leaf's path (2 bytes per element);
    * ``StateStorage("int8_blockwise", block_size=256)``: 8-bit dynamic codes plus a
      float32 scale per block (:class:`QuantizedBlocks`, :math:`1 + 4/\\text{block\\_size}`
      bytes per element); the signed map for buffers of both signs, the unsigned map for
      buffers declared non-negative (second moments). Each element takes the nearest
      code, as in the paper;
    * ``StateStorage("int8_blockwise_sr", block_size=256)``: the same codes, drawn by
      stochastic rounding keyed by the step and the leaf's path (unbiased: an
      exponential average whose per-step change is smaller than its codes' spacing
      still moves in expectation).

    The update decodes a buffer to float32, runs the same math, and encodes the result.

    Args:
      format: ``"bfloat16_sr"``, ``"int8_blockwise"`` or ``"int8_blockwise_sr"``.
      block_size: elements per block of the 8-bit formats (a positive int).

    Returns:
      The policy (a frozen dataclass), accepted wherever a moment dtype is.

    Example::

        >>> import optxform
        >>> from optxform.tree.quantize import StateStorage
        >>> tx = optxform.adam(1e-3, mu_dtype=StateStorage("int8_blockwise", 128),
        ...                    nu_dtype="int8_blockwise")
        >>> StateStorage("int8_blockwise").block_size
        256
    """

    format: Format
    block_size: int = 256

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"Invalid storage format: {self.format!r} (one of "
                             + ", ".join(f'"{f}"' for f in FORMATS) + ")")
        if (isinstance(self.block_size, bool) or not isinstance(self.block_size, int)
                or self.block_size < 1):
            raise ValueError(f"Invalid block_size: {self.block_size!r} (a positive int)")

    @property
    def stochastic(self) -> bool:
        """Whether writing to this storage draws random bits (stochastic rounding)."""
        return self.format.endswith("_sr")

    def encode(self, x: jax.Array, signed: bool, key: jax.Array | None) -> Any:
        """``x`` in this storage (``key``: the draw of stochastic rounding)."""
        if self.format.startswith("int8"):
            return quantize_blockwise(x, signed, self.block_size, key)
        if key is None:
            return jnp.asarray(x).astype(jnp.bfloat16)
        return stochastic_round_bfloat16(x, key)

    def zeros(self, shape: tuple[int, ...], signed: bool) -> Any:
        """A buffer of zeros in this storage (what :meth:`encode` gives, without the work)."""
        if self.format == "bfloat16_sr":
            return jnp.zeros(shape, jnp.bfloat16)
        n_blocks = _blocks(math.prod(shape), self.block_size)
        zero = int(np.searchsorted(dynamic_map(signed), 0.0)) - (128 if signed else 0)
        codes = jnp.full((n_blocks, self.block_size), zero,
                         jnp.int8 if signed else jnp.uint8)
        return QuantizedBlocks(codes, jnp.zeros((n_blocks,), jnp.float32))

    def decode(self, stored: Any, shape: tuple[int, ...], dtype: Any) -> jax.Array:
        """The stored buffer as an array of ``shape`` in ``dtype``."""
        if isinstance(stored, QuantizedBlocks):
            return dequantize_blockwise(stored, shape, dtype)
        return stored.astype(dtype)


def as_storage(value: Any) -> Any:
    """A :class:`StateStorage` for its string names; any other value as it is."""
    if not isinstance(value, str):
        return value
    return StateStorage(cast(Format, value)) if value in FORMATS else value
