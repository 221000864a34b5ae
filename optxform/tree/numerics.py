r"""Shared numerics: torch's rounding of moment updates, bias corrections, host precision.

Every update rule that keeps moments uses these, so that a rule written once rounds as
``torch.optim``'s single-tensor CPU kernels do:

* :func:`lerp` is ``start.lerp_(end, weight)`` with torch's two-branch formula;
* :func:`ema_of_square` is ``v.mul_(decay).addcmul_(g, g, value=1 - decay)`` with its
  three roundings;
* :func:`bias_correction` is :math:`1 - \beta^t` as ``-expm1(t log beta)``: torch computes
  it in float64 on the host, and in float32 the plain ``1 - beta**t`` loses up to five
  digits at small ``t``;
* :func:`one_minus` and :func:`log` compute a Python number's ``1 - x`` and ``log x`` in
  float64 (as torch does on the host) and an array's in float32;
* :func:`wide_log` is ``log x`` for a step scalar (float64 for a Python number);
* :func:`sma_length` is RAdam's length of the approximated simple moving average;
* :func:`step_dtype` is the dtype of step scalars computed from the counter: float64 when
  ``jax_enable_x64`` is on (so float64 params get float64 bias corrections), else float32.

Scalars arrive here either as Python numbers (a hyperparameter given at construction) or
as arrays (injected, possibly traced); leaf arrays are float32 or wider.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optxform.tree.math import unfused

__all__: list[str] = []  # internal helpers for update rules


def is_number(x: Any) -> bool:
    """A Python int or float (not a bool): a value known at construction."""
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def is_zero(x: Any) -> bool:
    """True only for the Python number 0 (an array may be injected later: never 'zero')."""
    return is_number(x) and x == 0


def as_f32(x: Any) -> jax.Array:
    return jnp.asarray(x, jnp.float32)


def step_dtype() -> Any:
    """float64 with ``jax_enable_x64`` on, else float32: the widest float a step scalar has."""
    # jax's Config stub does not list its flags as attributes; the attribute is real.
    return jnp.float64 if jax.config.jax_enable_x64 else jnp.float32  # type: ignore[attr-defined]


def one_minus(x: Any) -> float | jax.Array:
    """``1 - x`` in float64 for a Python number (as torch computes it), else in float32.

    A Python number's result stays a Python float, so that it is rounded once, to the
    dtype the math runs in (float32, or float64 for float64 params).
    """
    return 1.0 - x if is_number(x) else 1.0 - as_f32(x)


def log(x: Any) -> jax.Array:
    """``log(x)`` (``-inf`` at 0); a Python number's log is taken in float64."""
    if is_number(x):
        return as_f32(math.log(x) if x > 0 else -math.inf)
    return jnp.log(as_f32(x))


def wide_log(x: Any) -> float | jax.Array:
    """``log(x)`` as wide as a step scalar gets: a Python number's in float64, kept a Python
    float (``-inf`` at 0), so that it is rounded once, to the compute dtype; an array's in
    :func:`step_dtype`."""
    if is_number(x):
        return math.log(x) if x > 0 else -math.inf
    return jnp.log(jnp.asarray(x, step_dtype()))


def bias_correction(decay: Any, t: jax.Array) -> jax.Array:
    """``1 - decay ** t`` in :func:`step_dtype`, accurate where it cancels
    (``-expm1(t log decay)``)."""
    dtype = step_dtype()
    log_decay = (math.log(decay) if decay > 0 else -math.inf) if is_number(decay) else (
        jnp.log(jnp.asarray(decay, dtype)))
    return -jnp.expm1(t.astype(dtype) * jnp.asarray(log_decay, dtype))


def lerp(start: jax.Array, end: jax.Array, weight: jax.Array) -> jax.Array:
    """torch's ``start.lerp_(end, weight)`` for a scalar ``weight`` of ``start``'s dtype.

    ``start + w (end - start)`` for ``|w| < 0.5``, else ``end - (end - start)(1 - w)``
    (so ``w = 1`` gives ``end`` exactly): one multiply-add either way. A known weight (a
    number, or an array that is not traced) picks its branch while tracing, so the step
    holds one formula rather than both and a select per leaf.
    """
    if not isinstance(weight, jax.core.Tracer):
        w = np.asarray(weight, jnp.result_type(start))
        if abs(float(w)) < 0.5:
            return start + w * (end - start)
        return end + (w - w.dtype.type(1)) * (end - start)
    small = jnp.abs(weight) < 0.5
    coeff = jnp.where(small, weight, weight - 1)
    base = jnp.where(small, start, end)
    return base + coeff * (end - start)


def ema_of_square(v: jax.Array, g: jax.Array, decay: jax.Array,
                  complement: jax.Array) -> jax.Array:
    """torch's ``v.mul_(decay).addcmul_(g, g, value=complement)``, ``complement = 1 - decay``.

    ``decay * v`` and ``complement * g`` are rounded on their own, then one fused
    multiply-add with ``g``.
    """
    return unfused(decay * v) + unfused(complement * g) * g


def sma_length(rho_inf, x, t):
    r"""RAdam's :math:`\rho_t = \rho_\infty - 2t\beta_2^t / (1 - \beta_2^t)`; ``x = -log(beta2)``.

    For :math:`\beta_2 = 0.999` the two terms are ~2000 while :math:`\rho_t \approx t`, so in
    float32 the plain formula loses ~3e-4 absolute (torch works in float64). While
    :math:`tx \le 1` we use the cancellation-free series (from :math:`y/(e^y - 1) =
    \sum_n B_n y^n / n!`)

    .. math::

        \rho_t = t - \frac{x(t^2 - 1)}{6} + \frac{x^3(t^4 - 1)}{360}
                 - \frac{x^5(t^6 - 1)}{15120} + \frac{x^7(t^8 - 1)}{604800} - \dots

    whose truncation error is up to 5e-8 relative: a float64 ``t`` takes the plain formula,
    whose cancellation then costs ~1e-13 at most.
    """
    tx = t * x
    direct = rho_inf - 2.0 * t / jnp.expm1(tx)
    if jnp.result_type(t) == jnp.float64:
        return direct
    x2, t2 = x * x, t * t
    series = t - x * (t2 - 1.0) / 6.0 + x * x2 * (t2 * t2 - 1.0) / 360.0 \
        - x * x2 * x2 * (t2 * t2 * t2 - 1.0) / 15120.0 \
        + x * x2 * x2 * x2 * (t2 * t2 * t2 * t2 - 1.0) / 604800.0
    return jnp.where(tx <= 1.0, series, direct)


def divide(x: jax.Array, scalar: jax.Array) -> jax.Array:
    """``x / scalar`` correctly rounded, as torch's ``div_`` by a number is.

    XLA rewrites a division by a broadcast scalar into a multiplication by its reciprocal,
    which is one ulp off for about a quarter of float32 elements. Making the divisor
    depend on ``x`` (a select that returns it either way) keeps a true division.
    """
    return x / jnp.where(x == x, scalar, scalar)


def one_matrix_per_call(decomposition):
    """``decomposition`` (a LAPACK-backed ``jnp.linalg`` function of one matrix), made to
    take one matrix per call when vmapped: a batch runs as a loop of unbatched calls.

    A rule that batches same-shape leaves vmaps its math, which hands LAPACK a batch of
    matrices; jaxlib's CPU kernels then split the batch over XLA's intra-op thread pool
    and wait for it from a thread of that same pool, which can deadlock (seen with
    batched QR inside SOAP's basis refresh, on 2 cores). One matrix per call never waits
    on the pool. The results are those of the batched call, bit for bit.

    Example::

        >>> import jax, jax.numpy as jnp
        >>> qr = one_matrix_per_call(lambda a: jnp.linalg.qr(a)[0])
        >>> jax.vmap(qr)(jnp.stack([jnp.eye(2), 2 * jnp.eye(2)])).shape
        (2, 2, 2)
    """
    return jax.custom_batching.sequential_vmap(decomposition)
