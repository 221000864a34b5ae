r"""PSGD-Kron: a Kronecker-factored preconditioner fitted online from random probes.

PSGD (Li 2015, 2018) fits a preconditioner :math:`P = Q^\top Q` so that :math:`P` maps
perturbations of the gradient to perturbations of the params as the inverse Hessian would,
by a few cheap gradient steps on :math:`Q` per update. Kron keeps :math:`Q` as one factor
per axis of each param (a :math:`d\times d` upper-triangular matrix, or a diagonal for large
or unit axes), so :math:`P` is a Kronecker product. This is ``kron-torch`` 0.3.3's
``Kron`` (Evan Walters' port of Xi-Lin Li's ``psgd_torch``), as one declared "matrix" rule
(:func:`scale_by_kron`, see :mod:`optxform.rules`) and the schedule of its update
probability (:func:`precond_update_prob_schedule`).
"""

from __future__ import annotations

import math
import zlib
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike, DTypeLike

from optxform.core import GradientTransformation, Schedule, Updates
from optxform.core.trees import path_to_str
from optxform.core.validation import (check_dtype, check_flag, check_integer,
                                      check_non_negative, check_one_of, check_positive)
from optxform.rules import Buffer, Hyperparameter, Leaf, Rule, Scalar, Step, beta, lift
from optxform.tree.math import unfused
from optxform.tree.numerics import as_f32, bias_correction, is_number, one_minus
from optxform.tree.sharding import gathered, resharded

__all__ = ["ScaleByKronState", "precond_update_prob_schedule", "scale_by_kron"]

MemorySaveMode = Literal["smart_one_diag", "one_diag", "all_diag"] | None

_HIGHEST = jax.lax.Precision.HIGHEST
# kron-torch perturbs the probed gradient by sqrt(float32 eps) * mean|G| * V, whatever the
# preconditioner's dtype, and balances the factors with probability 0.01 per update.
_PROBE_SCALE = math.sqrt(float(np.finfo(np.float32).eps))
_BALANCE_PROBABILITY = 0.01
# kron-torch's update clipping: the preconditioned update's RMS is kept at most 1.1.
_MAX_RMS, _RMS_EPS = 1.1, 1e-12


def precond_update_prob_schedule(max_prob: float = 1.0, min_prob: float = 0.03,
                                 decay: float = 0.001, flat_start: float = 500) -> Schedule:
    r"""Kron's default probability of a preconditioner update: flat, then annealed.

    .. math::

        p(t) = \mathrm{clip}\big(p_{\max}\, e^{-\delta (t - t_0)},\ p_{\min},\ p_{\max}\big)

    computed in float32 as ``kron-torch`` does, at :math:`t` = the number of updates made
    before this one. With the defaults :math:`p = 1` for 500 steps, then decays to
    :math:`p_{\min} = 0.03` by step 4,000.

    Args:
      max_prob: :math:`p_{\max}`, the probability during the flat start.
      min_prob: :math:`p_{\min}`, the floor.
      decay: :math:`\delta \ge 0`, the exponential rate after the flat start.
      flat_start: :math:`t_0`, the steps before the anneal begins.

    Returns:
      A schedule: a jit-safe function of the int step returning a float32 probability.

    Equivalent: ``kron_torch.precond_update_prob_schedule`` (same names and defaults).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> p = optxform.precond_update_prob_schedule()
        >>> [round(float(p(jnp.asarray(t))), 4) for t in (0, 500, 1500, 5000)]
        [1.0, 1.0, 0.3679, 0.03]
    """
    for name, value in (("max_prob", max_prob), ("min_prob", min_prob), ("decay", decay),
                        ("flat_start", flat_start)):
        check_non_negative(name, value)

    def schedule(count: ArrayLike) -> jax.Array:
        n = jnp.asarray(count).astype(jnp.float32)
        prob = as_f32(max_prob) * jnp.exp(-as_f32(decay) * (n - as_f32(flat_start)))
        return jnp.minimum(jnp.maximum(prob, as_f32(min_prob)), as_f32(max_prob))

    return schedule


# --- the shape of each param's preconditioner -------------------------------------------------

def _view_shape(shape: tuple[int, ...], merge_dims: bool) -> tuple[int, ...]:
    """The shape a param is preconditioned in.

    A scalar is a vector of one (kron-torch's scalar preconditioner is one diagonal entry);
    with ``merge_dims`` a param of three or more axes becomes a matrix, ``(prod(shape[:-1]),
    shape[-1])`` or ``(shape[0], prod(shape[1:]))``, whichever kron-torch's signed
    difference ``cols - rows`` prefers (the first on a tie).
    """
    if len(shape) == 0:
        return (1,)
    if len(shape) > 2 and merge_dims:
        first = (math.prod(shape[:-1]), shape[-1])
        second = (shape[0], math.prod(shape[1:]))
        return first if first[1] - first[0] <= second[1] - second[0] else second
    return tuple(shape)


def _diagonal_axes(view: tuple[int, ...], opt: dict) -> tuple[bool, ...]:
    """Which axes get a diagonal factor (the others an upper-triangular matrix)."""
    n = len(view)
    mode = opt["memory_save_mode"]
    largest = int(np.argsort(view)[::-1][0])  # kron-torch's choice among equal sizes
    chosen = [False] * n
    if mode == "all_diag":
        chosen = [True] * n
    elif mode == "one_diag":
        chosen[largest] = True
    elif mode == "smart_one_diag" and n > 1 and sorted(view)[-1] > sorted(view)[-2]:
        chosen[largest] = True
    return tuple(size == 1 or size > opt["max_size_triangular"]
                 or n < opt["min_ndim_triangular"] or d for size, d in zip(view, chosen))


def _initial_factors(shape: tuple[int, ...], dtype: Any, opt: dict) -> tuple[jax.Array, ...]:
    """:math:`Q_0`: ``precond_init_scale ** (1 / ndim)`` times the identity, per axis."""
    view = _view_shape(shape, opt["merge_dims"])
    scale = jnp.asarray(opt["precond_init_scale"] ** (1.0 / len(view)), dtype)
    return tuple(scale * (jnp.ones((n,), dtype) if diagonal else jnp.eye(n, dtype=dtype))
                 for n, diagonal in zip(view, _diagonal_axes(view, opt)))


# --- the Kronecker-factored linear algebra ----------------------------------------------------

def _on_axis(diagonal: jax.Array, ndim: int, axis: int) -> jax.Array:
    """A diagonal factor shaped to broadcast along ``axis`` of an ``ndim``-axis array."""
    return diagonal.reshape(tuple(-1 if i == axis else 1 for i in range(ndim)))


def _along(factor: jax.Array, x: jax.Array, axis: int) -> jax.Array:
    """``x`` multiplied by ``factor`` along ``axis``: ``y[..a..] = sum_n F[a, n] x[..n..]``
    (a diagonal ``factor`` scales that axis)."""
    if factor.ndim == 1:
        return x * _on_axis(factor, x.ndim, axis)
    y = jnp.tensordot(factor, x, axes=((1,), (axis,)), precision=_HIGHEST)
    return jnp.moveaxis(y, 0, axis)


def _solve_along(factor: jax.Array, x: jax.Array, axis: int) -> jax.Array:
    """``x`` times :math:`Q^{-1}` from the right along ``axis`` (``Q`` upper triangular or
    diagonal): ``y[..j..] = sum_i x[..i..] inv(Q)[i, j]``, a triangular solve."""
    if factor.ndim == 1:
        return x / _on_axis(factor, x.ndim, axis)
    moved = jnp.moveaxis(x, axis, -1)
    flat = moved.reshape(-1, moved.shape[-1])
    y = jax.lax.linalg.triangular_solve(factor, flat, left_side=False, lower=False)
    return jnp.moveaxis(y.reshape(moved.shape), -1, axis)


def _gram(x: jax.Array, axis: int, diagonal: bool) -> jax.Array:
    """:math:`X_{(i)} X_{(i)}^\top` of the unfolding along ``axis`` (its diagonal only for a
    diagonal factor)."""
    rows = jnp.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)
    if diagonal:
        return jnp.sum(rows * rows, axis=1)
    return jnp.matmul(rows, rows.T, precision=_HIGHEST)


def _norm_lower_bound(a: jax.Array, max_abs: jax.Array) -> jax.Array:
    """A cheap lower bound of the spectral norm of the symmetric ``a`` (``max_abs`` its
    largest entry): one power iteration from its largest column, as kron-torch."""
    a = a / max_abs
    x = a[:, jnp.argmax(jnp.sum(a * a, axis=0))]
    x = jnp.matmul(x, a, precision=_HIGHEST)
    x = x / jnp.linalg.norm(x)
    x = jnp.matmul(a, x, precision=_HIGHEST)
    return jnp.linalg.norm(x) * max_abs


def _balanced(q: tuple, balance: jax.Array) -> tuple:
    """The factors rescaled to equal largest entries (their product, so ``P``, unchanged),
    where ``balance`` holds."""
    norms = jnp.stack([jnp.max(jnp.abs(f)) for f in q])
    scales = jnp.where(balance, jnp.exp(jnp.mean(jnp.log(norms))) / norms, 1.0)
    return tuple(f * scales[i] for i, f in enumerate(q))


def _fit_factors(q: tuple, g: jax.Array, v: jax.Array, lr: jax.Array) -> tuple:
    r"""One step of PSGD's fit of each factor on the pair (probe ``v``, perturbed ``g``).

    With :math:`A = G \times_i Q_i` and :math:`B = V \times_i Q_i^{-\top}` over every axis,
    per axis :math:`E = A_{(i)}A_{(i)}^\top - B_{(i)}B_{(i)}^\top` and
    :math:`S = A_{(i)}A_{(i)}^\top + B_{(i)}B_{(i)}^\top`:
    :math:`Q_i \leftarrow Q_i - \eta\, \mathrm{triu}(E)\, Q_i / \underline{\lVert S\rVert}`
    (a lower bound of the spectral norm), or for a diagonal factor
    :math:`Q_i \leftarrow Q_i - \eta\, E\, Q_i / \max|S|`.
    """
    tiny = jnp.asarray(jnp.finfo(g.dtype).tiny, g.dtype)
    a, b = g, v
    for axis, f in enumerate(q):
        a = _along(f, a, axis)
        b = _solve_along(f, b, axis)
    new = []
    for axis, f in enumerate(q):
        diagonal = f.ndim == 1
        aa, bb = _gram(a, axis, diagonal), _gram(b, axis, diagonal)
        err, total = (aa - bb) * lr, aa + bb
        norm = jnp.max(jnp.abs(total))
        if diagonal:
            new.append(f - err * (f / jnp.maximum(norm, tiny)))
        else:
            bound = jnp.where(norm > 0, _norm_lower_bound(total, norm), norm)
            step = jnp.triu(err) / jnp.maximum(bound, tiny)
            new.append(f - jnp.matmul(step, f, precision=_HIGHEST))
    return tuple(new)


def _precondition(q: tuple, g: jax.Array) -> jax.Array:
    """:math:`P G`: ``G`` times :math:`Q_i^\top Q_i` along every axis."""
    for axis, f in enumerate(q):
        g = _along(f.T, _along(f, g, axis), axis)
    return g


def _path_id(path: tuple) -> int:
    """A stable number for a param's key path (the probe's key is folded with it)."""
    return zlib.crc32(path_to_str(path).encode()) & 0x7FFFFFFF


def probe_key(seed: int, count: ArrayLike, path: tuple) -> jax.Array:
    """The PRNG key of the probe vector of the param at ``path`` in the update made after
    ``count`` others: ``fold_in(fold_in(fold_in(key(seed), count), 1), crc32(path))``."""
    step = jax.random.fold_in(jax.random.key(seed), jnp.asarray(count, jnp.int32))
    return jax.random.fold_in(jax.random.fold_in(step, 1), _path_id(path))


def balance_draw(seed: int, count: ArrayLike) -> jax.Array:
    """The uniform draw deciding whether the update after ``count`` others balances the
    factors (below 0.01, on a preconditioner update)."""
    step = jax.random.fold_in(jax.random.key(seed), jnp.asarray(count, jnp.int32))
    return jax.random.uniform(jax.random.fold_in(step, 0))


# --- the rule ---------------------------------------------------------------------------------

class ScaleByKronState(NamedTuple):
    """The state of :func:`scale_by_kron`.

    Attributes:
      count: int32 scalar, the number of updates made so far (saturating).
      counter: float32 scalar, updates since the preconditioners were last fitted
        (kron-torch's ``_update_counter``).
      mu: the momentum buffer, a tree like the params in the param dtype (or ``mu_dtype``).
      q: the Kronecker factors: for each param a tuple with one factor per axis of the
        shape it is preconditioned in, a ``(d, d)`` upper-triangular matrix or a ``(d,)``
        diagonal, in ``precond_dtype`` (kron-torch's ``Q``).
    """

    count: jax.Array  # type: ignore[assignment]  # (mypy: shadows tuple.count)
    counter: jax.Array
    mu: Updates
    q: Updates


def _kron_step(st: Step) -> tuple[dict, dict]:
    h = st.h
    prob = h["preconditioner_update_probability"]
    # kron-torch: update when the counter reaches 1 / p (a Python number's reciprocal in
    # float64, a schedule's in float32); the counter then restarts.
    threshold: float | jax.Array
    if is_number(prob):
        threshold = math.inf if prob == 0 else float(math.ceil(1.0 / prob))
    else:
        threshold = 1.0 / as_f32(prob)
    counter = st.carried["counter"] + 1.0
    update = counter >= threshold
    balance = jnp.logical_and(balance_draw(st.opt["seed"], st.count) < _BALANCE_PROBABILITY,
                              update)
    return {"b1": h["b1"], "w": one_minus(h["b1"]), "bc": bias_correction(h["b1"], st.t),
            "precond_lr": h["precond_lr"], "update": update, "balance": balance,
            "count": st.count}, {"counter": jnp.where(update, 0.0, counter)}


def _kron_leaf(x: Leaf) -> tuple[jax.Array, dict]:
    s, opt = x.s, x.opt
    dtype = jnp.dtype(opt["precond_dtype"])
    view = _view_shape(x.g.shape, opt["merge_dims"])
    # torch: buf.mul_(b1).add_(g, alpha=1 - b1): the product rounded, then a multiply-add.
    mu = unfused(s["b1"] * x.buffers["mu"]) + s["w"] * x.g
    momentum, sharding = gathered(mu / s["bc"])
    momentum = momentum.reshape(view).astype(dtype)
    into = opt["momentum_into_precond_update"]
    grad = None if into else gathered(x.g)[0].reshape(view).astype(dtype)

    def fit(q, momentum):
        if len(view) > 1:
            q = _balanced(q, s["balance"])
        probed = momentum if into else grad
        v = jax.random.normal(probe_key(opt["seed"], s["count"], x.path), view, dtype)
        scale = jnp.asarray(_PROBE_SCALE, dtype) * jnp.mean(jnp.abs(probed))
        probed = probed + scale * v
        new = _fit_factors(q, probed, v, s["precond_lr"].astype(dtype))
        # A non-finite fit (an overflow) keeps the factors it started from.
        finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(f)) for f in new]))
        q = tuple(jnp.where(finite, n, f) for n, f in zip(new, q))
        # kron-torch perturbs the momentum in place: the perturbed one is preconditioned.
        return q, (probed if into else momentum)

    q, momentum = jax.lax.cond(s["update"], fit, lambda q, m: (q, m),
                               tuple(x.buffers["q"]), momentum)
    u = _precondition(q, momentum)
    u = u * jnp.minimum(1.0, _MAX_RMS / (jnp.sqrt(jnp.mean(jnp.square(u))) + _RMS_EPS))
    u = resharded(u.astype(x.g.dtype).reshape(x.g.shape), sharding)
    return u, {"mu": mu, "q": q}


def _probability_check(name: str, value: Any) -> None:
    if not callable(value):
        check_non_negative(name, value)


KRON = Rule(
    name="scale_by_kron", kind="matrix", state=ScaleByKronState,
    hyperparameters=(beta("b1"), Hyperparameter("precond_lr", check_non_negative),
                     Hyperparameter("preconditioner_update_probability", _probability_check,
                                    schedule=True)),
    buffers=(Buffer("mu", dtype_option="mu_dtype"),
             Buffer("q", dtype_option="precond_dtype", make=_initial_factors)),
    scalars=(Scalar("counter", 0.0),),
    options=("max_size_triangular", "min_ndim_triangular", "memory_save_mode",
             "momentum_into_precond_update", "precond_init_scale", "merge_dims", "seed"),
    per_step=_kron_step, leaf=_kron_leaf, reads_path=True)


def scale_by_kron(b1: ArrayLike = 0.9,
                  preconditioner_update_probability: ArrayLike | Schedule | None = None,
                  max_size_triangular: int = 8192, min_ndim_triangular: int = 2,
                  memory_save_mode: MemorySaveMode = None,
                  momentum_into_precond_update: bool = True, precond_lr: ArrayLike = 0.1,
                  precond_init_scale: float = 1.0, merge_dims: bool = True,
                  mu_dtype: DTypeLike | None = None, precond_dtype: DTypeLike | None = None,
                  *, seed: int = 42) -> GradientTransformation:
    r"""PSGD-Kron's direction: bias-corrected momentum, preconditioned by :math:`Q^\top Q`.

    .. math::

        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad \hat m_t = m_t / (1-\beta_1^t) \\
        \text{on an update step:}&\quad \hat m_t \leftarrow \hat m_t + \sqrt{\epsilon_{32}}\,
            \overline{|\hat m_t|}\, V, \quad Q \leftarrow \mathrm{fit}(Q; V, \hat m_t),
            \quad V \sim \mathcal N(0, I) \\
        u_t &= c \cdot P \hat m_t, \quad P \hat m = \hat m \times_1 Q_1^\top Q_1 \cdots
            \times_k Q_k^\top Q_k, \quad c = \min\!\big(1, 1.1 / (\mathrm{rms}(P\hat m)
            + 10^{-12})\big)

    ``fit`` is one step of PSGD's preconditioner fit per factor (:math:`A = \hat m \times_i
    Q_i`, :math:`B = V \times_i Q_i^{-\top}`, each factor moved by ``precond_lr`` times
    :math:`\mathrm{triu}(A_{(i)}A_{(i)}^\top - B_{(i)}B_{(i)}^\top) Q_i` over a bound of the
    norm of the sum). With ``momentum_into_precond_update=False`` the perturbed gradient is
    fitted instead, and :math:`\hat m_t` is preconditioned unperturbed.

    When to fit: a counter advances every step and the factors are fitted when it reaches
    :math:`1/p` (then it restarts), as kron-torch does, so ``p = 0.25`` fits every fourth
    step; :math:`p` is ``preconditioner_update_probability`` (a number or a schedule of the
    step; ``None``: :func:`precond_update_prob_schedule`). On a fit step, with probability
    0.01 the factors of params with two or more axes are first rescaled to equal largest
    entries (their product unchanged). The probe :math:`V` and that draw come from
    ``jax.random`` keyed by ``seed``, the step counter and the param's key path: a run is
    reproducible, and resumes bit-identically from a saved state.

    Args:
      b1: :math:`\beta_1 \in [0, 1)`, the momentum.
      preconditioner_update_probability: :math:`p`, a number :math:`\ge 0` (0: never fit,
        :math:`P = ` ``precond_init_scale`` :math:`^2 I`) or a schedule; ``None``: the
        default anneal.
      max_size_triangular: axes longer than this get a diagonal factor.
      min_ndim_triangular: params with fewer axes get diagonal factors only.
      memory_save_mode: ``None`` (every axis triangular, within the limits above),
        ``"smart_one_diag"`` (the largest axis diagonal when it is strictly the largest),
        ``"one_diag"`` (the largest axis diagonal) or ``"all_diag"``.
      momentum_into_precond_update: fit on the momentum (else on the gradient).
      precond_lr: :math:`\eta \ge 0`, the fit's step size.
      precond_init_scale: :math:`Q_0 = s^{1/k} I` per axis of a :math:`k`-axis param.
      merge_dims: precondition a param of three or more axes as a matrix (its leading or
        trailing axes merged, as kron-torch chooses).
      mu_dtype: the momentum's storage dtype; ``None``: the param's.
      precond_dtype: the factors' dtype and that of the preconditioner's math; ``None``:
        float32 (as kron-torch, whatever the param dtype).
      seed: the seed of the probe vectors and balancing draws.

    Returns:
      A ``GradientTransformation`` whose state is a :class:`ScaleByKronState`. A scalar
      param is preconditioned by one diagonal entry. A complex param is preconditioned as
      its real view (a trailing axis of 2). Under sharding the momentum is sharded like its
      param and the factors are replicated; the preconditioner multiplies whole matrices,
      so a param sharded over explicit mesh axes has its momentum gathered for it, and its
      update is resharded like the param. A fit that is not finite keeps the old factors.

    Equivalents: the direction of ``kron_torch.Kron`` (before its weight decay and learning
    rate); no optax equivalent (``psgd-jax``'s ``scale_by_kron`` is the JAX original).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.scale_by_kron(preconditioner_update_probability=1.0)
        >>> g = {"w": jnp.ones((3, 2))}
        >>> u, state = tx.update(g, tx.init(g))
        >>> [f.shape for f in state.q["w"]], u["w"].shape
        ([(3, 3), (2, 2)], (3, 2))
    """
    check_integer("max_size_triangular", max_size_triangular, minimum=0)
    check_integer("min_ndim_triangular", min_ndim_triangular, minimum=0)
    check_one_of("memory_save_mode", memory_save_mode,
                 (None, "smart_one_diag", "one_diag", "all_diag"))
    check_flag("momentum_into_precond_update", momentum_into_precond_update)
    check_flag("merge_dims", merge_dims)
    check_positive("precond_init_scale", precond_init_scale)
    check_integer("seed", seed)
    check_dtype("precond_dtype", precond_dtype)
    if precond_dtype is None:
        precond_dtype = jnp.float32
    if not jnp.issubdtype(jnp.dtype(precond_dtype), jnp.floating):
        raise ValueError(f"Invalid precond_dtype: {precond_dtype!r} (a floating dtype)")
    if preconditioner_update_probability is None:
        preconditioner_update_probability = precond_update_prob_schedule()
    return lift(KRON, b1=b1, precond_lr=precond_lr,
                preconditioner_update_probability=preconditioner_update_probability,
                max_size_triangular=max_size_triangular,
                min_ndim_triangular=min_ndim_triangular, memory_save_mode=memory_save_mode,
                momentum_into_precond_update=momentum_into_precond_update,
                precond_init_scale=float(precond_init_scale), merge_dims=merge_dims,
                seed=seed, mu_dtype=mu_dtype, precond_dtype=jnp.dtype(precond_dtype))

