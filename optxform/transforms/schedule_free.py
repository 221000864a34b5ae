r"""Schedule-Free (Defazio et al. 2024): the interpolation, Adam's normaliser, the eval point.

Schedule-Free keeps two sequences besides the params: :math:`z` (plain SGD steps) and
:math:`x` (a weighted average of the :math:`z`), and evaluates gradients at their
interpolation :math:`y = (1 - \beta) z + \beta x`. As in the authors' ``schedulefree``
package, the params a user holds are the training point :math:`y` and only :math:`z` is
stored; the averaged point is recovered from them by :func:`schedule_free_eval_params`
(the package's ``optimizer.eval()``).

* :func:`scale_by_schedule_free`: the interpolation step, from any incoming direction
  (the gradient for SGD, the Adam-normalised gradient for AdamW, weight decay added at
  :math:`y`), with the package's warm-up and averaging weights;
* :func:`scale_by_bias_corrected_rms`: Schedule-Free AdamW's normaliser, Adam's
  bias-corrected second moment without a first moment;
* :func:`schedule_free_eval_params`: the evaluation point :math:`x` from a state and
  :math:`y`.

The per-step scalars (warm-up, weights, their running sum) are computed in
:func:`~optxform.tree.numerics.step_dtype` (float64 under ``jax_enable_x64``, as the
package does on the host), then rounded once to the params' compute dtype.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from optxform import tree as otu
from optxform.core import GradientTransformation, OptState, ScalarOrSchedule, Updates
from optxform.core.validation import check_integer, check_non_negative, check_range
from optxform.rules import Buffer, Hyperparameter, Leaf, Rule, Scalar, Step, beta, lift
from optxform.tree.numerics import bias_correction, ema_of_square, lerp, one_minus, step_dtype

__all__ = ["ScaleByBiasCorrectedRmsState", "ScaleByScheduleFreeState",
           "scale_by_bias_corrected_rms", "scale_by_schedule_free",
           "schedule_free_eval_params"]


def _open_unit(name: str, value: Any) -> None:
    check_range(name, value, 0.0, 1.0, low_closed=False)


def _count(name: str, value: Any) -> None:
    """A whole number of steps ``>= 0`` (an int, or an injected scalar)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        check_integer(name, value if isinstance(value, int) or not value.is_integer()
                      else int(value), minimum=0)


# --- Schedule-Free interpolation -----------------------------------------------------------


class ScaleByScheduleFreeState(NamedTuple):
    """The state of :func:`scale_by_schedule_free`.

    Attributes:
      count: int32, the updates made (the package's ``k``), saturating.
      z: the SGD sequence :math:`z` (the package's ``state['z']``), a tree like the params
        in their dtypes; it starts as a copy of the params.
      b1: the interpolation :math:`\beta` the last update used, read by
        :func:`schedule_free_eval_params`.
      lr_max: the largest warmed-up learning rate so far (the package's ``lr_max``; -1
        before the first update).
      weight_sum: the sum of the averaging weights so far (the package's ``weight_sum``).

    The scalars are float32, or float64 under ``jax_enable_x64``.
    """

    count: jax.Array  # type: ignore[assignment]  # int32: updates made (the package's k)
    z: Updates             # the SGD sequence z, in the param dtype; starts at the params
    b1: jax.Array          # the interpolation beta last used (read by the eval helper)
    lr_max: jax.Array      # the largest (warmed-up) learning rate so far; starts at -1
    weight_sum: jax.Array  # the sum of the averaging weights so far


def _schedule_free_step(st: Step) -> tuple[dict, dict]:
    dtype = step_dtype()
    h, t = st.h, st.t.astype(dtype)
    warmup = jnp.asarray(h["warmup_steps"], dtype)
    # The package: sched = (k + 1) / warmup_steps while k < warmup_steps, else 1.
    sched = jnp.where(t <= warmup, t / jnp.maximum(warmup, 1.0), 1.0)
    lr = jnp.asarray(h["learning_rate"], dtype) * sched
    lr_max = jnp.maximum(lr, st.carried["lr_max"])
    weight = t ** jnp.asarray(h["r"], dtype) * lr_max ** jnp.asarray(h["weight_lr_power"], dtype)
    weight_sum = st.carried["weight_sum"] + weight
    ckp1 = jnp.where(weight_sum != 0, weight / jnp.where(weight_sum != 0, weight_sum, 1.0), 0.0)
    b1 = jnp.asarray(h["b1"], dtype)
    scalars = {"ckp1": ckp1, "lr": lr, "y_step": lr * (b1 * (1.0 - ckp1) - 1.0)}
    return scalars, {"b1": b1, "lr_max": lr_max, "weight_sum": weight_sum}


def _schedule_free_leaf(x: Leaf) -> tuple[jax.Array, dict]:
    s, y, z = x.s, x.p, x.buffers["z"]
    assert y is not None  # the rule reads params: lift passes them
    # The package's y.lerp_(z, ckp1); y.add_(g, alpha=lr (b1 (1 - ckp1) - 1)); z.sub_(g, lr).
    new_y = lerp(y, z, s["ckp1"]) + s["y_step"] * x.g
    return new_y - y, {"z": z - s["lr"] * x.g}


SCHEDULE_FREE = Rule(
    name="scale_by_schedule_free", kind="elementwise", state=ScaleByScheduleFreeState,
    hyperparameters=(Hyperparameter("learning_rate", check_non_negative, schedule=True),
                     Hyperparameter("b1", _open_unit), Hyperparameter("warmup_steps", _count),
                     Hyperparameter("r", check_non_negative),
                     Hyperparameter("weight_lr_power", check_non_negative)),
    buffers=(Buffer("z", "param", from_params=True),),
    scalars=(Scalar("b1", fill="b1", dtype="step"), Scalar("lr_max", -1.0, dtype="step"),
             Scalar("weight_sum", dtype="step")),
    reads_params=True, per_step=_schedule_free_step, leaf=_schedule_free_leaf)


def scale_by_schedule_free(learning_rate: ScalarOrSchedule = 0.0025, b1: ArrayLike = 0.9,
                           warmup_steps: int = 0, r: ArrayLike = 0.0,
                           weight_lr_power: ArrayLike = 2.0) -> GradientTransformation:
    r"""Schedule-Free's step on the training point :math:`y`, from a direction :math:`d_t`.

    With :math:`k = t - 1` updates made, the package's warm-up and averaging weights

    .. math::

        \gamma_t &= \gamma \cdot \min\!\big(t / T_{\text{warmup}},\ 1\big), \qquad
        \gamma_{\max,t} = \max(\gamma_{\max,t-1}, \gamma_t) \\
        w_t &= t^{\,r}\, \gamma_{\max,t}^{\,p}, \qquad
        c_t = w_t / \textstyle\sum_{i \le t} w_i \quad (0 \text{ while the sum is } 0)

    then, with :math:`d_t` the incoming update (a gradient, or a normalised one, evaluated
    at :math:`y_{t-1}`; weight decay already added at :math:`y_{t-1}`),

    .. math::

        y_t &= \operatorname{lerp}(y_{t-1}, z_{t-1}, c_t)
               + \gamma_t\big(\beta (1 - c_t) - 1\big)\, d_t \\
        z_t &= z_{t-1} - \gamma_t\, d_t, \qquad z_0 = y_0

    and emits :math:`y_t - y_{t-1}` (so ``apply_updates`` moves the params to
    :math:`y_t`). This is the package's in-place form of :math:`x_t = (1 - c_t) x_{t-1}
    + c_t z_t` and :math:`y_t = (1 - \beta) z_t + \beta x_t`, with :math:`x` never stored:
    :func:`schedule_free_eval_params` recovers it. The learning rate sits inside the rule
    (it sets both :math:`z`'s step and the averaging weights), so no ``scale_by_learning_rate``
    member follows it. The chain must be given the params (it reads :math:`y`).

    Args:
      learning_rate: :math:`\gamma \ge 0`, a number or a schedule (the warm-up multiplies
        it; a schedule's largest value so far sets the weights).
      b1: :math:`\beta \in (0, 1)`, the interpolation (the package's ``betas[0]`` for
        AdamW, ``momentum`` for SGD).
      warmup_steps: :math:`T_{\text{warmup}} \ge 0`, linear warm-up steps (0: none).
      r: :math:`r \ge 0`, the polynomial weighting power.
      weight_lr_power: :math:`p \ge 0`, the power of :math:`\gamma_{\max}` in the weights.

    Returns:
      A ``GradientTransformation`` with state :class:`ScaleByScheduleFreeState`: int32
      ``count``; ``z`` in the param dtype (a complex param's as its real view); the
      scalars ``b1``, ``lr_max`` and ``weight_sum`` in float32 (float64 under x64).

    Equivalents: the step of ``schedulefree.SGDScheduleFree`` /
    ``AdamWScheduleFree`` (1.4.1) on its params in train mode;
    ``optax.contrib.schedule_free`` differs (see :func:`optxform.schedule_free_sgd`).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.scale_by_schedule_free(learning_rate=0.1, b1=0.9)
        >>> params = {"w": jnp.array([1.0, 2.0])}
        >>> updates, state = tx.update({"w": jnp.array([1.0, -1.0])}, tx.init(params), params)
        >>> optxform.apply_updates(params, updates)["w"]   # c_1 = 1: y_1 = z_0 - lr d
        Array([0.9, 2.1], dtype=float32)
        >>> state.z["w"]
        Array([0.9, 2.1], dtype=float32)
    """
    return lift(SCHEDULE_FREE, learning_rate=learning_rate, b1=b1, warmup_steps=warmup_steps,
                r=r, weight_lr_power=weight_lr_power)


# --- Adam's normaliser ---------------------------------------------------------------------


class ScaleByBiasCorrectedRmsState(NamedTuple):
    """The state of :func:`scale_by_bias_corrected_rms`.

    Attributes:
      count: int32, the updates made so far, saturating.
      nu: the second moment :math:`v` (the package's ``exp_avg_sq``), float32 or wider
        (or ``nu_dtype``).
    """

    count: jax.Array  # type: ignore[assignment]  # int32: updates made so far, saturating
    nu: Updates       # second moment v (the package's ``exp_avg_sq``): float32 or wider


def _bias_corrected_rms_step(st: Step) -> tuple[dict, dict]:
    b2 = st.h["b2"]
    return {"b2": b2, "w2": one_minus(b2), "bc2": bias_correction(b2, st.t),
            "eps": st.h["eps"]}, {}


def _bias_corrected_rms_leaf(x: Leaf) -> tuple[jax.Array, dict]:
    s = x.s
    nu = ema_of_square(x.buffers["nu"], x.g, s["b2"], s["w2"])
    return x.g / (jnp.sqrt(nu / s["bc2"]) + s["eps"]), {"nu": nu}


BIAS_CORRECTED_RMS = Rule(
    name="scale_by_bias_corrected_rms", kind="elementwise", state=ScaleByBiasCorrectedRmsState,
    hyperparameters=(beta("b2"), Hyperparameter("eps", check_non_negative)),
    buffers=(Buffer("nu", "accumulator", dtype_option="nu_dtype", non_negative=True),),
    per_step=_bias_corrected_rms_step, leaf=_bias_corrected_rms_leaf)


def scale_by_bias_corrected_rms(b2: ArrayLike = 0.999, eps: ArrayLike = 1e-8,
                                nu_dtype: DTypeLike | None = None) -> GradientTransformation:
    r"""Divide by the root of Adam's bias-corrected second moment (no first moment).

    .. math::

        v_t = \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2, \qquad
        u_t = \frac{g_t}{\sqrt{v_t / (1 - \beta_2^t)} + \epsilon}

    Schedule-Free AdamW's normaliser: its momentum comes from the interpolation of
    :func:`scale_by_schedule_free`, not from a first moment.

    Args:
      b2: :math:`\beta_2 \in [0, 1)`.
      eps: :math:`\epsilon \ge 0`, added after the square root.
      nu_dtype: storage dtype of :math:`v`; ``None``: float32 or wider.

    Returns:
      A ``GradientTransformation`` with state :class:`ScaleByBiasCorrectedRmsState`
      (int32 ``count``; ``nu`` float32 or wider).

    Equivalents: the package's ``exp_avg_sq`` and ``denom`` in ``AdamWScheduleFree.step``
    (the bias correction divides :math:`v_t` before the root, as there);
    ``optax.scale_by_adam(b1=0.0, b2, eps)`` up to rounding (optax divides after the root).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.scale_by_bias_corrected_rms(b2=0.0, eps=0.0)
        >>> g = {"w": jnp.array([0.5, -2.0])}
        >>> u, _ = tx.update(g, tx.init(g))
        >>> u["w"]   # b2 = 0 (and the first step of any b2): g / |g|, up to eps
        Array([ 1., -1.], dtype=float32)
    """
    return lift(BIAS_CORRECTED_RMS, b2=b2, eps=eps, nu_dtype=nu_dtype)


# --- The evaluation point ------------------------------------------------------------------


def schedule_free_eval_params(state: OptState, params: Any) -> Any:
    r"""The evaluation point :math:`x` of a Schedule-Free run, from its state and :math:`y`.

    .. math::

        x_t = \operatorname{lerp}\big(y_t,\ z_t,\ 1 - 1/\beta\big)
            = \frac{y_t - (1 - \beta)\, z_t}{\beta}

    exactly as the package's ``optimizer.eval()`` sets its params (``p.lerp_(z,
    1 - 1/beta1)``); :math:`\beta` is the one the last update used. Before the first update
    :math:`z = y` and the result is ``params``. Use :math:`x` to evaluate, test or save the
    model; keep training from :math:`y` (the params themselves): no ``train()`` call is
    needed, since nothing was changed in place.

    Args:
      state: a state holding a :class:`ScaleByScheduleFreeState`: that of
        :func:`optxform.schedule_free_adamw`, :func:`optxform.schedule_free_sgd` or
        :func:`scale_by_schedule_free`, alone or inside any chain, named chain or wrapper
        state (``inject_hyperparams``, ``masked``, ``MultiSteps``, ...). Param groups
        (``multi_transform``, ``masked``) may hold several, each for its own params;
        params outside every one are returned as they are. A ``packed`` state holds
        ``z`` packed: convert it with ``optxform.unpack_state`` first.
      params: the training point :math:`y`, the params the optimizer updates.

    Returns:
      A tree like ``params`` (same dtypes) holding :math:`x`, computed in float32 or wider.

    Raises:
      ValueError: if ``state`` holds no Schedule-Free state, or two for the same param,
        or if a ``z`` does not match ``params``' structure.

    Equivalents: ``schedulefree``'s ``optimizer.eval()``;
    ``optax.contrib.schedule_free_eval_params(state, params)``.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.schedule_free_sgd(learning_rate=0.1)
        >>> params = {"w": jnp.array([1.0, 2.0])}
        >>> state = tx.init(params)
        >>> updates, state = tx.update({"w": jnp.array([1.0, -1.0])}, state, params)
        >>> params = optxform.apply_updates(params, updates)
        >>> optxform.schedule_free_eval_params(state, params)["w"]   # x_1 = z_1
        Array([0.9, 2.1], dtype=float32)
    """
    found = [node for node in jax.tree.leaves(
        state, is_leaf=lambda x: isinstance(x, ScaleByScheduleFreeState))
        if isinstance(node, ScaleByScheduleFreeState)]
    if not found:
        raise ValueError("schedule_free_eval_params: the state holds no Schedule-Free state "
                         "(was it made by schedule_free_adamw, schedule_free_sgd or "
                         "scale_by_schedule_free?)")
    flat_params, treedef = jax.tree_util.tree_flatten_with_path(
        params, is_leaf=lambda x: x is None)
    claims: list[list] = [[] for _ in flat_params]  # per param: (z leaf, weight) pairs
    for sf in found:
        try:
            zs = treedef.flatten_up_to(sf.z)  # type: ignore[attr-defined]
        except (ValueError, TypeError):
            try:
                otu.check_same_structure(params, sf.z, "params", "the state's z",
                                         check_shapes=False)
                detail = "the state's z does not match params"
            except ValueError as error:
                detail = str(error)
            raise ValueError(f"schedule_free_eval_params: {detail} (for a packed state, "
                             "call optxform.unpack_state first)") from None
        weight = 1.0 - 1.0 / sf.b1
        for i, z in enumerate(zs):
            if z is not None and hasattr(z, "dtype"):  # not a masked-out param's node
                claims[i].append((z, weight))

    def x_of(path, y, claim):
        if y is None or not claim:  # not a Schedule-Free param: x = y
            return y
        if len(claim) > 1:
            raise ValueError(f"schedule_free_eval_params: {len(claim)} Schedule-Free states "
                             f"hold param {otu.path_to_str(path)!r}; pass the one you mean")
        (z, weight), y = claim[0], jnp.asarray(y)
        dtype = otu.at_least_float32(otu.real_view(y).dtype)
        x = lerp(otu.real_view(y).astype(dtype), z.astype(dtype), weight.astype(dtype))
        if jnp.iscomplexobj(y):
            x = otu.complex_from_real_view(x)
        return x.astype(y.dtype)

    return jax.tree_util.tree_unflatten(
        treedef, [x_of(path, y, claim) for (path, y), claim in zip(flat_params, claims)])
