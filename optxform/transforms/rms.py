r"""Second-moment scalings without a first moment: RMSprop, Adagrad, Adadelta.

Each block is a declared elementwise :class:`~optxform.rules.Rule` (per-step scalars, then
per-leaf math) lifted into a transform by :func:`~optxform.rules.lift`, which handles the
tree mapping, complex params (torch's ``view_as_real`` convention), ``None`` gradient
leaves and the storage dtypes.

The accumulators of squared gradients are kept in float32 or wider (the param dtype when
that is wider): in float16 a squared gradient or ``eps=1e-8`` underflows to zero and a zero
gradient would give ``0 / 0``. For float32 params this is exactly torch's layout. The
updates leave in the dtype they arrived in.

The arithmetic follows torch's kernels operation by operation (``mul_`` then the fused
multiply-add of ``addcmul_``, ``lerp_``'s two branches, ``sqrt`` then ``add_(eps)``; the
shared helpers are in ``optxform/tree/numerics.py``), so float32 trajectories agree with
``torch.optim`` to the last bit or nearly.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from optxform.core import GradientTransformation
from optxform.core.validation import check_flag, check_non_negative, check_range
from optxform.rules import Buffer, Hyperparameter, Leaf, Rule, Step, lift
from optxform.tree.math import unfused
from optxform.tree.numerics import ema_of_square, lerp, one_minus

__all__ = [
    "ScaleByAdadeltaState", "ScaleByAdagradState", "ScaleByCenteredRmsState",
    "ScaleByRmsState", "scale_by_adadelta", "scale_by_adagrad", "scale_by_rms",
]


def _decay(name: str) -> Hyperparameter:
    """A decay rate in :math:`[0, 1]` (1 keeps the accumulator as it is)."""
    return Hyperparameter(name, lambda n, v: check_range(n, v, 0.0, 1.0, high_closed=True))


def _non_negative(name: str) -> Hyperparameter:
    return Hyperparameter(name, check_non_negative)


def _decay_scalars(decay: Any) -> dict:
    """The weights an EMA of squares uses: ``decay`` and ``1 - decay`` (host precision)."""
    return {"decay": decay, "w": one_minus(decay)}


# --- RMSprop -----------------------------------------------------------------------------


class ScaleByRmsState(NamedTuple):
    r"""The state of :func:`scale_by_rms` (not centered).

    Attributes:
      nu: the EMA of squared updates :math:`\nu` (torch's ``square_avg``), a tree like the
        params, float32 or wider (or ``nu_dtype``; a complex param's as its real view,
        with a trailing axis of 2).
    """

    nu: Any


class ScaleByCenteredRmsState(NamedTuple):
    r"""The state of :func:`scale_by_rms` with ``centered=True``.

    Attributes:
      mu: the EMA of updates :math:`\mu` (torch's ``grad_avg``), a tree like the params,
        float32 or wider (or ``nu_dtype``).
      nu: the EMA of squared updates :math:`\nu` (torch's ``square_avg``), a tree like the
        params, float32 or wider (or ``nu_dtype``).
    """

    mu: Any
    nu: Any


def _rms_step(st: Step) -> tuple[dict, dict]:
    return dict(_decay_scalars(st.h["decay"]), eps=st.h["eps"]), {}


def _rms_leaf(x: Leaf) -> tuple[jax.Array, dict]:
    s, g = x.s, x.g
    nu = ema_of_square(x.buffers["nu"], g, s["decay"], s["w"])
    if x.opt["centered"]:
        # torch: grad_avg.lerp_(grad, 1 - alpha), then
        # square_avg.addcmul(grad_avg, grad_avg, value=-1): one fused rounding.
        mu = lerp(x.buffers["mu"], g, s["w"])
        variance = nu - mu * mu
    else:
        mu, variance = None, nu
    if x.opt["eps_in_sqrt"]:
        u = g * jax.lax.rsqrt(variance + s["eps"])
    else:
        u = g / (jnp.sqrt(variance) + s["eps"])
    return u, {"nu": nu} if mu is None else {"mu": mu, "nu": nu}


_RMS_HYPERPARAMETERS = (_decay("decay"), _non_negative("eps"),
                        _non_negative("initial_scale"))
_NU = Buffer("nu", "accumulator", dtype_option="nu_dtype", fill="initial_scale")

RMS = Rule(
    name="scale_by_rms", kind="elementwise", state=ScaleByRmsState,
    hyperparameters=_RMS_HYPERPARAMETERS, buffers=(_NU,),
    options=("eps_in_sqrt", "centered"), counts_steps=False,
    per_step=_rms_step, leaf=_rms_leaf)

# centered=True keeps a second buffer in a state class of its own (its fields mu, nu).
CENTERED_RMS = Rule(
    name="scale_by_rms", kind="elementwise", state=ScaleByCenteredRmsState,
    hyperparameters=_RMS_HYPERPARAMETERS, buffers=(Buffer("mu", "accumulator", dtype_option="nu_dtype"), _NU),
    options=("eps_in_sqrt", "centered"), counts_steps=False,
    per_step=_rms_step, leaf=_rms_leaf)


def scale_by_rms(decay: ArrayLike = 0.99, eps: ArrayLike = 1e-8, eps_in_sqrt: bool = False,
                 centered: bool = False, initial_scale: ArrayLike = 0.0,
                 nu_dtype: DTypeLike | None = None) -> GradientTransformation:
    r"""Divide by the root of an EMA of squared updates (RMSprop's scaling).

    .. math::

        \nu_t &= \rho\,\nu_{t-1} + (1-\rho)\, g_t^2, \qquad \nu_0 = \text{initial\_scale} \\
        \mu_t &= \operatorname{lerp}(\mu_{t-1}, g_t, 1-\rho)
               = \mu_{t-1} + (1-\rho)(g_t - \mu_{t-1}) \quad \text{(centered only)} \\
        u_t &= g_t / (\sqrt{\nu_t - \mu_t^2} + \epsilon)
               \quad\text{or, with eps\_in\_sqrt,}\quad
               g_t / \sqrt{\nu_t - \mu_t^2 + \epsilon}

    (:math:`\mu \equiv 0` when not centered.) The default, eps outside the root, is torch's
    ``RMSprop`` convention (``alpha`` = ``decay``); optax puts eps inside the root:
    ``scale_by_rms(decay=0.9, eps_in_sqrt=True)`` equals ``optax.scale_by_rms()``, and with
    ``centered=True`` it equals ``optax.scale_by_stddev()``. A complex param is treated as
    torch does, as its real and imaginary parts (``torch.view_as_real``).

    Args:
      decay: :math:`\rho \in [0, 1]` (torch ``alpha``).
      eps: :math:`\epsilon \ge 0`.
      eps_in_sqrt: add eps under the square root (optax) rather than after it (torch).
      centered: subtract the squared EMA of updates (an estimate of the variance).
      initial_scale: the initial value of :math:`\nu \ge 0` (torch: 0).
      nu_dtype: storage dtype of the accumulators; ``None``: float32 or wider.

    Returns:
      A :class:`GradientTransformation` whose state is a :class:`ScaleByRmsState` or,
        centered, a :class:`ScaleByCenteredRmsState`; the accumulators are float32 or wider
        (a complex param's as its real view, with a trailing axis of 2).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.scale_by_rms(decay=0.75, eps=0.0)
        >>> state = tx.init({"w": jnp.zeros(2)})
        >>> updates, state = tx.update({"w": jnp.array([2.0, -2.0])}, state)
        >>> state.nu["w"]  # (1 - decay) g^2
        Array([1., 1.], dtype=float32)
        >>> updates["w"]  # g / sqrt(nu)
        Array([ 2., -2.], dtype=float32)
    """
    check_flag("eps_in_sqrt", eps_in_sqrt)
    check_flag("centered", centered)
    return lift(CENTERED_RMS if centered else RMS, decay=decay, eps=eps,
                initial_scale=initial_scale, eps_in_sqrt=bool(eps_in_sqrt),
                centered=bool(centered), nu_dtype=nu_dtype)


# --- Adagrad -----------------------------------------------------------------------------


class ScaleByAdagradState(NamedTuple):
    """The state of :func:`scale_by_adagrad`.

    Attributes:
      sum: the running sum of squared updates :math:`s` (torch's ``sum``), a tree like the
        params, float32 or wider (or ``nu_dtype``; a complex param's as its real view,
        with a trailing axis of 2).
    """

    sum: Any


def _adagrad_leaf(x: Leaf) -> tuple[jax.Array, dict]:
    g = x.g
    # torch: state_sum.addcmul_(g, g, value=1) (one fused rounding), then
    # g / (sqrt(sum) + eps).
    total = x.buffers["sum"] + g * g
    return g / (jnp.sqrt(total) + x.s["eps"]), {"sum": total}


ADAGRAD = Rule(
    name="scale_by_adagrad", kind="elementwise", state=ScaleByAdagradState,
    hyperparameters=(_non_negative("initial_accumulator_value"), _non_negative("eps")),
    buffers=(Buffer("sum", "accumulator", dtype_option="nu_dtype",
                    fill="initial_accumulator_value"),),
    counts_steps=False, leaf=_adagrad_leaf)


def scale_by_adagrad(initial_accumulator_value: ArrayLike = 0.0, eps: ArrayLike = 1e-10,
                     nu_dtype: DTypeLike | None = None) -> GradientTransformation:
    r"""Divide by the root of the running sum of squared updates (torch's Adagrad scaling).

    .. math::

        s_t = s_{t-1} + g_t^2, \quad s_0 = \text{initial\_accumulator\_value}, \qquad
        u_t = g_t / (\sqrt{s_t} + \epsilon)

    torch's ``lr_decay`` is a learning-rate schedule, not part of this block: see
    :func:`optxform.adagrad`. optax's ``scale_by_rss`` differs: eps inside the root, and a
    zero accumulator gives a zero update. A complex param is treated as torch does, as its
    real and imaginary parts (``torch.view_as_real``).

    Args:
      initial_accumulator_value: :math:`s_0 \ge 0`.
      eps: :math:`\epsilon \ge 0`, added after the square root.
      nu_dtype: storage dtype of the sum; ``None``: float32 or wider.

    Returns:
      A :class:`GradientTransformation` whose state is a :class:`ScaleByAdagradState`;
        ``sum`` is float32 or wider (a complex param's as its real view, with a trailing
        axis of 2).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.scale_by_adagrad(eps=0.0)
        >>> state = tx.init({"w": jnp.zeros(1)})
        >>> for g in (3.0, 4.0):  # s = 9, then 9 + 16 = 25
        ...     updates, state = tx.update({"w": jnp.array([g])}, state)
        ...     print(updates["w"])
        [1.]
        [0.8]
    """
    return lift(ADAGRAD, initial_accumulator_value=initial_accumulator_value, eps=eps,
                nu_dtype=nu_dtype)


# --- Adadelta ----------------------------------------------------------------------------


class ScaleByAdadeltaState(NamedTuple):
    """The state of :func:`scale_by_adadelta` (torch's names).

    Attributes:
      square_avg: the EMA of squared updates :math:`v`, a tree like the params, float32
        or wider (or ``nu_dtype``; a complex param's as its real view).
      acc_delta: the EMA of squared outgoing deltas :math:`a`, a tree like the params,
        float32 or wider (or ``nu_dtype``; a complex param's as its real view).
    """

    square_avg: Any
    acc_delta: Any


def _adadelta_step(st: Step) -> tuple[dict, dict]:
    return dict(_decay_scalars(st.h["rho"]), eps=st.h["eps"]), {}


def _adadelta_leaf(x: Leaf) -> tuple[jax.Array, dict]:
    s, g = x.s, x.g
    square_avg = ema_of_square(x.buffers["square_avg"], g, s["decay"], s["w"])
    # torch: acc_delta.add(eps).sqrt_().div_(std).mul_(grad), each op rounded.
    delta = unfused((jnp.sqrt(x.buffers["acc_delta"] + s["eps"])
                     / jnp.sqrt(square_avg + s["eps"])) * g)
    acc_delta = ema_of_square(x.buffers["acc_delta"], delta, s["decay"], s["w"])
    return delta, {"square_avg": square_avg, "acc_delta": acc_delta}


ADADELTA = Rule(
    name="scale_by_adadelta", kind="elementwise", state=ScaleByAdadeltaState,
    hyperparameters=(_decay("rho"), _non_negative("eps")),
    buffers=(Buffer("square_avg", "accumulator", dtype_option="nu_dtype"),
             Buffer("acc_delta", "accumulator", dtype_option="nu_dtype")),
    counts_steps=False, per_step=_adadelta_step, leaf=_adadelta_leaf)


def scale_by_adadelta(rho: ArrayLike = 0.9, eps: ArrayLike = 1e-6,
                      nu_dtype: DTypeLike | None = None) -> GradientTransformation:
    r"""Zeiler's Adadelta scaling, in torch's form.

    .. math::

        v_t &= \rho\, v_{t-1} + (1-\rho)\, g_t^2 \\
        \Delta_t &= \frac{\sqrt{a_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}}\; g_t \\
        a_t &= \rho\, a_{t-1} + (1-\rho)\, \Delta_t^2, \qquad u_t = \Delta_t

    torch then applies ``-lr * Delta`` (lr 1.0 by default), which the alias does with
    ``scale_by_learning_rate``. ``optax.scale_by_adadelta`` computes the same quantities.
    A complex param is treated as torch does, as its real and imaginary parts
    (``torch.view_as_real``).

    Args:
      rho: :math:`\rho \in [0, 1]`.
      eps: :math:`\epsilon \ge 0`, inside both square roots.
      nu_dtype: storage dtype of both averages; ``None``: float32 or wider.

    Returns:
      A :class:`GradientTransformation` whose state is a :class:`ScaleByAdadeltaState`;
        both EMAs are float32 or wider (a complex param's as its real view, with a
        trailing axis of 2).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.scale_by_adadelta(rho=0.0, eps=9.0)
        >>> state = tx.init({"w": jnp.zeros(1)})
        >>> updates, state = tx.update({"w": jnp.array([4.0])}, state)
        >>> updates["w"]  # sqrt(0 + 9) / sqrt(16 + 9) * 4
        Array([2.4], dtype=float32)
        >>> state.acc_delta["w"]  # with rho = 0: the squared delta
        Array([5.76], dtype=float32)
    """
    return lift(ADADELTA, rho=rho, eps=eps, nu_dtype=nu_dtype)
