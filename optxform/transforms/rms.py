"""Second-moment scalings without a first moment: RMSprop, Adagrad, Adadelta.

The accumulators of squared gradients are kept in float32 or wider (the param dtype when
that is wider): in float16 a squared gradient or ``eps=1e-8`` underflows to zero and a zero
gradient would give ``0 / 0``. For float32 params this is exactly torch's layout. The
updates leave in the dtype they arrived in.

The arithmetic follows torch's kernels operation by operation (``mul_`` then the fused
multiply-add of ``addcmul_``, ``lerp_``'s two branches, ``sqrt`` then ``add_(eps)``), so
float32 trajectories agree with ``torch.optim`` to the last bit or nearly.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optxform import tree as otu
from optxform.core import GradientTransformation
from optxform.core.validation import check_non_negative, check_range

__all__ = [
    "ScaleByAdadeltaState", "ScaleByAdagradState", "ScaleByCenteredRmsState",
    "ScaleByRmsState", "scale_by_adadelta", "scale_by_adagrad", "scale_by_rms",
]


def _accumulator_dtype(x) -> Any:
    """float32 or wider: the dtype second-moment accumulators are kept in."""
    return otu.at_least_float32(jnp.asarray(x).dtype)


def _accumulators_like(params, fill_value=0.0):
    return otu.tree_map(
        lambda p: jnp.full(jnp.shape(p), fill_value, _accumulator_dtype(p)), params)


def _ema_of_square(nu, g, decay):
    """torch's ``nu.mul_(decay).addcmul_(g, g, value=1 - decay)``: round ``decay * nu``,
    round ``(1 - decay) * g``, then one fused multiply-add with ``g``."""
    kept = otu.unfused(otu.as_dtype_of(decay, nu) * nu)
    return kept + otu.unfused(otu.as_dtype_of(1.0 - decay, nu) * g) * g


def _lerp(start, end, weight):
    """torch's ``start.lerp_(end, weight)`` for a scalar weight (its two-branch formula)."""
    w = otu.as_dtype_of(weight, start)
    one = jnp.ones([], start.dtype)
    return jnp.where(jnp.abs(w) < 0.5,
                     start + w * (end - start),
                     end - (end - start) * (one - w))


class ScaleByRmsState(NamedTuple):
    nu: Any  # EMA of squared updates, float32 or wider


class ScaleByCenteredRmsState(NamedTuple):
    mu: Any  # EMA of updates (centered only), float32 or wider
    nu: Any  # EMA of squared updates, float32 or wider


def scale_by_rms(decay=0.99, eps=1e-8, eps_in_sqrt: bool = False, centered: bool = False,
                 initial_scale=0.0) -> GradientTransformation:
    r"""Divide by the root of an EMA of squared updates (RMSprop's scaling).

    .. math::

        \nu_t &= \rho\,\nu_{t-1} + (1-\rho)\, g_t^2, \qquad \nu_0 = \text{initial\_scale} \\
        \mu_t &= \mu_{t-1} + (1-\rho)(g_t - \mu_{t-1}) \quad \text{(centered only)} \\
        u_t &= g_t / (\sqrt{\nu_t - \mu_t^2} + \epsilon)
               \quad\text{or, with eps\_in\_sqrt,}\quad
               g_t / \sqrt{\nu_t - \mu_t^2 + \epsilon}

    (:math:`\mu \equiv 0` when not centered.) The default, eps outside the root, is torch's
    ``RMSprop`` convention (``alpha`` = ``decay``); optax puts eps inside the root:
    ``scale_by_rms(decay=0.9, eps_in_sqrt=True)`` equals ``optax.scale_by_rms()``, and with
    ``centered=True`` it equals ``optax.scale_by_stddev()``.

    Args:
      decay: :math:`\rho \in [0, 1]` (torch ``alpha``).
      eps: :math:`\epsilon \ge 0`.
      eps_in_sqrt: add eps under the square root (optax) rather than after it (torch).
      centered: subtract the squared EMA of updates (an estimate of the variance).
      initial_scale: the initial value of :math:`\nu` (torch: 0).

    State: :class:`ScaleByRmsState` or, centered, :class:`ScaleByCenteredRmsState`; both
    accumulators are float32 or wider.
    """
    check_range("decay", decay, 0.0, 1.0, high_closed=True)
    check_non_negative("eps", eps)
    check_non_negative("initial_scale", initial_scale)

    def init(params):
        nu = _accumulators_like(params, initial_scale)
        if centered:
            return ScaleByCenteredRmsState(mu=_accumulators_like(params), nu=nu)
        return ScaleByRmsState(nu=nu)

    def update(updates, state, params=None, **extra):
        del params, extra
        grads = otu.tree_map(lambda g, n: g.astype(n.dtype), updates, state.nu)
        nu = otu.tree_map(lambda n, g: _ema_of_square(n, g, decay), state.nu, grads)
        if centered:
            mu = otu.tree_map(lambda m, g: _lerp(m, g, 1.0 - decay), state.mu, grads)
            # torch: square_avg.addcmul(grad_avg, grad_avg, value=-1): one fused rounding.
            variance = otu.tree_map(lambda n, m: n - m * m, nu, mu)
        else:
            mu, variance = None, nu

        def scaled(g, v, u):
            e = otu.as_dtype_of(eps, v)
            if eps_in_sqrt:
                out = g * jax.lax.rsqrt(v + e)
            else:
                out = g / (jnp.sqrt(v) + e)
            return out.astype(u.dtype)

        updates = otu.tree_map(scaled, grads, variance, updates)
        if centered:
            return updates, ScaleByCenteredRmsState(mu=mu, nu=nu)
        return updates, ScaleByRmsState(nu=nu)

    return GradientTransformation(init, update)


class ScaleByAdagradState(NamedTuple):
    sum: Any  # running sum of squared updates, float32 or wider


def scale_by_adagrad(initial_accumulator_value=0.0, eps=1e-10) -> GradientTransformation:
    r"""Divide by the root of the running sum of squared updates (torch's Adagrad scaling).

    .. math::

        s_t = s_{t-1} + g_t^2, \quad s_0 = \text{initial\_accumulator\_value}, \qquad
        u_t = g_t / (\sqrt{s_t} + \epsilon)

    torch's ``lr_decay`` is a learning-rate schedule, not part of this block: see
    :func:`optxform.adagrad`. optax's ``scale_by_rss`` differs: eps inside the root, and a
    zero accumulator gives a zero update.

    Args:
      initial_accumulator_value: :math:`s_0 \ge 0`.
      eps: :math:`\epsilon \ge 0`, added after the square root.

    State: :class:`ScaleByAdagradState`; ``sum`` is float32 or wider.
    """
    check_non_negative("initial_accumulator_value", initial_accumulator_value)
    check_non_negative("eps", eps)

    def init(params):
        return ScaleByAdagradState(sum=_accumulators_like(params, initial_accumulator_value))

    def update(updates, state, params=None, **extra):
        del params, extra

        # torch: state_sum.addcmul_(g, g, value=1) (one fused rounding), then
        # g / (sqrt(sum) + eps).
        new_sum = otu.tree_map(lambda s, g: s + g.astype(s.dtype) * g.astype(s.dtype),
                               state.sum, updates)
        new_updates = otu.tree_map(
            lambda g, s: (g.astype(s.dtype) / (jnp.sqrt(s) + otu.as_dtype_of(eps, s))
                          ).astype(g.dtype),
            updates, new_sum)
        return new_updates, ScaleByAdagradState(sum=new_sum)

    return GradientTransformation(init, update)


class ScaleByAdadeltaState(NamedTuple):
    square_avg: Any  # EMA of squared updates, float32 or wider
    acc_delta: Any   # EMA of squared outgoing deltas, float32 or wider


def scale_by_adadelta(rho=0.9, eps=1e-6) -> GradientTransformation:
    r"""Zeiler's Adadelta scaling, in torch's form.

    .. math::

        v_t &= \rho\, v_{t-1} + (1-\rho)\, g_t^2 \\
        \Delta_t &= \frac{\sqrt{a_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}}\; g_t \\
        a_t &= \rho\, a_{t-1} + (1-\rho)\, \Delta_t^2, \qquad u_t = \Delta_t

    torch then applies ``-lr * Delta`` (lr 1.0 by default), which the alias does with
    ``scale_by_learning_rate``. ``optax.scale_by_adadelta`` computes the same quantities.

    Args:
      rho: :math:`\rho \in [0, 1]`.
      eps: :math:`\epsilon \ge 0`, inside both square roots.

    State: :class:`ScaleByAdadeltaState`; both EMAs are float32 or wider.
    """
    check_range("rho", rho, 0.0, 1.0, high_closed=True)
    check_non_negative("eps", eps)

    def init(params):
        return ScaleByAdadeltaState(square_avg=_accumulators_like(params),
                                    acc_delta=_accumulators_like(params))

    def update(updates, state, params=None, **extra):
        del params, extra
        grads = otu.tree_map(lambda g, v: g.astype(v.dtype), updates, state.square_avg)
        square_avg = otu.tree_map(lambda v, g: _ema_of_square(v, g, rho),
                                  state.square_avg, grads)

        def delta(v, a, g):
            e = otu.as_dtype_of(eps, v)
            # torch: acc_delta.add(eps).sqrt_().div_(std).mul_(grad), each op rounded.
            return otu.unfused((jnp.sqrt(a + e) / jnp.sqrt(v + e)) * g)

        deltas = otu.tree_map(delta, square_avg, state.acc_delta, grads)
        acc_delta = otu.tree_map(lambda a, d: _ema_of_square(a, d, rho), state.acc_delta,
                                 deltas)
        updates = otu.tree_map(lambda d, u: d.astype(u.dtype), deltas, updates)
        return updates, ScaleByAdadeltaState(square_avg=square_avg, acc_delta=acc_delta)

    return GradientTransformation(init, update)
