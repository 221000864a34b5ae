"""Sign-based updates: Rprop and Lion, as declared rules (see :mod:`optxform.rules`)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from optxform.core import GradientTransformation, ScalarOrSchedule
from optxform.core.validation import check_non_negative, check_range, concrete_value
from optxform.rules import Buffer, Hyperparameter, Leaf, Rule, Step, beta, lift
from optxform.tree.numerics import one_minus

__all__ = ["ScaleByLionState", "ScaleByRpropState", "scale_by_lion", "scale_by_rprop"]


def _open_interval(low: float, high: float):
    return lambda name, value: check_range(name, value, low, high, low_closed=False)


# --- Rprop -------------------------------------------------------------------------------


class ScaleByRpropState(NamedTuple):
    r"""The state of :func:`scale_by_rprop` (torch Rprop's ``step_size`` and ``prev``).

    Attributes:
      step_sizes: per-element step sizes :math:`\Delta`, a tree like the params, float32
        or wider (a complex param's as its real view, with a trailing axis of 2).
      prev: the previous masked gradient :math:`g'` (zero where the sign just changed), a
        tree like the params, in the param dtype.
    """

    step_sizes: Any
    prev: Any


def _rprop_leaf(x: Leaf) -> tuple[jax.Array, dict]:
    s, g = x.s, x.g
    # torch: sign = grad.mul(prev).sign(), the sign of the product (0 when it underflows),
    # then step_size.mul_(factor).clamp_(min, max), the product rounded on its own.
    sign = jnp.sign(g * x.buffers["prev"])
    factor = jnp.where(sign > 0, s["eta_plus"], jnp.where(sign < 0, s["eta_minus"], 1.0))
    step_sizes = jnp.clip(x.buffers["step_sizes"] * factor, s["min_step_size"],
                          s["max_step_size"])
    masked = jnp.where(sign < 0, 0.0, g)
    return jnp.sign(masked) * step_sizes, {"step_sizes": step_sizes, "prev": masked}


RPROP = Rule(
    name="scale_by_rprop", kind="elementwise", state=ScaleByRpropState, counts_steps=False,
    hyperparameters=(Hyperparameter("learning_rate", check_non_negative, schedule=True),
                     Hyperparameter("eta_minus", _open_interval(0.0, 1.0)),
                     Hyperparameter("eta_plus", _open_interval(1.0, float("inf"))),
                     Hyperparameter("min_step_size", check_non_negative),
                     Hyperparameter("max_step_size", check_non_negative)),
    buffers=(Buffer("step_sizes", "accumulator", fill="learning_rate"), Buffer("prev")),
    leaf=_rprop_leaf)


def scale_by_rprop(learning_rate: ScalarOrSchedule = 1e-2, eta_minus: ArrayLike = 0.5,
                   eta_plus: ArrayLike = 1.2, min_step_size: ArrayLike = 1e-6,
                   max_step_size: ArrayLike = 50.0) -> GradientTransformation:
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

    Returns:
      A :class:`GradientTransformation` whose state is a :class:`ScaleByRpropState`
        (step sizes float32 or wider, ``prev`` in the param dtype).

    Complex params follow torch: real and imaginary parts are separate elements, each
    with its own step size.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.scale_by_rprop(learning_rate=0.1)
        >>> state = tx.init({"w": jnp.zeros(2)})
        >>> for g in ([1.0, 1.0], [1.0, -1.0]):
        ...     updates, state = tx.update({"w": jnp.array(g)}, state)
        >>> updates["w"]  # same sign: the step grows by 1.2; a flip: no move
        Array([0.12, 0.  ], dtype=float32)
        >>> state.step_sizes["w"]
        Array([0.12, 0.05], dtype=float32)
    """
    low, high = concrete_value(min_step_size), concrete_value(max_step_size)
    if low is not None and high is not None and low > high:
        raise ValueError(f"Invalid min_step_size: {min_step_size!r} > max_step_size "
                         f"{max_step_size!r} (min_step_size must be <= max_step_size)")
    return lift(RPROP, learning_rate=learning_rate, eta_minus=eta_minus, eta_plus=eta_plus,
                min_step_size=min_step_size, max_step_size=max_step_size)


# --- Lion --------------------------------------------------------------------------------


class ScaleByLionState(NamedTuple):
    """The state of :func:`scale_by_lion`.

    Attributes:
      mu: the momentum :math:`m`, an EMA of the incoming updates, a tree like the params,
        in the param dtype (or ``mu_dtype``).
    """

    mu: Any


def _lion_step(st: Step) -> tuple[dict, dict]:
    h = st.h
    return {"w1": one_minus(h["b1"]), "b1": h["b1"], "w2": one_minus(h["b2"]),
            "b2": h["b2"]}, {}


def _lion_leaf(x: Leaf) -> tuple[jax.Array, dict]:
    s, g, m = x.s, x.g, x.buffers["mu"]
    return jnp.sign(s["w1"] * g + s["b1"] * m), {"mu": s["w2"] * g + s["b2"] * m}



LION = Rule(name="scale_by_lion", kind="elementwise", state=ScaleByLionState,
            counts_steps=False, hyperparameters=(beta("b1"), beta("b2")),
            buffers=(Buffer("mu", dtype_option="mu_dtype"),), per_step=_lion_step, leaf=_lion_leaf)


def scale_by_lion(b1: ArrayLike = 0.9, b2: ArrayLike = 0.99,
                  mu_dtype: DTypeLike | None = None) -> GradientTransformation:
    r"""Lion (Chen et al. 2023): the sign of an interpolation, and a slower EMA.

    .. math::

        u_t = \operatorname{sign}\big((1-\beta_1)\, g_t + \beta_1 m_{t-1}\big), \qquad
        m_t = (1-\beta_2)\, g_t + \beta_2 m_{t-1}, \quad m_0 = 0

    Equals ``optax.scale_by_lion(b1, b2)`` (whose state also carries a step count).

    Args:
      b1: :math:`\beta_1 \in [0, 1)`, the interpolation weight for the update.
      b2: :math:`\beta_2 \in [0, 1)`, the decay of the momentum.
      mu_dtype: storage dtype of the momentum; ``None``: the param dtype.

    Returns:
      A :class:`GradientTransformation` whose state is a :class:`ScaleByLionState`
        (``mu`` in the param dtype or ``mu_dtype``).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.scale_by_lion(b1=0.9, b2=0.99)
        >>> state = tx.init({"w": jnp.zeros(2)})
        >>> updates, state = tx.update({"w": jnp.array([0.5, -2.0])}, state)
        >>> updates["w"]  # the sign of (1 - b1) g
        Array([ 1., -1.], dtype=float32)
        >>> state.mu["w"]  # (1 - b2) g
        Array([ 0.005, -0.02 ], dtype=float32)
    """
    return lift(LION, b1=b1, b2=b2, mu_dtype=mu_dtype)
