r"""Learning-rate-free step sizes: D-Adaptation (Adam, SGD) and Prodigy, as declared rules.

Each estimates the distance :math:`D = \|x_0 - x_*\|` to a solution from sums over the
whole tree, and scales its steps by the estimate :math:`d_k`, which only grows. So each is
a ``"global"`` :class:`~optxform.rules.Rule` in two passes (see :mod:`optxform.rules`):

1. ``accumulate``, per leaf, with the step's scalars from ``prepare`` (the current
   :math:`d_k`): update the moments and the weighted gradient sum :math:`s`, and return
   the leaf's part of the estimate's numerator and denominator;
2. ``per_step`` adds those parts over the tree, computes :math:`d_{k+1}`, and ``leaf``
   turns the updated moments into the update.

The estimate and its sums are kept as a host float is in the reference code: in the step
dtype (float32, or float64 under ``jax_enable_x64``); the per-leaf sums run in the leaf's
compute dtype, as the reference's ``torch.dot(...).item()`` does. A step whose
denominator is 0 (every gradient so far zero, or a learning rate of 0) changes neither
the params nor the estimate, and is not counted in the bias correction's step ``k``: the
reference returns early there.

Each block emits the step itself (learning rate and decoupled weight decay included,
since :math:`d` needs them) in the gradient's direction; the aliases in
``optxform/optimizers/dadapt.py`` negate it with ``scale(-1.)``.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from optxform import tree as otu
from optxform.core import GradientTransformation, ScalarOrSchedule
from optxform.core.validation import check_flag, check_positive, check_range
from optxform.rules import Buffer, Hyperparameter, Leaf, Rule, Scalar, Step, beta, lift
from optxform.rules import non_negative
from optxform.tree.numerics import bias_correction, ema_of_square, is_number, one_minus
from optxform.tree.numerics import step_dtype

__all__ = ["ScaleByDadaptAdamState", "ScaleByDadaptSgdState", "ScaleByProdigyState",
           "scale_by_dadapt_adam", "scale_by_dadapt_sgd", "scale_by_prodigy"]


# --- shared declarations and step-scalar helpers ----------------------------------------

def _positive(name: str) -> Hyperparameter:
    return Hyperparameter(name, check_positive)


_LEARNING_RATE = Hyperparameter("learning_rate", check_positive, schedule=True)
_D0 = _positive("d0")
_D = Scalar("d", fill="d0", dtype="step")            # the estimate d_k
_K = Scalar("k", dtype="int32")                      # steps taken (skipped ones not counted)
_S = Buffer("s", "accumulator")                      # the weighted sum of gradients


def _check_growth_rate(growth_rate: Any) -> None:
    """``growth_rate`` is a number ``> 0`` (``inf``, the default, means no limit)."""
    if isinstance(growth_rate, bool) or not is_number(growth_rate) or not growth_rate > 0:
        raise ValueError(f"Invalid growth_rate: {growth_rate!r} (growth_rate must be a "
                         "number > 0; float('inf') for no limit)")


def _wide(x: Any) -> Any:
    """A hyperparameter as the estimate's dtype sees it: a Python number as it is (rounded
    once, where it meets an array), an array in the step dtype."""
    return x if is_number(x) else jnp.asarray(x).astype(step_dtype())


def _sqrt(x: Any) -> Any:
    """``x ** 0.5``, on the host for a Python number (as the reference computes it)."""
    return x ** 0.5 if is_number(x) else jnp.sqrt(_wide(x))


def _adam_step_size(st: Step) -> Any:
    r""":math:`d_k\,\eta\,\sqrt{1-\beta_2^{k+1}}/(1-\beta_1^{k+1})`, the bias correction
    only with ``use_bias_correction``."""
    h, k = st.h, st.carried["k"]
    size = st.carried["d"] * _wide(h["learning_rate"])
    if st.opt["use_bias_correction"]:
        t = k + 1
        size = size * (jnp.sqrt(bias_correction(h["b2"], t)) / bias_correction(h["b1"], t))
    return size


def _summed(st: Step, name: str) -> jax.Array:
    """The sum ``name`` over the tree (0 for a tree without leaves)."""
    return st.reduced.get(name, jnp.zeros([], step_dtype()))


def _kept_unless(skip: jax.Array, new: dict, old: dict) -> dict:
    """The carried scalars: ``old`` where the step is skipped, else ``new``; ``k`` counts."""
    new = dict(new, k=old["k"] + 1)
    return {name: jnp.where(skip, old[name], value.astype(old[name].dtype))
            for name, value in new.items()}


def _active(st: Step) -> jax.Array:
    """The reference accumulates nothing while its learning rate is 0 (a schedule's)."""
    return jnp.asarray(_wide(st.h["learning_rate"])) > 0


def _as_the_reference_steps(x: Leaf, step: jax.Array) -> jax.Array:
    """``p - p'`` where ``p'`` is the reference's new param, rounded as it rounds it:
    first ``p -= (weight_decay * dlr) * p`` (decoupled decay), then ``p -= step``.

    A step of a few ulps of ``p`` (the estimate starts at ``d0 = 1e-6``) is mostly
    rounding, and the estimate's numerator reads ``x_0 - x_k``: a different rounding of
    the same step would move the estimate by a percent. ``p - p'`` is exact (the two are
    close), and so is ``p + (p' - p)`` after the alias's sign flip.
    """
    p = _param(x)
    new = p if "weight_decay" in x.zero else p - x.s["decay"] * p
    return p - (new - step)


def _updated_moments(x: Leaf, s_decay: jax.Array) -> dict:
    """Adam's moments of the weighted gradients and the EMA ``s`` of them, as the
    references update them: ``m = b1 m + w1 g``, ``v = b2 v + w2 g^2`` (``mul_`` then
    ``addcmul_``), ``s = s_decay s + ws g``; all left as they are while inactive."""
    s, g, b = x.s, x.g, x.buffers
    new = {"exp_avg": s["b1"] * b["exp_avg"] + s["w1"] * g,
           "exp_avg_sq": ema_of_square(b["exp_avg_sq"], g, s["b2"], s["w2"]),
           "s": s_decay * b["s"] + s["ws"] * g}
    return {name: jnp.where(s["active"], value, b[name]) for name, value in new.items()}


def _sums_when_active(x: Leaf, **sums: jax.Array) -> dict:
    """The leaf's parts of the estimate's sums (0 while inactive)."""
    zero = jnp.zeros([], x.g.dtype)
    return {name: jnp.where(x.s["active"], value, zero) for name, value in sums.items()}


def _param(x: Leaf) -> jax.Array:
    """The leaf's param (these rules read params; the lifting requires them)."""
    return cast(jax.Array, x.p)


def _sum_abs(x: jax.Array) -> jax.Array:
    return jnp.sum(jnp.abs(x))


def _dot(a: jax.Array, b: jax.Array) -> jax.Array:
    # A sum of products rather than a contraction, which explicitly sharded leaves refuse.
    return jnp.sum(a * b)


# --- Prodigy -----------------------------------------------------------------------------


class ScaleByProdigyState(NamedTuple):
    """The state of :func:`scale_by_prodigy` (the names are prodigyopt's).

    Attributes:
      count: int32, the updates made (where a learning-rate schedule is read).
      exp_avg: the first moment of :math:`d`-scaled gradients, in the param dtype.
      exp_avg_sq: the second moment of :math:`d`-scaled gradients, float32 or wider.
      s: the :math:`\beta_3`-EMA of the weighted gradients, float32 or wider.
      p0: the params at ``init``, :math:`x_0`, in the param dtype.
      d: the estimate :math:`d_k` (step dtype: float64 under ``jax_enable_x64``).
      d_max: the largest :math:`\hat d` so far (at least ``d0``).
      d_numerator: the :math:`\beta_3`-EMA :math:`r_k` of the weighted
        :math:`\langle g, x_0 - x\rangle`.
      k: int32, the steps taken (a skipped step is not counted).
    """

    count: jax.Array
    exp_avg: Any
    exp_avg_sq: Any
    s: Any
    p0: Any
    d: jax.Array
    d_max: jax.Array
    d_numerator: jax.Array
    k: jax.Array


def _prodigy_scalars(st: Step) -> dict:
    h, d = st.h, st.carried["d"]
    dlr = _adam_step_size(st)
    b3 = _sqrt(h["b2"]) if h["b3"] is None else h["b3"]
    weight = d / _wide(h["d0"])
    return {"dlr": dlr, "b1": h["b1"], "w1": d * one_minus(h["b1"]), "b2": h["b2"],
            "w2": d * d * one_minus(h["b2"]), "b3": b3,
            "ws": weight * (d if st.opt["safeguard_warmup"] else dlr),
            "numerator_weight": weight * dlr, "active": _active(st)}


def _prodigy_accumulate(x: Leaf) -> tuple[dict, dict]:
    new = _updated_moments(x, x.s["b3"])
    return new, _sums_when_active(x, numerator=_dot(x.g, x.buffers["p0"] - _param(x)),
                                  denominator=_sum_abs(new["s"]))


def _prodigy_step(st: Step) -> tuple[dict, dict]:
    h, c, opt = st.h, st.carried, st.opt
    sc = _prodigy_scalars(st)
    d, d0 = c["d"], _wide(h["d0"])
    numerator = (sc["b3"] * c["d_numerator"]
                 + sc["numerator_weight"] * _summed(st, "numerator"))
    skip = _summed(st, "denominator") == 0
    d_hat = _wide(h["d_coef"]) * numerator / _summed(st, "denominator")
    d_new = jnp.where(d == d0, jnp.maximum(d, d_hat), d)
    d_max = jnp.maximum(c["d_max"], d_hat)
    d_new = jnp.minimum(d_max, d_new * opt["growth_rate"])
    carried = _kept_unless(skip, {"d": d_new, "d_max": d_max, "d_numerator": numerator}, c)
    dlr = sc["dlr"]
    return {"dlr": dlr, "dlr_d": dlr * d_new, "eps_d": d_new * _wide(h["eps"]),
            "first_moment": jnp.asarray(_wide(h["b1"])) > 0,
            "decay": _wide(h["weight_decay"]) * dlr, "skip": skip}, carried


def _prodigy_leaf(x: Leaf) -> tuple[jax.Array, dict]:
    s, b = x.s, x.buffers
    denom = jnp.sqrt(b["exp_avg_sq"]) + s["eps_d"]
    step = jnp.where(s["first_moment"], s["dlr"] * (b["exp_avg"] / denom),
                     s["dlr_d"] * (x.g / denom))
    u = _as_the_reference_steps(x, step)
    return jnp.where(s["skip"], jnp.zeros_like(u), u), dict(b)


PRODIGY = Rule(
    name="scale_by_prodigy", kind="global", state=ScaleByProdigyState, reads_params=True,
    hyperparameters=(_LEARNING_RATE, beta("b1"), beta("b2"),
                     Hyperparameter("b3", lambda n, v: check_range(n, v, 0.0, 1.0,
                                                                   high_closed=True),
                                    optional=True),
                     _positive("eps"), non_negative("weight_decay"), _D0,
                     _positive("d_coef")),
    options=("use_bias_correction", "safeguard_warmup", "growth_rate"),
    buffers=(Buffer("exp_avg"), Buffer("exp_avg_sq", "accumulator"), _S,
             Buffer("p0", from_params=True)),
    scalars=(_D, Scalar("d_max", fill="d0", dtype="step"),
             Scalar("d_numerator", dtype="step"), _K),
    prepare=_prodigy_scalars, accumulate=_prodigy_accumulate, per_step=_prodigy_step,
    leaf=_prodigy_leaf)


def scale_by_prodigy(learning_rate: ScalarOrSchedule = 1.0, b1: ArrayLike = 0.9,
                     b2: ArrayLike = 0.999, b3: ArrayLike | None = None,
                     eps: ArrayLike = 1e-8, weight_decay: ArrayLike = 0.0,
                     use_bias_correction: bool = False, safeguard_warmup: bool = False,
                     d0: ArrayLike = 1e-6, d_coef: ArrayLike = 1.0,
                     growth_rate: float = math.inf) -> GradientTransformation:
    r"""Prodigy's step (Mishchenko & Defazio 2024), exactly as ``prodigyopt.Prodigy`` 1.1.2.

    With :math:`\lambda_k = d_k\,\eta_k\,\rho_k` (:math:`\rho_k` Adam's bias correction
    :math:`\sqrt{1-\beta_2^{k+1}}/(1-\beta_1^{k+1})` with ``use_bias_correction``, else 1)
    and :math:`x_0` the params at ``init``:

    .. math::

        m_k &= \beta_1 m_{k-1} + d_k (1-\beta_1)\, g_k, \qquad
        v_k = \beta_2 v_{k-1} + d_k^2 (1-\beta_2)\, g_k^2 \\
        r_k &= \beta_3 r_{k-1} + \tfrac{d_k}{d_0}\lambda_k \langle g_k, x_0 - x_k\rangle,
        \qquad s_k = \beta_3 s_{k-1} + \tfrac{d_k}{d_0}\,\lambda_k\, g_k
        \quad(\tfrac{d_k}{d_0} d_k\, g_k \text{ with safeguard\_warmup}) \\
        \hat d &= c\, r_k / \|s_k\|_1, \qquad
        d_{k+1} = \min\bigl(\max(d_{\max}, \hat d),\ \gamma\, d'_k\bigr),\quad
        d'_k = \max(d_k, \hat d) \text{ while } d_k = d_0, \text{ else } d_k \\
        u_k &= \lambda_k\, \frac{m_k}{\sqrt{v_k} + d_{k+1}\epsilon} + \lambda_k \omega x_k
        \qquad(\beta_1 = 0:\ \lambda_k d_{k+1} \frac{g_k}{\sqrt{v_k} + d_{k+1}\epsilon})

    with :math:`\beta_3 = \sqrt{\beta_2}` by default, :math:`c` ``d_coef``, :math:`\gamma`
    ``growth_rate`` and :math:`\omega` the (decoupled) ``weight_decay``; :math:`d_{\max}`
    keeps the largest :math:`\hat d` (from :math:`d_0`). The output is the step itself in
    the gradient's direction (negate it to descend).

    Args:
      learning_rate: :math:`\eta > 0`, a multiplier of the estimated step (a number or
        a schedule); it enters the estimate too.
      b1, b2: :math:`\beta_1, \beta_2 \in [0, 1)`, the moments' decays.
      b3: :math:`\beta_3 \in [0, 1]`, the decay of the estimate's sums; ``None``:
        :math:`\sqrt{\beta_2}`.
      eps: :math:`\epsilon > 0`, added to :math:`\sqrt{v}` scaled by :math:`d_{k+1}`.
      weight_decay: :math:`\omega \ge 0`, decoupled weight decay scaled by :math:`\lambda_k`
        (for coupled L2, add it to the gradient before this block).
      use_bias_correction: Adam's bias correction in :math:`\lambda_k`.
      safeguard_warmup: leave :math:`\eta\rho` out of :math:`s`'s weight.
      d0: :math:`d_0 > 0`, the initial estimate.
      d_coef: :math:`c > 0`, a multiplier of the estimate.
      growth_rate: :math:`\gamma > 0`, the largest factor :math:`d` grows by per step.

    Returns:
      The transform; its state is :class:`ScaleByProdigyState` (moments, :math:`s`,
      :math:`x_0`, the estimate's scalars in the step dtype).

    Reference: ``prodigyopt.Prodigy(params, lr, betas=(b1, b2), beta3=b3, eps,
    weight_decay, decouple=True, use_bias_correction, safeguard_warmup, d0, d_coef,
    growth_rate)`` applied to the step; optax's ``contrib.prodigy`` is a port of an
    earlier version. https://arxiv.org/abs/2306.06101

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> state = optxform.scale_by_prodigy().init({"w": jnp.array([1.0, -2.0])})
        >>> state.d, state.p0["w"]  # d starts at d0; p0 is a copy of the params
        (Array(1.e-06, dtype=float32), Array([ 1., -2.], dtype=float32))
    """
    check_flag("use_bias_correction", use_bias_correction)
    check_flag("safeguard_warmup", safeguard_warmup)
    _check_growth_rate(growth_rate)
    return lift(PRODIGY, learning_rate=learning_rate, b1=b1, b2=b2, b3=b3, eps=eps,
                weight_decay=weight_decay, d0=d0, d_coef=d_coef,
                use_bias_correction=bool(use_bias_correction),
                safeguard_warmup=bool(safeguard_warmup), growth_rate=float(growth_rate))


# --- D-Adaptation Adam -------------------------------------------------------------------


class ScaleByDadaptAdamState(NamedTuple):
    """The state of :func:`scale_by_dadapt_adam` (the names are dadaptation's).

    Attributes:
      count: int32, the updates made (where a learning-rate schedule is read).
      exp_avg: the first moment of the step-scaled gradients, in the param dtype.
      exp_avg_sq: the second moment of the gradients, float32 or wider.
      s: the :math:`\sqrt{\beta_2}`-EMA of the weighted gradients, float32 or wider.
      d: the estimate :math:`d_k` (step dtype: float64 under ``jax_enable_x64``).
      numerator_weighted: the EMA :math:`r_k` of the weighted
        :math:`\langle g, s / (\sqrt{v} + \epsilon)\rangle`.
      k: int32, the steps taken (a skipped step is not counted).
    """

    count: jax.Array
    exp_avg: Any
    exp_avg_sq: Any
    s: Any
    d: jax.Array
    numerator_weighted: jax.Array
    k: jax.Array


def _dadapt_adam_scalars(st: Step) -> dict:
    h = st.h
    dlr = _adam_step_size(st)
    root = _sqrt(h["b2"])
    return {"dlr": dlr, "b1": h["b1"], "w1": dlr * one_minus(h["b1"]), "b2": h["b2"],
            "w2": one_minus(h["b2"]), "root": root, "ws": dlr * one_minus(root),
            "eps": h["eps"], "active": _active(st)}


def _dadapt_adam_accumulate(x: Leaf) -> tuple[dict, dict]:
    b = x.buffers
    denom = jnp.sqrt(b["exp_avg_sq"]) + x.s["eps"]  # the previous step's, as the reference
    new = _updated_moments(x, x.s["root"])
    return new, _sums_when_active(x, numerator=_dot(x.g, b["s"] / denom),
                                  l1=_sum_abs(new["s"]))


def _dadapt_adam_step(st: Step) -> tuple[dict, dict]:
    h, c = st.h, st.carried
    sc = _dadapt_adam_scalars(st)
    root, d, dlr = sc["root"], c["d"], sc["dlr"]
    numerator = (root * c["numerator_weighted"]
                 + one_minus(root) * (dlr * _summed(st, "numerator")))
    skip = _summed(st, "l1") == 0
    d_hat = numerator / (one_minus(root) * _summed(st, "l1"))
    d_new = jnp.maximum(d, jnp.minimum(d_hat, d * st.opt["growth_rate"]))
    carried = _kept_unless(skip, {"d": d_new, "numerator_weighted": numerator}, c)
    return {"eps": h["eps"], "decay": _wide(h["weight_decay"]) * dlr, "skip": skip}, carried


def _dadapt_adam_leaf(x: Leaf) -> tuple[jax.Array, dict]:
    s, b = x.s, x.buffers
    u = _as_the_reference_steps(x, b["exp_avg"] / (jnp.sqrt(b["exp_avg_sq"]) + s["eps"]))
    return jnp.where(s["skip"], jnp.zeros_like(u), u), dict(b)


DADAPT_ADAM = Rule(
    name="scale_by_dadapt_adam", kind="global", state=ScaleByDadaptAdamState,
    reads_params=True,
    hyperparameters=(_LEARNING_RATE, beta("b1"), beta("b2"), _positive("eps"),
                     non_negative("weight_decay"), _D0),
    options=("use_bias_correction", "growth_rate"),
    buffers=(Buffer("exp_avg"), Buffer("exp_avg_sq", "accumulator"), _S),
    scalars=(_D, Scalar("numerator_weighted", dtype="step"), _K),
    prepare=_dadapt_adam_scalars, accumulate=_dadapt_adam_accumulate,
    per_step=_dadapt_adam_step, leaf=_dadapt_adam_leaf)


def scale_by_dadapt_adam(learning_rate: ScalarOrSchedule = 1.0, b1: ArrayLike = 0.9,
                         b2: ArrayLike = 0.999, eps: ArrayLike = 1e-8,
                         weight_decay: ArrayLike = 0.0, use_bias_correction: bool = False,
                         d0: ArrayLike = 1e-6,
                         growth_rate: float = math.inf) -> GradientTransformation:
    r"""D-Adaptation's Adam step (Defazio & Mishchenko 2023), as ``dadaptation.DAdaptAdam`` 3.2.

    With :math:`\lambda_k = d_k\,\eta_k\,\rho_k` (:math:`\rho_k` Adam's bias correction
    :math:`\sqrt{1-\beta_2^{k+1}}/(1-\beta_1^{k+1})` with ``use_bias_correction``, else 1)
    and :math:`\beta = \sqrt{\beta_2}`:

    .. math::

        r_k &= \beta\, r_{k-1} + (1-\beta)\,\lambda_k
               \Big\langle g_k, \frac{s_{k-1}}{\sqrt{v_{k-1}} + \epsilon}\Big\rangle \\
        m_k &= \beta_1 m_{k-1} + \lambda_k (1-\beta_1)\, g_k, \quad
        v_k = \beta_2 v_{k-1} + (1-\beta_2)\, g_k^2, \quad
        s_k = \beta s_{k-1} + \lambda_k (1-\beta)\, g_k \\
        d_{k+1} &= \max\Big(d_k,\ \min\big(\tfrac{r_k}{(1-\beta)\|s_k\|_1},\
                   \gamma d_k\big)\Big), \qquad
        u_k = \frac{m_k}{\sqrt{v_k} + \epsilon} + \lambda_k \omega x_k

    with :math:`\gamma` ``growth_rate`` and :math:`\omega` the (decoupled) weight decay.
    The learning rate sits inside :math:`m` (so a change of :math:`\eta` reaches the step
    through the moment); the new :math:`d_{k+1}` first acts on the next step. The output
    is the step itself in the gradient's direction (negate it to descend).

    Args:
      learning_rate: :math:`\eta > 0`, a multiplier of the estimated step (a number or
        a schedule).
      b1, b2: :math:`\beta_1, \beta_2 \in [0, 1)`.
      eps: :math:`\epsilon > 0`.
      weight_decay: :math:`\omega \ge 0`, decoupled weight decay scaled by :math:`\lambda_k`
        (for coupled L2, add it to the gradient before this block).
      use_bias_correction: Adam's bias correction in :math:`\lambda_k`.
      d0: :math:`d_0 > 0`, the initial estimate.
      growth_rate: :math:`\gamma > 0`, the largest factor :math:`d` grows by per step.

    Returns:
      The transform; its state is :class:`ScaleByDadaptAdamState`.

    Reference: ``dadaptation.DAdaptAdam(params, lr, betas=(b1, b2), eps, weight_decay,
    decouple=True, use_bias_correction, d0, growth_rate)`` applied to the step.
    https://arxiv.org/abs/2301.07733

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.scale_by_dadapt_adam()
        >>> params = {"w": jnp.array([1.0, -2.0])}
        >>> _, state = tx.update({"w": jnp.array([0.5, 0.5])}, tx.init(params), params)
        >>> state.k  # steps taken (a step with all-zero gradients is not counted)
        Array(1, dtype=int32)
    """
    check_flag("use_bias_correction", use_bias_correction)
    _check_growth_rate(growth_rate)
    return lift(DADAPT_ADAM, learning_rate=learning_rate, b1=b1, b2=b2, eps=eps,
                weight_decay=weight_decay, d0=d0,
                use_bias_correction=bool(use_bias_correction), growth_rate=float(growth_rate))


# --- D-Adaptation SGD --------------------------------------------------------------------


class ScaleByDadaptSgdState(NamedTuple):
    """The state of :func:`scale_by_dadapt_sgd` (the names are dadaptation's).

    Attributes:
      count: int32, the updates made (where a learning-rate schedule is read).
      s: the sum of the weighted gradients, float32 or wider.
      x0: the params at ``init``, in the param dtype.
      d: the estimate :math:`d_k` (step dtype: float64 under ``jax_enable_x64``).
      numerator_weighted: the sum :math:`r_k` of the weighted :math:`\langle g, s\rangle`.
      g0_norm: the norm of the first gradient (weight decay left out, as the reference).
      k: int32, the steps taken (a skipped step is not counted).
    """

    count: jax.Array
    s: Any
    x0: Any
    d: jax.Array
    numerator_weighted: jax.Array
    g0_norm: jax.Array
    k: jax.Array


def _first_gradient_norm(updates: Any, params: Any, h: dict) -> dict:
    del params, h
    return {"g_sq": otu.sum_of_squares(updates).astype(step_dtype())}


def _dadapt_sgd_scalars(st: Step) -> dict:
    c = st.carried
    g0_norm = jnp.where(c["k"] == 0, jnp.sqrt(st.reduced["g_sq"]), c["g0_norm"])
    # The reference divides by zero when the first gradient is 0; the step is skipped
    # instead (nothing accumulates with a step size of 0) and g0 taken at the next one.
    size = c["d"] * _wide(st.h["learning_rate"])
    dlr = jnp.where(g0_norm > 0, size / jnp.where(g0_norm > 0, g0_norm, 1.0), 0.0)
    return {"dlr": dlr, "g0_norm": g0_norm, "weight_decay": st.h["weight_decay"],
            "active": _active(st)}


def _decayed_gradient(x: Leaf) -> jax.Array:
    """The reference's ``grad.add_(p, alpha=weight_decay)`` (coupled L2)."""
    return x.g if "weight_decay" in x.zero else x.g + x.s["weight_decay"] * _param(x)


def _dadapt_sgd_accumulate(x: Leaf) -> tuple[dict, dict]:
    s, b = x.s, x.buffers
    g = _decayed_gradient(x)
    new_s = jnp.where(s["active"], b["s"] + s["dlr"] * g, b["s"])
    return {"s": new_s}, _sums_when_active(x, numerator=_dot(g, b["s"]),
                                           sk_sq=jnp.sum(jnp.square(new_s)))


def _dadapt_sgd_step(st: Step) -> tuple[dict, dict]:
    c = st.carried
    sc = _dadapt_sgd_scalars(st)
    d = c["d"]
    numerator = c["numerator_weighted"] + sc["dlr"] * _summed(st, "numerator")
    skip = _summed(st, "sk_sq") == 0
    d_hat = 2 * numerator / jnp.sqrt(_summed(st, "sk_sq"))
    d_new = jnp.maximum(d, jnp.minimum(d_hat, d * st.opt["growth_rate"]))
    carried = _kept_unless(skip, {"d": d_new, "numerator_weighted": numerator,
                                  "g0_norm": sc["g0_norm"]}, c)
    ck = one_minus(st.h["momentum"])
    return {"ck": ck, "kept": one_minus(ck), "skip": skip}, carried


def _dadapt_sgd_leaf(x: Leaf) -> tuple[jax.Array, dict]:
    s, b = x.s, x.buffers
    z = b["x0"] - b["s"]
    p = _param(x)
    u = p - (s["kept"] * p + s["ck"] * z)
    return jnp.where(s["skip"], jnp.zeros_like(u), u), dict(b)


DADAPT_SGD = Rule(
    name="scale_by_dadapt_sgd", kind="global", state=ScaleByDadaptSgdState,
    reads_params=True,
    hyperparameters=(_LEARNING_RATE, beta("momentum"), non_negative("weight_decay"), _D0),
    options=("growth_rate",),
    buffers=(_S, Buffer("x0", from_params=True)),
    scalars=(_D, Scalar("numerator_weighted", dtype="step"), Scalar("g0_norm", dtype="step"),
             _K),
    reduce=_first_gradient_norm, prepare=_dadapt_sgd_scalars,
    accumulate=_dadapt_sgd_accumulate, per_step=_dadapt_sgd_step, leaf=_dadapt_sgd_leaf)


def scale_by_dadapt_sgd(learning_rate: ScalarOrSchedule = 1.0, momentum: ArrayLike = 0.0,
                        weight_decay: ArrayLike = 0.0, d0: ArrayLike = 1e-6,
                        growth_rate: float = math.inf) -> GradientTransformation:
    r"""D-Adaptation's SGD step (Defazio & Mishchenko 2023), as ``dadaptation.DAdaptSGD`` 3.2.

    The dual-averaging form: with :math:`g_k` the gradient plus :math:`\omega x_k`
    (coupled weight decay), :math:`\lambda_k = d_k \eta_k / \|g_0\|` and :math:`x_0` the
    params at ``init``:

    .. math::

        r_k &= r_{k-1} + \lambda_k \langle g_k, s_{k-1}\rangle, \qquad
        s_k = s_{k-1} + \lambda_k g_k \\
        d_{k+1} &= \max\big(d_k,\ \min(2 r_k / \|s_k\|_2,\ \gamma d_k)\big) \\
        x_{k+1} &= \mu\, x_k + (1-\mu)\,(x_0 - s_k), \qquad
        u_k = x_k - x_{k+1}

    with :math:`\mu` the momentum and :math:`\gamma` ``growth_rate``; :math:`\|g_0\|` is
    the norm of the first gradient *without* the weight decay term (the reference's
    quirk). The output is the step in the gradient's direction (negate it to descend).
    A first gradient of zero (a division by zero in the reference) skips the step.

    Args:
      learning_rate: :math:`\eta > 0`, a multiplier of the estimated step (a number or
        a schedule).
      momentum: :math:`\mu \in [0, 1)`, the averaging of the iterates.
      weight_decay: :math:`\omega \ge 0`, coupled L2 (added to the gradient after
        :math:`\|g_0\|` is taken).
      d0: :math:`d_0 > 0`, the initial estimate.
      growth_rate: :math:`\gamma > 0`, the largest factor :math:`d` grows by per step.

    Returns:
      The transform; its state is :class:`ScaleByDadaptSgdState`.

    Reference: ``dadaptation.DAdaptSGD(params, lr, momentum, weight_decay, d0,
    growth_rate)`` applied to the step (its ``z`` is :math:`x_0 - s_k`, recomputed).
    https://arxiv.org/abs/2301.07733

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.scale_by_dadapt_sgd(momentum=0.9)
        >>> state = tx.init(jnp.array([1.0, -2.0]))
        >>> state.x0, state.g0_norm  # the start, and the first gradient's norm (to come)
        (Array([ 1., -2.], dtype=float32), Array(0., dtype=float32))
    """
    _check_growth_rate(growth_rate)
    return lift(DADAPT_SGD, learning_rate=learning_rate, momentum=momentum,
                weight_decay=weight_decay, d0=d0, growth_rate=float(growth_rate))

