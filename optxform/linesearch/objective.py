"""The objective a line search evaluates: ``value_fn(params) -> scalar`` seen on flat vectors.

Line searches and L-BFGS do their arithmetic on one flat vector (torch's ``_gather_flat_grad``
layout: leaves flattened and concatenated in tree order), in float64 if any param is float64
and float32 otherwise. This module turns the user's ``value_fn`` into functions of that flat
vector and checks, at trace time, that it returns a scalar.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from optxform import tree as otu
from optxform.core.trees import require_params

__all__: list[str] = []  # internal helpers of linesearch/ and quasi_newton/


def check_scalar_value(value: Any, who: str, what: str = "value") -> None:
    """Raise ``ValueError`` unless ``value`` is a scalar (checked on shapes, at trace time)."""
    shape = jnp.shape(value)
    if shape != ():
        raise ValueError(
            f"{who}: the objective {what} must be a scalar (shape ()), got shape {shape}; "
            "reduce the loss (e.g. with jnp.mean) before passing it"
        )


def check_value_fn(value_fn: Any, params: Any, who: str) -> None:
    """``value_fn`` must be given, callable, and return a scalar for ``params``."""
    if value_fn is None:
        raise ValueError(f"{who}: update(...) needs value_fn=, a function params -> scalar loss "
                         "(it plays the role of torch's closure; inside optax.chain or another "
                         "optax combinator, wrap the transform: optxform.to_optax(tx))")
    if not callable(value_fn):
        raise ValueError(f"{who}: value_fn must be callable, got {type(value_fn).__name__}")
    out = jax.eval_shape(value_fn, params)
    if not isinstance(out, jax.ShapeDtypeStruct):
        raise ValueError(f"{who}: value_fn must return one scalar array, got {out}")
    check_scalar_value(out, who, "value_fn(params)")


def flat_value_and_grad(value_fn: Callable, params: Any,
                        dtype) -> Callable[[jax.Array], tuple[jax.Array, jax.Array]]:
    """``x -> (f, g)``: ``value_fn`` and its gradient at the params that ``x`` encodes."""
    value_and_grad = jax.value_and_grad(value_fn)

    def evaluate(x: jax.Array) -> tuple[jax.Array, jax.Array]:
        f, g = value_and_grad(otu.unravel_like(x, params))
        return jnp.asarray(f).astype(dtype), otu.ravel(g, dtype)

    return evaluate


def flat_value(value_fn: Callable, params: Any, dtype) -> Callable[[jax.Array], jax.Array]:
    """``x -> f``: ``value_fn`` alone (no gradient) at the params that ``x`` encodes."""

    def evaluate(x: jax.Array) -> jax.Array:
        return jnp.asarray(value_fn(otu.unravel_like(x, params))).astype(dtype)

    return evaluate


def all_finite(*arrays: jax.Array) -> jax.Array:
    """A scalar bool: every element of every array is finite."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in arrays]))


class SearchStart(NamedTuple):
    """Where a line search starts, on flat vectors: ``x`` + step * ``direction``."""

    dtype: Any
    value_and_grad: Callable[[jax.Array], tuple[jax.Array, jax.Array]]
    x: jax.Array          # the params, flat
    direction: jax.Array  # the incoming updates, flat
    value: jax.Array      # f(x)
    grad: jax.Array       # grad f(x), flat
    evals: jax.Array      # int32: evaluations spent to get value and grad (0 or 1)


def flat_problem(updates: Any, params: Any, value_fn: Any, who: str):
    """Check ``params`` and ``value_fn`` for ``who`` and put the problem on flat vectors.

    Returns ``(dtype, value_and_grad, x, flat_updates)``: the common float dtype of the
    params, ``x -> (f, grad f)`` on flat vectors, the params and the updates flattened.
    """
    require_params(params, updates, who)
    check_value_fn(value_fn, params, who)
    dtype = otu.flat_dtype(params)
    return (dtype, flat_value_and_grad(value_fn, params, dtype), otu.ravel(params, dtype),
            otu.ravel(updates, dtype))


def search_start(updates: Any, params: Any, value: Any, grad: Any, value_fn: Any,
                 who: str) -> SearchStart:
    """Check the extra arguments of a line search's ``update`` and flatten its start point.

    ``value`` and ``grad`` at ``params`` are used when both are given; otherwise one
    evaluation of ``value_fn`` provides them.
    """
    dtype, value_and_grad, x, direction = flat_problem(updates, params, value_fn, who)
    if value is None or grad is None:
        f0, g0 = value_and_grad(x)
        evals = jnp.ones([], jnp.int32)
    else:
        check_scalar_value(value, who)
        f0, g0 = jnp.asarray(value).astype(dtype), otu.ravel(grad, dtype)
        evals = jnp.zeros([], jnp.int32)
    return SearchStart(dtype, value_and_grad, x, direction, f0, g0, evals)
