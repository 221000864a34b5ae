r"""The Adam family: scale_by_adam, scale_by_adamax, scale_by_nadam, scale_by_radam, sparse Adam.

Each block turns gradients into an Adam-style direction; the learning rate, weight decay and
``maximize`` are separate chain members (see ``optxform/optimizers/adam.py``). Each is a
declared :class:`~optxform.rules.Rule` (per-step scalars, then per-leaf math) lifted into a
transform by :func:`~optxform.rules.lift`. The float32 arithmetic follows torch.optim's
single-tensor (CPU) code step by step (``lerp_`` for the first moment, ``mul_`` +
``addcmul_`` for the second, ``sqrt``/divide/``add_(eps)`` for the denominator; the shared
helpers are in ``optxform/tree/numerics.py``), so that a chain reproduces torch's parameter
trajectory to float32 rounding.

Storage: the first moment ``mu`` is kept in the param dtype (as torch keeps ``exp_avg``)
and the second moment ``nu`` in float32 or wider (a float16 ``exp_avg_sq`` overflows at a
gradient of 256 and freezes the param: torch's float16 state does); ``mu_dtype`` /
``nu_dtype`` override either (e.g. ``jnp.bfloat16`` to halve the optimizer memory). The
update is always computed in float32 or wider.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from optxform.core import GradientTransformation, Updates
from optxform.core.validation import check_flag
from optxform.rules import (Buffer, Hyperparameter, Leaf, Rule, Scalar, Step, beta, lift,
                            non_negative)
from optxform.tree.math import unfused
from optxform.tree.numerics import (as_f32, bias_correction, ema_of_square, is_number, lerp,
                                    log, one_minus, sma_length)

__all__ = [
    "ScaleByAdamState", "ScaleByAdamaxState", "ScaleByNadamState", "ScaleByRadamState",
    "ScaleBySparseAdamState", "ScaleByTransformersAdamState", "scale_by_adam",
    "scale_by_adamax", "scale_by_nadam", "scale_by_radam", "scale_by_sparse_adam",
    "scale_by_transformers_adam",
]




_MU = Buffer("mu", "param", dtype_option="mu_dtype")
_NU = Buffer("nu", "accumulator", dtype_option="nu_dtype", non_negative=True)


def _moments(x: Leaf) -> tuple[jax.Array, jax.Array]:
    """Adam's two moments of ``x.g``: torch's ``lerp_`` and ``mul_().addcmul_()``."""
    mu = lerp(x.buffers["mu"], x.g, x.s["w1"])
    nu = ema_of_square(x.buffers["nu"], x.g, x.s["b2"], x.s["w2"])
    return mu, nu


def _moment_scalars(h: dict) -> dict:
    """The weights the moments use: ``1 - b1``, ``b2``, ``1 - b2`` (host precision)."""
    return {"w1": one_minus(h["b1"]), "b2": h["b2"], "w2": one_minus(h["b2"])}


# --- Adam --------------------------------------------------------------------------------


class ScaleByAdamState(NamedTuple):
    """State of :func:`scale_by_adam`.

    Attributes:
      count: int32 scalar, the updates made so far (torch's ``step``), saturating.
      mu: the first moment :math:`m_t` (torch ``exp_avg``), in the param dtype or
        ``mu_dtype``.
      nu: the second moment :math:`v_t` (torch ``exp_avg_sq``), float32 or wider, or
        ``nu_dtype``.
      nu_max: with amsgrad, the running maximum of :math:`v_t` (torch
        ``max_exp_avg_sq``), stored like ``nu``; ``None`` otherwise.
    """

    count: jax.Array
    mu: Updates
    nu: Updates
    nu_max: Updates


def _adam_step(st: Step) -> tuple[dict, dict]:
    h = st.h
    bc2 = bias_correction(h["b2"], st.t)
    scalars = dict(_moment_scalars(h), bc1=bias_correction(h["b1"], st.t), bc2=bc2,
                   bc2_sqrt=jnp.sqrt(bc2), eps=h["eps"], eps_root=h["eps_root"])
    if st.opt["nesterov"]:  # optax's look-ahead: the next step's bias correction of m
        scalars.update(b1=h["b1"], bc1_next=bias_correction(h["b1"], st.t + 1))
    return scalars, {}


def _adam_leaf(x: Leaf) -> tuple[jax.Array, dict]:
    s = x.s
    mu, nu = _moments(x)
    nu_max = jnp.maximum(x.buffers["nu_max"], nu) if x.opt["amsgrad"] else None
    v = nu_max if x.opt["amsgrad"] else nu
    if "eps_root" in x.zero:  # torch's order of operations
        denom = jnp.sqrt(v) / s["bc2_sqrt"] + s["eps"]
    else:
        denom = jnp.sqrt(v / s["bc2"] + s["eps_root"]) + s["eps"]
    if x.opt["nesterov"]:
        m_hat = s["b1"] * (mu / s["bc1_next"]) + s["w1"] * (x.g / s["bc1"])
    else:
        m_hat = mu / s["bc1"]
    return m_hat / denom, {"mu": mu, "nu": nu, "nu_max": nu_max}


ADAM = Rule(
    name="scale_by_adam", kind="elementwise", state=ScaleByAdamState,
    hyperparameters=(beta("b1"), beta("b2"), non_negative("eps"),
                     non_negative("eps_root")),
    buffers=(_MU, _NU, Buffer("nu_max", "accumulator", dtype_option="nu_dtype",
                              enabled_by="amsgrad", non_negative=True)),
    options=("amsgrad", "nesterov"), per_step=_adam_step, leaf=_adam_leaf)


def scale_by_adam(b1: ArrayLike = 0.9, b2: ArrayLike = 0.999, eps: ArrayLike = 1e-8,
                  eps_root: ArrayLike = 0.0, amsgrad: bool = False,
                  mu_dtype: DTypeLike | None = None,
                  nu_dtype: DTypeLike | None = None, *,
                  nesterov: bool = False) -> GradientTransformation:
    r"""Rescale updates by Adam's bias-corrected moments (torch.optim.Adam's direction).

    .. math::

        m_t &= \operatorname{lerp}(m_{t-1}, g_t, 1 - \beta_1)
              = \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        \hat v_t &= \max(\hat v_{t-1}, v_t) \ \text{(amsgrad)}, \quad v_t \ \text{otherwise} \\
        u_t &= \frac{m_t / (1 - \beta_1^t)}
                    {\sqrt{\hat v_t} / \sqrt{1 - \beta_2^t} + \epsilon}
              \qquad\text{or, with } \epsilon_{root} \ne 0,\qquad
              \frac{m_t / (1 - \beta_1^t)}{\sqrt{\hat v_t / (1 - \beta_2^t)
              + \epsilon_{root}} + \epsilon}

    With ``nesterov`` (optax's option, Dozat's NAdam without its momentum schedule) the
    numerator :math:`m_t / (1 - \beta_1^t)` becomes the look-ahead

    .. math::

        \hat m_t = \beta_1 \frac{m_t}{1 - \beta_1^{t+1}} + (1 - \beta_1)
                   \frac{g_t}{1 - \beta_1^t}.

    Chain it with ``scale_by_learning_rate(lr)`` for ``theta -= lr * u``.

    amsgrad follows torch: the running maximum is taken over the *raw* second moments
    :math:`v_t` and bias-corrected afterwards with the current step's
    :math:`\sqrt{1 - \beta_2^t}`. ``optax.scale_by_amsgrad`` instead takes the maximum of
    the *bias-corrected* :math:`v_t / (1 - \beta_2^t)`; the two agree while :math:`v_t`
    grows (e.g. for a constant gradient) and differ once it shrinks.

    Args:
      b1: :math:`\beta_1 \in [0, 1)`, decay of the first moment.
      b2: :math:`\beta_2 \in [0, 1)`, decay of the second moment.
      eps: :math:`\epsilon \ge 0`, added to the (bias-corrected) root of the second moment.
      eps_root: :math:`\epsilon_{root} \ge 0`, added inside the square root (optax's
        option; torch has none). A Python ``0`` selects torch's exact operation order.
      amsgrad: use the running maximum of the second moment (torch ``amsgrad=True``).
      mu_dtype: storage dtype of ``mu`` (e.g. ``jnp.bfloat16``); ``None``: the param dtype.
      nu_dtype: storage dtype of ``nu`` (and ``nu_max``); ``None``: float32 or wider.
        The update is always computed in float32 (or wider) before the cast. With both
        in ``jnp.bfloat16`` (half the optimizer memory), ``adam(1e-2)`` on the test MLP
        stays within 1e-2 absolute of the float32 run after 100 steps (params move ~0.9),
        i.e. within 1% of the distance travelled; tests/test_blocks_adam.py holds it to 2%.
      nesterov: use the Nesterov look-ahead numerator above (optax's ``nesterov=True``;
        torch's Adam has none). Adds no state.

    Returns:
      A ``GradientTransformation`` whose state is a :class:`ScaleByAdamState`: ``count``
      int32, ``mu``/``nu``/``nu_max`` as above (``nu_max`` is ``None`` without amsgrad).

    Equivalents: the direction of ``torch.optim.Adam``; ``optax.scale_by_adam(b1, b2, eps,
    eps_root, mu_dtype, nesterov=nesterov)`` (equal up to float32 rounding when
    ``amsgrad=False``).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.scale_by_adam()
        >>> g = {"w": jnp.array([0.5, -2.0])}
        >>> u, state = tx.update(g, tx.init(g))
        >>> u["w"]   # the first step is sign(g) up to eps
        Array([ 1., -1.], dtype=float32)
    """
    check_flag("amsgrad", amsgrad)
    check_flag("nesterov", nesterov)
    return lift(ADAM, b1=b1, b2=b2, eps=eps, eps_root=eps_root, amsgrad=bool(amsgrad),
                nesterov=bool(nesterov), mu_dtype=mu_dtype, nu_dtype=nu_dtype)


# --- Adam in transformers' order (eps on the raw root) -----------------------------------


class ScaleByTransformersAdamState(NamedTuple):
    """State of :func:`scale_by_transformers_adam`.

    Attributes:
      count: int32 scalar, the updates made so far (saturating).
      mu: the first moment :math:`m_t` (``exp_avg``), in the param dtype or ``mu_dtype``.
      nu: the second moment :math:`v_t` (``exp_avg_sq``), float32 or wider, or
        ``nu_dtype``.
    """

    count: jax.Array
    mu: Updates
    nu: Updates


def _transformers_adam_step(st: Step) -> tuple[dict, dict]:
    h = st.h
    step_size = (jnp.sqrt(bias_correction(h["b2"], st.t)) / bias_correction(h["b1"], st.t)
                 if st.opt["correct_bias"] else 1.0)
    return dict(_moment_scalars(h), b1=h["b1"], eps=h["eps"], step_size=step_size), {}


def _transformers_adam_leaf(x: Leaf) -> tuple[jax.Array, dict]:
    s, g = x.s, x.g
    # exp_avg.mul_(b1).add_(g, alpha=1 - b1): two products, each rounded, then the sum.
    mu = unfused(s["b1"] * x.buffers["mu"]) + unfused(s["w1"] * g)
    nu = ema_of_square(x.buffers["nu"], g, s["b2"], s["w2"])
    return (mu / (jnp.sqrt(nu) + s["eps"])) * s["step_size"], {"mu": mu, "nu": nu}


TRANSFORMERS_ADAM = Rule(
    name="scale_by_transformers_adam", kind="elementwise", state=ScaleByTransformersAdamState,
    hyperparameters=(beta("b1"), beta("b2"), non_negative("eps")),
    buffers=(_MU, _NU), options=("correct_bias",),
    per_step=_transformers_adam_step, leaf=_transformers_adam_leaf)


def scale_by_transformers_adam(b1: ArrayLike = 0.9, b2: ArrayLike = 0.999,
                               eps: ArrayLike = 1e-6, correct_bias: bool = True,
                               mu_dtype: DTypeLike | None = None,
                               nu_dtype: DTypeLike | None = None) -> GradientTransformation:
    r"""Adam's direction with :math:`\epsilon` on the raw root (transformers' AdamW order).

    .. math::

        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        u_t &= \frac{\sqrt{1 - \beta_2^t}}{1 - \beta_1^t}\,
               \frac{m_t}{\sqrt{v_t} + \epsilon}
               \qquad (\text{without } \texttt{correct\_bias}:\
               \frac{m_t}{\sqrt{v_t} + \epsilon})

    This is the order Kingma & Ba give at the end of their section 2 (the bias corrections
    folded into the step size, :math:`\hat\epsilon` added to :math:`\sqrt{v_t}`), kept by
    Hugging Face transformers' former ``AdamW`` and by C-Optim's ``c_adamw.py``. It equals
    :func:`scale_by_adam` with a step-dependent
    :math:`\epsilon_t = \epsilon / \sqrt{1 - \beta_2^t}`: early steps are damped more
    than torch's. The moments round as ``mul_(b1).add_(g, alpha=1 - b1)`` and
    ``mul_(b2).addcmul_(g, g, value=1 - b2)``.

    Args:
      b1: :math:`\beta_1 \in [0, 1)`, decay of the first moment.
      b2: :math:`\beta_2 \in [0, 1)`, decay of the second moment.
      eps: :math:`\epsilon \ge 0`, added to :math:`\sqrt{v_t}` before the bias
        corrections (the reference's default ``1e-6``).
      correct_bias: multiply by :math:`\sqrt{1 - \beta_2^t} / (1 - \beta_1^t)`
        (``False``: no bias correction, as in the original BERT code).
      mu_dtype: storage dtype of ``mu``; ``None``: the param dtype.
      nu_dtype: storage dtype of ``nu``; ``None``: float32 or wider.

    Returns:
      A ``GradientTransformation`` whose state is a :class:`ScaleByTransformersAdamState`.

    Equivalents: the direction of C-Optim's ``c_adamw.AdamW`` without its mask and of
    transformers' former ``AdamW(lr, betas, eps, weight_decay, correct_bias)``; torch and
    optax have no switch for this order (``optax.scale_by_adam`` adds :math:`\epsilon`
    after the correction, like torch).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.scale_by_transformers_adam()
        >>> g = {"w": jnp.array([0.5, -2.0])}
        >>> u, state = tx.update(g, tx.init(g))
        >>> u["w"]   # (1 - b1) g sqrt(1 - b2) / ((1 - b1) (sqrt(1 - b2) |g| + eps))
        Array([ 0.9999367 , -0.99998415], dtype=float32)
    """
    check_flag("correct_bias", correct_bias)
    return lift(TRANSFORMERS_ADAM, b1=b1, b2=b2, eps=eps, correct_bias=bool(correct_bias),
                mu_dtype=mu_dtype, nu_dtype=nu_dtype)


# --- Adamax ------------------------------------------------------------------------------


class ScaleByAdamaxState(NamedTuple):
    """State of :func:`scale_by_adamax`.

    Attributes:
      count: int32 scalar, the updates made so far (saturating).
      mu: the first moment (torch ``exp_avg``), in the param dtype or ``mu_dtype``.
      nu: the infinity norm :math:`n_t` (torch ``exp_inf``), in the param dtype or
        ``nu_dtype``.
    """

    count: jax.Array
    mu: Updates
    nu: Updates


def _adamax_step(st: Step) -> tuple[dict, dict]:
    return {"w1": one_minus(st.h["b1"]), "b2": st.h["b2"], "eps": st.h["eps"],
            "bc1": bias_correction(st.h["b1"], st.t)}, {}


def _adamax_leaf(x: Leaf) -> tuple[jax.Array, dict]:
    s = x.s
    mu = lerp(x.buffers["mu"], x.g, s["w1"])
    nu = jnp.maximum(x.buffers["nu"] * s["b2"], jnp.abs(x.g) + s["eps"])
    return (mu / s["bc1"]) / nu, {"mu": mu, "nu": nu}


ADAMAX = Rule(
    name="scale_by_adamax", kind="elementwise", state=ScaleByAdamaxState,
    hyperparameters=(beta("b1"), beta("b2"), non_negative("eps")),
    # The infinity norm is kept like the params (a max of |g|: no overflow to fear).
    buffers=(_MU, Buffer("nu", "param", dtype_option="nu_dtype")),
    per_step=_adamax_step, leaf=_adamax_leaf)


def scale_by_adamax(b1: ArrayLike = 0.9, b2: ArrayLike = 0.999, eps: ArrayLike = 1e-8,
                    mu_dtype: DTypeLike | None = None,
                    nu_dtype: DTypeLike | None = None) -> GradientTransformation:
    r"""Rescale updates by Adamax's infinity-norm moment (torch.optim.Adamax's direction).

    .. math::

        m_t &= \operatorname{lerp}(m_{t-1}, g_t, 1 - \beta_1) \\
        n_t &= \max(\beta_2 n_{t-1}, |g_t| + \epsilon) \\
        u_t &= \frac{m_t}{(1 - \beta_1^t)\, n_t}

    Note that :math:`\epsilon` is added to :math:`|g_t|` inside the maximum (torch and optax
    both do this), not to the denominator.

    Args:
      b1: :math:`\beta_1 \in [0, 1)`.
      b2: :math:`\beta_2 \in [0, 1)`, decay of the infinity norm.
      eps: :math:`\epsilon \ge 0`.
      mu_dtype, nu_dtype: storage dtypes of the moments (``None``: the param dtype for
        ``mu``, float32 or wider for ``nu``).

    Returns:
      A ``GradientTransformation`` whose state is a :class:`ScaleByAdamaxState` (int32
      ``count``; moments as above).

    Equivalents: the direction of ``torch.optim.Adamax``; ``optax.scale_by_adamax``
    (same convention, equal up to float32 rounding).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.scale_by_adamax()
        >>> g = {"w": jnp.array([0.5, -2.0])}
        >>> u, state = tx.update(g, tx.init(g))
        >>> u["w"]   # the first step is g / (|g| + eps), up to float32 rounding
        Array([ 1.0000001, -1.0000001], dtype=float32)
        >>> state.nu["w"]
        Array([0.5, 2. ], dtype=float32)
    """
    return lift(ADAMAX, b1=b1, b2=b2, eps=eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype)


# --- NAdam -------------------------------------------------------------------------------


class ScaleByNadamState(NamedTuple):
    r"""State of :func:`scale_by_nadam`.

    Attributes:
      count: int32 scalar, the updates made so far (saturating).
      mu_product: float32 scalar :math:`\Pi_t = \prod_{i \le t} \mu_i` (torch
        ``mu_product``), 1 before the first step.
      mu: the first moment (torch ``exp_avg``), in the param dtype or ``mu_dtype``.
      nu: the second moment (torch ``exp_avg_sq``), float32 or wider, or ``nu_dtype``.
    """

    count: jax.Array
    mu_product: jax.Array
    mu: Updates
    nu: Updates


_LOG_096 = log(0.96)


def _nadam_step(st: Step) -> tuple[dict, dict]:
    h = st.h
    t = st.t.astype(jnp.float32)

    def momentum_coefficient(t):
        return as_f32(h["b1"]) * (1.0 - 0.5 * jnp.exp(t * as_f32(h["momentum_decay"])
                                                      * _LOG_096))

    mu_t, mu_next = momentum_coefficient(t), momentum_coefficient(t + 1.0)
    mu_product = st.carried["mu_product"] * mu_t
    return dict(_moment_scalars(h), bc2=bias_correction(h["b2"], st.t), eps=h["eps"],
                coeff_grad=(1.0 - mu_t) / (1.0 - mu_product),
                coeff_moment=mu_next / (1.0 - mu_product * mu_next)), \
        {"mu_product": mu_product}


def _nadam_leaf(x: Leaf) -> tuple[jax.Array, dict]:
    s = x.s
    mu, nu = _moments(x)
    denom = jnp.sqrt(nu / s["bc2"]) + s["eps"]
    u = (s["coeff_grad"] * x.g) / denom + (s["coeff_moment"] * mu) / denom
    return u, {"mu": mu, "nu": nu}


NADAM = Rule(
    name="scale_by_nadam", kind="elementwise", state=ScaleByNadamState,
    hyperparameters=(beta("b1"), beta("b2"), non_negative("eps"),
                     non_negative("momentum_decay")),
    buffers=(_MU, _NU), scalars=(Scalar("mu_product", 1.0),),
    per_step=_nadam_step, leaf=_nadam_leaf)


def scale_by_nadam(b1: ArrayLike = 0.9, b2: ArrayLike = 0.999, eps: ArrayLike = 1e-8,
                   momentum_decay: ArrayLike = 4e-3, mu_dtype: DTypeLike | None = None,
                   nu_dtype: DTypeLike | None = None) -> GradientTransformation:
    r"""Rescale updates by NAdam's Nesterov-corrected moments (torch.optim.NAdam's direction).

    .. math::

        \mu_t &= \beta_1 \bigl(1 - \tfrac12\, 0.96^{\,t\,\psi}\bigr), \qquad
        \Pi_t = \prod_{i \le t} \mu_i \\
        m_t &= \operatorname{lerp}(m_{t-1}, g_t, 1 - \beta_1), \qquad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        d_t &= \sqrt{v_t / (1 - \beta_2^t)} + \epsilon \\
        u_t &= \frac{1 - \mu_t}{1 - \Pi_t}\,\frac{g_t}{d_t}
             + \frac{\mu_{t+1}}{1 - \Pi_t\,\mu_{t+1}}\,\frac{m_t}{d_t}

    with :math:`\psi` = ``momentum_decay``. Note that, unlike Adam, torch divides
    :math:`v_t` by its bias correction *before* the square root here.

    Convention difference from ``optax.scale_by_nadam``: optax uses a constant
    :math:`\mu_t = \beta_1` (Dozat's simplified form). The two coincide when
    :math:`0.96^{t\psi}` vanishes, i.e. for a very large ``momentum_decay`` (e.g. ``1e4``):
    then :math:`\Pi_t = \beta_1^t` and the coefficients become optax's
    :math:`(1 - \beta_1)/(1 - \beta_1^t)` and :math:`\beta_1/(1 - \beta_1^{t+1})`.

    Args:
      b1: :math:`\beta_1 \in [0, 1)`.
      b2: :math:`\beta_2 \in [0, 1)`.
      eps: :math:`\epsilon \ge 0`.
      momentum_decay: :math:`\psi \ge 0` (torch ``momentum_decay``, default ``4e-3``).
      mu_dtype, nu_dtype: storage dtypes of the moments (``None``: the param dtype for
        ``mu``, float32 or wider for ``nu``).

    Returns:
      A ``GradientTransformation`` whose state is a :class:`ScaleByNadamState` (int32
      ``count``, float32 ``mu_product``, moments).

    Equivalent: the direction of ``torch.optim.NAdam``.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.scale_by_nadam()
        >>> g = {"w": jnp.array([0.5, -2.0])}
        >>> u, state = tx.update(g, tx.init(g))
        >>> u["w"]
        Array([ 1.0564517, -1.0564517], dtype=float32)
        >>> state.mu_product   # mu_1 = 0.9 (1 - 0.5 * 0.96 ** 0.004)
        Array(0.45007348, dtype=float32)
    """
    return lift(NADAM, b1=b1, b2=b2, eps=eps, momentum_decay=momentum_decay,
                mu_dtype=mu_dtype, nu_dtype=nu_dtype)


# --- RAdam -------------------------------------------------------------------------------


class ScaleByRadamState(NamedTuple):
    """State of :func:`scale_by_radam`.

    Attributes:
      count: int32 scalar, the updates made so far (saturating).
      mu: the first moment (torch ``exp_avg``), in the param dtype or ``mu_dtype``.
      nu: the second moment (torch ``exp_avg_sq``), float32 or wider, or ``nu_dtype``.
    """

    count: jax.Array
    mu: Updates
    nu: Updates


def _radam_step(st: Step) -> tuple[dict, dict]:
    h = st.h
    b2 = h["b2"]
    rho_inf = as_f32(2.0 / (1.0 - b2) - 1.0) if is_number(b2) else 2.0 / (1.0 - as_f32(b2)) - 1.0
    rho_t = sma_length(rho_inf, -log(b2), st.t.astype(jnp.float32))
    rectify = rho_t > as_f32(h["threshold"])
    safe_rho = jnp.where(rectify, rho_t, rho_inf)  # keeps the unused branch finite
    rect = jnp.sqrt((safe_rho - 4.0) * (safe_rho - 2.0) * rho_inf
                    / ((rho_inf - 4.0) * (rho_inf - 2.0) * safe_rho))
    return dict(_moment_scalars(h), bc1=bias_correction(h["b1"], st.t),
                bc2_sqrt=jnp.sqrt(bias_correction(b2, st.t)), eps=h["eps"], rect=rect,
                rectify=rectify.astype(jnp.float32)), {}


def _radam_leaf(x: Leaf) -> tuple[jax.Array, dict]:
    s = x.s
    mu, nu = _moments(x)
    m_hat = mu / s["bc1"]
    adaptive = s["bc2_sqrt"] / (jnp.sqrt(nu) + s["eps"])
    u = jnp.where(s["rectify"].astype(bool), m_hat * adaptive * s["rect"], m_hat)
    return u, {"mu": mu, "nu": nu}


RADAM = Rule(
    name="scale_by_radam", kind="elementwise", state=ScaleByRadamState,
    hyperparameters=(beta("b1"), beta("b2"), non_negative("eps"),
                     Hyperparameter("threshold")),
    buffers=(_MU, _NU), per_step=_radam_step, leaf=_radam_leaf)


def scale_by_radam(b1: ArrayLike = 0.9, b2: ArrayLike = 0.999, eps: ArrayLike = 1e-8,
                   threshold: ArrayLike = 5.0, mu_dtype: DTypeLike | None = None,
                   nu_dtype: DTypeLike | None = None) -> GradientTransformation:
    r"""Rescale updates by RAdam's rectified moments (torch.optim.RAdam's direction).

    .. math::

        m_t &= \operatorname{lerp}(m_{t-1}, g_t, 1 - \beta_1), \qquad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        \rho_\infty &= \frac{2}{1 - \beta_2} - 1, \qquad
        \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1 - \beta_2^t} \\
        r_t &= \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\rho_\infty}
                         {(\rho_\infty - 4)(\rho_\infty - 2)\rho_t}} \\
        u_t &= \frac{m_t}{1 - \beta_1^t} \cdot
               \begin{cases}
                 r_t\, \dfrac{\sqrt{1 - \beta_2^t}}{\sqrt{v_t} + \epsilon} & \rho_t > 5 \\
                 1 & \text{otherwise (un-adapted momentum step)}
               \end{cases}

    Convention differences from ``optax.scale_by_radam``: torch adds :math:`\epsilon` to
    the *uncorrected* :math:`\sqrt{v_t}` (optax: to :math:`\sqrt{v_t / (1 - \beta_2^t)}`,
    i.e. torch's :math:`\epsilon` is optax's times :math:`\sqrt{1 - \beta_2^t}`), and
    rectifies when :math:`\rho_t > 5` (optax: :math:`\ge`). With ``eps=0`` they coincide.

    Args:
      b1: :math:`\beta_1 \in [0, 1)`.
      b2: :math:`\beta_2 \in [0, 1)`.
      eps: :math:`\epsilon \ge 0`.
      threshold: rectify when :math:`\rho_t` exceeds it (torch hard-codes 5).
      mu_dtype, nu_dtype: storage dtypes of the moments (``None``: the param dtype for
        ``mu``, float32 or wider for ``nu``).

    Returns:
      A ``GradientTransformation`` whose state is a :class:`ScaleByRadamState` (int32
      ``count``; moments as above).

    Equivalent: the direction of ``torch.optim.RAdam``.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.scale_by_radam()
        >>> g = {"w": jnp.array([0.5, -2.0])}
        >>> u, state = tx.update(g, tx.init(g))
        >>> u["w"]   # rho_1 = 1 <= 5: the bias-corrected momentum, g up to rounding
        Array([ 0.50000006, -2.0000002 ], dtype=float32)
    """
    return lift(RADAM, b1=b1, b2=b2, eps=eps, threshold=threshold, mu_dtype=mu_dtype,
                nu_dtype=nu_dtype)


# --- Sparse Adam -------------------------------------------------------------------------


class ScaleBySparseAdamState(NamedTuple):
    """State of :func:`scale_by_sparse_adam`.

    Attributes:
      count: int32 scalar, the steps taken (torch counts every step, whichever rows are
        present).
      mu: the first moment, in the param dtype or ``mu_dtype``; absent rows keep their
        value.
      nu: the second moment, float32 or wider or ``nu_dtype``; absent rows keep their
        value.
    """

    count: jax.Array
    mu: Updates
    nu: Updates


def _present_rows(g) -> jax.Array:
    """A bool mask broadcastable to ``g``: True where ``g``'s row has a nonzero entry.

    A row is a slice along the leading axis (torch's ``to_sparse(sparse_dim=1)``, the layout
    of ``nn.Embedding(sparse=True)`` gradients): ``g[i, ...]``. For a 1-D leaf each element
    is a row; a 0-D leaf is one row.
    """
    nonzero = g != 0
    if g.ndim < 2:
        return nonzero
    return jnp.any(nonzero, axis=tuple(range(1, g.ndim)), keepdims=True)


def _sparse_adam_step(st: Step) -> tuple[dict, dict]:
    step_size = jnp.sqrt(bias_correction(st.h["b2"], st.t)) / bias_correction(st.h["b1"], st.t)
    return {"w1": one_minus(st.h["b1"]), "w2": one_minus(st.h["b2"]), "eps": st.h["eps"],
            "step_size": step_size}, {}


def _sparse_adam_leaf(x: Leaf) -> tuple[jax.Array, dict]:
    s, g = x.s, x.g
    present = _present_rows(g)
    m, v = x.buffers["mu"], x.buffers["nu"]
    mu = jnp.where(present, m + (g - m) * s["w1"], m)
    nu = jnp.where(present, v + (g * g - v) * s["w2"], v)
    u = (mu / (jnp.sqrt(nu) + s["eps"])) * s["step_size"]
    return jnp.where(present, u, jnp.zeros_like(u)), {"mu": mu, "nu": nu}


SPARSE_ADAM = Rule(
    # Rows are slices of each leaf: the rule needs the leaf's shape.
    name="scale_by_sparse_adam", kind="matrix", state=ScaleBySparseAdamState,
    hyperparameters=(beta("b1"), beta("b2"), non_negative("eps")),
    buffers=(_MU, _NU), complex_params="reject",
    per_step=_sparse_adam_step, leaf=_sparse_adam_leaf)


def scale_by_sparse_adam(b1: ArrayLike = 0.9, b2: ArrayLike = 0.999, eps: ArrayLike = 1e-8,
                         mu_dtype: DTypeLike | None = None,
                         nu_dtype: DTypeLike | None = None) -> GradientTransformation:
    r"""Adam restricted to the rows a (dense) gradient touches (torch.optim.SparseAdam).

    For a row :math:`r` whose gradient has a nonzero entry ("present"):

    .. math::

        m_t[r] &= m_{t-1}[r] + (1 - \beta_1)(g_t[r] - m_{t-1}[r]) \\
        v_t[r] &= v_{t-1}[r] + (1 - \beta_2)(g_t[r]^2 - v_{t-1}[r]) \\
        u_t[r] &= \frac{\sqrt{1 - \beta_2^t}}{1 - \beta_1^t}\,
                 \frac{m_t[r]}{\sqrt{v_t[r]} + \epsilon}

    and for an absent row (gradient entirely zero) :math:`m, v` are unchanged and
    :math:`u_t[r] = 0`, so the param row is left untouched: what torch does for rows missing
    from a sparse gradient. Rows are slices along the leading axis, ``g[i, ...]``, for any
    rank >= 2 (an embedding table's rows; for a 3-D ``[vocab, a, b]`` table a row is the
    whole ``[a, b]`` block); a 1-D leaf's elements are rows; a 0-D leaf is one row.

    Quirks kept from torch: the step count ``t`` advances every step (not per row), and
    :math:`\epsilon` is added to the uncorrected :math:`\sqrt{v}` (unlike torch's Adam).

    Args:
      b1: :math:`\beta_1 \in [0, 1)`.
      b2: :math:`\beta_2 \in [0, 1)`.
      eps: :math:`\epsilon > 0` (torch rejects 0).
      mu_dtype, nu_dtype: storage dtypes of the moments (``None``: the param dtype for
        ``mu``, float32 or wider for ``nu``).

    Returns:
      A ``GradientTransformation`` whose state is a :class:`ScaleBySparseAdamState`
      (int32 ``count``; moments in the param dtype).

    Equivalent: the direction of ``torch.optim.SparseAdam``; optax has none.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.scale_by_sparse_adam()
        >>> g = {"table": jnp.array([[0.5, -2.0], [0.0, 0.0]])}
        >>> u, state = tx.update(g, tx.init(g))
        >>> u["table"]   # row 1 is absent: no update, its moments stay zero
        Array([[ 0.99999934, -0.9999999 ],
               [ 0.        ,  0.        ]], dtype=float32)
    """
    return lift(SPARSE_ADAM, b1=b1, b2=b2, eps=eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype)
