"""Leaf-wise arithmetic on pytrees, so that transforms read like their update rule.

Conventions: ``None`` leaves are skipped (they stay ``None``); a scalar multiplier is cast to
each leaf's dtype, so multiplying a bfloat16 tree by a float32 learning rate keeps
bfloat16 (this also keeps strict dtype promotion happy).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

_is_none = lambda x: x is None  # noqa: E731


def tree_map(fn: Callable, tree: Any, *rest: Any) -> Any:
    """``jax.tree.map`` that leaves ``None`` leaves of ``tree`` as ``None``."""
    return jax.tree.map(lambda x, *r: None if x is None else fn(x, *r), tree, *rest,
                        is_leaf=_is_none)


def leaves(tree: Any) -> list:
    return jax.tree.leaves(tree)


def zeros_like(tree: Any, dtype=None) -> Any:
    """Zeros shaped like each leaf, in ``dtype`` (default: the leaf's own dtype)."""
    return tree_map(lambda x: jnp.zeros(jnp.shape(x), dtype or jnp.asarray(x).dtype), tree)


def full_like(tree: Any, fill_value, dtype=None) -> Any:
    return tree_map(lambda x: jnp.full(jnp.shape(x), fill_value, dtype or jnp.asarray(x).dtype),
                    tree)


def cast(tree: Any, dtype) -> Any:
    """Cast every leaf to ``dtype``; ``dtype=None`` leaves the tree unchanged."""
    if dtype is None:
        return tree
    return tree_map(lambda x: jnp.asarray(x).astype(dtype), tree)


def cast_like(tree: Any, reference: Any) -> Any:
    """Cast each leaf of ``tree`` to the dtype of the matching leaf of ``reference``."""
    return tree_map(lambda x, r: x.astype(jnp.asarray(r).dtype), tree, reference)


def as_dtype_of(scalar, leaf) -> jax.Array:
    """``scalar`` as an array of ``leaf``'s dtype (for scaling without promotion)."""
    return jnp.asarray(scalar).astype(jnp.asarray(leaf).dtype)


def scale(scalar, tree: Any) -> Any:
    """``scalar * tree``, keeping each leaf's dtype."""
    return tree_map(lambda x: x * as_dtype_of(scalar, x), tree)


def add(a: Any, b: Any) -> Any:
    return tree_map(lambda x, y: x + y, a, b)


def sub(a: Any, b: Any) -> Any:
    return tree_map(lambda x, y: x - y, a, b)


def mul(a: Any, b: Any) -> Any:
    return tree_map(lambda x, y: x * y, a, b)


def div(a: Any, b: Any) -> Any:
    return tree_map(lambda x, y: x / y, a, b)


def add_scaled(a: Any, scalar, b: Any) -> Any:
    """``a + scalar * b``, keeping the dtypes of ``a``."""
    return tree_map(lambda x, y: x + as_dtype_of(scalar, x) * y.astype(x.dtype), a, b)


def neg(tree: Any) -> Any:
    return tree_map(lambda x: -x, tree)


def where(condition, on_true: Any, on_false: Any) -> Any:
    """Select whole trees with a scalar boolean ``condition`` (jit-safe)."""
    return tree_map(lambda x, y: jnp.where(condition, x, y), on_true, on_false)


def _accum_dtype_of(*trees: Any) -> Any:
    """float64 if any leaf is float64, else float32: the dtype reductions accumulate in."""
    wide = any(jnp.asarray(x).dtype == jnp.float64 for t in trees for x in leaves(t))
    return jnp.dtype(jnp.float64) if wide else jnp.dtype(jnp.float32)


def _sum_parts(parts: list, dtype) -> jax.Array:
    return jnp.sum(jnp.stack(parts)) if parts else jnp.zeros([], dtype)


def vdot(a: Any, b: Any) -> jax.Array:
    """Sum over leaves of ``<a, b>``, accumulated in float32 (float64 if any leaf is)."""
    dtype = _accum_dtype_of(a, b)
    return _sum_parts([jnp.vdot(x.astype(dtype), y.astype(dtype))
                       for x, y in zip(leaves(a), leaves(b))], dtype)


def sum_of_squares(tree: Any) -> jax.Array:
    """Sum of squares of all elements, accumulated in float32 (float64 if any leaf is)."""
    dtype = _accum_dtype_of(tree)
    return _sum_parts([jnp.sum(jnp.square(x.astype(dtype))) for x in leaves(tree)], dtype)


def global_norm(tree: Any) -> jax.Array:
    """The l2 norm of all leaves together (optax.global_norm)."""
    return jnp.sqrt(sum_of_squares(tree))


def max_abs(tree: Any) -> jax.Array:
    parts = [jnp.max(jnp.abs(x)).astype(jnp.float32) for x in leaves(tree) if jnp.size(x)]
    return jnp.max(jnp.stack(parts)) if parts else jnp.zeros([], jnp.float32)


def all_finite(tree: Any) -> jax.Array:
    """A scalar bool: every element of every leaf is finite."""
    parts = [jnp.all(jnp.isfinite(x)) for x in leaves(tree)]
    return jnp.all(jnp.stack(parts)) if parts else jnp.asarray(True)


def flat_dtype(tree: Any) -> Any:
    """The dtype for solver math on a flattened tree: float64 if any leaf is, else float32."""
    wide = any(jnp.asarray(x).dtype == jnp.float64 for x in leaves(tree))
    return jnp.dtype(jnp.float64) if wide else jnp.dtype(jnp.float32)


def ravel(tree: Any, dtype=None) -> jax.Array:
    """All leaves flattened and concatenated into one vector of ``dtype`` (default: flat_dtype).

    Like ``jax.flatten_util.ravel_pytree`` but with an explicit dtype (strict-promotion safe);
    ``None`` leaves are skipped, an empty tree gives a vector of length 0.
    """
    dtype = flat_dtype(tree) if dtype is None else dtype
    parts = [jnp.ravel(jnp.asarray(x)).astype(dtype) for x in leaves(tree)]
    return jnp.concatenate(parts) if parts else jnp.zeros([0], dtype)


def unravel_like(vector: jax.Array, reference: Any) -> Any:
    """The inverse of :func:`ravel`: split ``vector`` into leaves shaped and typed like ``reference``."""
    ref_leaves, treedef = jax.tree.flatten(reference)
    out, offset = [], 0
    for x in ref_leaves:
        x = jnp.asarray(x)
        out.append(vector[offset:offset + x.size].reshape(x.shape).astype(x.dtype))
        offset += x.size
    return jax.tree.unflatten(treedef, out)


def real_view(x: jax.Array) -> jax.Array:
    """``x``, or for a complex ``x`` its real view: a trailing axis of 2 holding the real and
    imaginary parts, as ``torch.view_as_real`` (how torch's optimizers see complex params)."""
    return jnp.stack([jnp.real(x), jnp.imag(x)], axis=-1) if jnp.iscomplexobj(x) else x


def complex_from_real_view(x: jax.Array) -> jax.Array:
    """The complex array whose :func:`real_view` is ``x`` (trailing axis of 2)."""
    return jax.lax.complex(x[..., 0], x[..., 1])


def unfused(x: jax.Array) -> jax.Array:
    """``x`` unchanged, rounded on its own: XLA will not fuse it into a multiply-add.

    XLA on CPU contracts ``a * b + c`` into one fused multiply-add (a single rounding).
    Where torch rounds the product first (``buf.mul_(m).add_(g)``), write
    ``unfused(m * b) + g`` to get torch's two roundings bit for bit. (An identity select
    that the compiler cannot see through; NaN stays NaN, -0.0 stays -0.0.)
    """
    x = jnp.asarray(x)
    # lax rather than jnp.where: one traced select, not an inlined jnp function per use
    return jax.lax.select(jax.lax.eq(x, x), x, jax.lax.full_like(x, jnp.nan))


def at_least_float32(dtype) -> Any:
    """``dtype`` widened to float32 if narrower (bf16/f16/ints -> float32; f64 stays).

    Strict-promotion safe (``jnp.promote_types(bfloat16, float32)`` raises under
    ``jax_numpy_dtype_promotion='strict'``); for accumulators and averages.
    """
    dtype = jnp.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        return dtype
    if jnp.issubdtype(dtype, jnp.floating) and dtype.itemsize >= 4:
        return dtype
    return jnp.dtype(jnp.float32)


def wider_dtype(a, b) -> Any:
    """The dtype to combine ``a`` and ``b`` dtypes in, without implicit promotion.

    The larger itemsize wins; two different dtypes of the same size (bfloat16 and float16)
    meet in float32. Strict-promotion safe (as ``apply_updates`` adds params and updates).
    """
    a, b = jnp.dtype(a), jnp.dtype(b)
    if a == b:
        return a
    if a.itemsize != b.itemsize:
        return a if a.itemsize > b.itemsize else b
    return jnp.dtype(jnp.float32)
