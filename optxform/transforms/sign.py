"""Sign-based updates: Rprop and Lion."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp

from optxform import tree as otu
from optxform.core import GradientTransformation, ScalarOrSchedule
from optxform.core.counters import zero_count
from optxform.core.validation import (check_learning_rate, check_non_negative, check_range,
                                      concrete_value)

__all__ = ["ScaleByLionState", "ScaleByRpropState", "scale_by_lion", "scale_by_rprop"]


class ScaleByRpropState(NamedTuple):
    step_sizes: Any  # per-element step sizes, float32 or wider
    prev: Any        # the previous (masked) update, in the update dtype


def scale_by_rprop(learning_rate: ScalarOrSchedule = 1e-2, eta_minus=0.5, eta_plus=1.2,
                   min_step_size=1e-6, max_step_size=50.0) -> GradientTransformation:
    r"""Resilient backprop (Riedmiller & Braun 1993), exactly as ``torch.optim.Rprop``.

    Per element, with :math:`s = \operatorname{sign}(g_t\, g_{t-1}')`:

    .. math::

        \Delta_t &= \operatorname{clip}\big(\Delta_{t-1}\cdot
                    \{\eta^+ \text{ if } s>0;\ \eta^- \text{ if } s<0;\ 1 \text{ if } s=0\},
                    \ \Delta_{\min},\ \Delta_{\max}\big),\qquad \Delta_0 = \text{lr} \\
        g_t' &= 0 \text{ if } s<0 \text{ else } g_t \\
        u_t &= \operatorname{sign}(g_t')\,\Delta_t

    :math:`g'_{t-1}` is the previous *masked* gradient (0 at the start), so after a sign
    change the next step neither grows nor shrinks the step size. The output is the
    signed step (a gradient-like direction); the alias negates it with ``scale(-1.)``.
    ``learning_rate`` is only the initial step size (a schedule is read at step 0).
    ``optax.scale_by_rprop`` adapts the step sizes alike (but clamps them only when the
    sign product is non-zero) and emits the update computed one step earlier (zero on the
    first step, and zero where the sign just changed), so its trajectories lag torch's.

    Args:
      learning_rate: the initial step size :math:`\Delta_0`.
      eta_minus, eta_plus: the multiplicative factors, ``0 < eta_minus < 1 < eta_plus``.
      min_step_size, max_step_size: the step-size bounds, ``0 <= min <= max``.

    State: :class:`ScaleByRpropState`; step sizes float32 or wider, ``prev`` in the
    update dtype.
    """
    check_learning_rate(learning_rate)
    check_range("eta_minus", eta_minus, 0.0, 1.0, low_closed=False)
    check_range("eta_plus", eta_plus, 1.0, float("inf"), low_closed=False)
    check_non_negative("min_step_size", min_step_size)
    check_non_negative("max_step_size", max_step_size)
    low, high = concrete_value(min_step_size), concrete_value(max_step_size)
    if low is not None and high is not None and low > high:
        raise ValueError(f"Invalid min_step_size: {min_step_size!r} > max_step_size "
                         f"{max_step_size!r} (min_step_size must be <= max_step_size)")

    def init(params):
        lr = learning_rate(zero_count()) if callable(learning_rate) else learning_rate
        step_sizes = otu.tree_map(
            lambda p: jnp.full(jnp.shape(p), lr, otu.at_least_float32(p.dtype)),
            params)
        return ScaleByRpropState(step_sizes=step_sizes, prev=otu.zeros_like(params))

    def update(updates, state, params=None, **extra):
        del params, extra

        # torch: sign = grad.mul(prev).sign(), the sign of the product (0 when it
        # underflows), then step_size.mul_(factor).clamp_(min, max).
        signs = otu.tree_map(lambda g, prev: jnp.sign(g * prev.astype(g.dtype)),
                             updates, state.prev)

        def new_step_size(step, s):
            factor = jnp.where(s > 0, otu.as_dtype_of(eta_plus, step),
                               jnp.where(s < 0, otu.as_dtype_of(eta_minus, step),
                                         jnp.ones([], step.dtype)))
            return jnp.clip(step * factor, otu.as_dtype_of(min_step_size, step),
                            otu.as_dtype_of(max_step_size, step))

        new_steps = otu.tree_map(new_step_size, state.step_sizes, signs)
        masked = otu.tree_map(lambda g, s: jnp.where(s < 0, jnp.zeros([], g.dtype), g),
                              updates, signs)
        new_updates = otu.tree_map(
            lambda g, step: (jnp.sign(g).astype(step.dtype) * step).astype(g.dtype),
            masked, new_steps)
        return new_updates, ScaleByRpropState(step_sizes=new_steps,
                                              prev=otu.cast_like(masked, state.prev))

    return GradientTransformation(init, update)


class ScaleByLionState(NamedTuple):
    mu: Any  # EMA of updates, in the param dtype


def scale_by_lion(b1=0.9, b2=0.99) -> GradientTransformation:
    r"""Lion (Chen et al. 2023): the sign of an interpolation, and a slower EMA.

    .. math::

        u_t = \operatorname{sign}\big((1-\beta_1)\, g_t + \beta_1 m_{t-1}\big), \qquad
        m_t = (1-\beta_2)\, g_t + \beta_2 m_{t-1}, \quad m_0 = 0

    Equals ``optax.scale_by_lion(b1, b2)`` (whose state also carries a step count).

    Args:
      b1: :math:`\beta_1 \in [0, 1)`, the interpolation weight for the update.
      b2: :math:`\beta_2 \in [0, 1)`, the decay of the momentum.

    State: :class:`ScaleByLionState`; ``mu`` in the param dtype.
    """
    check_range("b1", b1, 0.0, 1.0)
    check_range("b2", b2, 0.0, 1.0)

    def init(params):
        return ScaleByLionState(mu=otu.zeros_like(params))

    def update(updates, state, params=None, **extra):
        del params, extra

        def direction(g, m):
            m = m.astype(g.dtype)
            return jnp.sign(otu.as_dtype_of(1.0 - b1, g) * g + otu.as_dtype_of(b1, g) * m)

        def moment(m, g):
            g = g.astype(m.dtype)
            return otu.as_dtype_of(1.0 - b2, m) * g + otu.as_dtype_of(b2, m) * m

        new_updates = otu.tree_map(direction, updates, state.mu)
        mu = otu.tree_map(moment, state.mu, updates)
        return new_updates, ScaleByLionState(mu=mu)

    return GradientTransformation(init, update)
