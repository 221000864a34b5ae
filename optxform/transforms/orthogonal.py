r"""Orthogonalised updates (Muon): an EMA momentum, then Newton-Schulz per matrix.

Two declared rules (see :mod:`optxform.rules`): :func:`scale_by_ema_momentum`
(elementwise, torch's ``buf.lerp_(g, 1 - momentum)``) and
:func:`orthogonalize_by_newton_schulz` (a "matrix" rule: each param's matrix replaced by an
approximation of its polar factor :math:`UV^\top`, leaves of one shape batched into one
call). :func:`scale_by_muon` chains them.
"""

from __future__ import annotations

import math
from typing import Any, Literal, NamedTuple, Sequence, cast

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from optxform.core import GradientTransformation, chain
from optxform.core.validation import (check_dtype, check_flag, check_integer,
                                      check_non_negative, check_one_of)
from optxform.rules import Buffer, Hyperparameter, Leaf, Rule, Step, lift
from optxform.tree.numerics import lerp, one_minus
from optxform.tree.sharding import gathered, resharded

__all__ = ["EmaMomentumState", "POLAR_EXPRESS_COEFFICIENTS", "QUINTIC_COEFFICIENTS",
           "orthogonalize_by_newton_schulz", "scale_by_ema_momentum", "scale_by_muon"]

Coefficients = tuple[float, float, float]

#: Keller Jordan's quintic :math:`(a, b, c)`, used at every step (``torch.optim.Muon``).
QUINTIC_COEFFICIENTS: Coefficients = (3.4445, -4.7750, 2.0315)

# Polar Express (Amsel, Persson, Musco & Gower 2025, Algorithm 1): the degree-5 minimax
# polynomials for steps 1..8 (later steps repeat the last); all but the last are divided by
# the safety factor 1.01 as (a / 1.01, b / 1.01**3, c / 1.01**5).
_POLAR_EXPRESS_RAW: tuple[Coefficients, ...] = (
    (8.28721201814563, -23.595886519098837, 17.300387312530933),
    (4.107059111542203, -2.9478499167379106, 0.5448431082926601),
    (3.9486908534822946, -2.908902115962949, 0.5518191394370137),
    (3.3184196573706015, -2.488488024314874, 0.51004894012372),
    (2.300652019954817, -1.6689039845747493, 0.4188073119525673),
    (1.891301407787398, -1.2679958271945868, 0.37680408948524835),
    (1.8750014808534479, -1.2500016453999487, 0.3750001645474248),
    (1.875, -1.25, 0.375),
)
_SAFETY = 1.01
#: Polar Express's per-step :math:`(a, b, c)`, with its safety factor applied.
POLAR_EXPRESS_COEFFICIENTS: tuple[Coefficients, ...] = tuple(
    (a / _SAFETY, b / _SAFETY**3, c / _SAFETY**5) for a, b, c in _POLAR_EXPRESS_RAW[:-1]
) + (_POLAR_EXPRESS_RAW[-1],)


# --- EMA momentum --------------------------------------------------------------------------


class EmaMomentumState(NamedTuple):
    """State of :func:`scale_by_ema_momentum`.

    Attributes:
      mu: the momentum buffer (torch's ``momentum_buffer``), one leaf per param, in the
        param's dtype (or ``mu_dtype``).
    """

    mu: Any


def _ema_momentum_step(st: Step) -> tuple[dict, dict]:
    m = st.h["momentum"]
    return {"momentum": m, "w": one_minus(m)}, {}


def _ema_momentum_leaf(x: Leaf) -> tuple[jax.Array, dict]:
    s, g = x.s, x.g
    mu = lerp(x.buffers["mu"], g, s["w"])                       # buf.lerp_(g, 1 - m)
    return (lerp(g, mu, s["momentum"]) if x.opt["nesterov"] else mu), {"mu": mu}


EMA_MOMENTUM = Rule(
    name="scale_by_ema_momentum", kind="elementwise", state=EmaMomentumState,
    counts_steps=False, hyperparameters=(Hyperparameter("momentum", check_non_negative),),
    buffers=(Buffer("mu", dtype_option="mu_dtype"),), options=("nesterov",),
    per_step=_ema_momentum_step, leaf=_ema_momentum_leaf)


def scale_by_ema_momentum(momentum: ArrayLike = 0.95, nesterov: bool = True, *,
                          mu_dtype: DTypeLike | None = None) -> GradientTransformation:
    r"""Momentum as an exponential moving average, with optional Nesterov look-ahead.

    .. math::

        m_t = \mu\, m_{t-1} + (1 - \mu)\, g_t, \quad m_0 = 0, \qquad
        u_t = \begin{cases} (1 - \mu)\, g_t + \mu\, m_t & \text{nesterov} \\
                            m_t & \text{otherwise} \end{cases}

    computed as torch's ``buf.lerp_(g, 1 - momentum)`` and ``g.lerp(buf, momentum)``.
    Unlike :func:`trace` (torch SGD's ``m = mu m + g``) the buffer is an average, so its
    scale does not grow with :math:`1/(1-\mu)`.

    Args:
      momentum: :math:`\mu \ge 0`.
      nesterov: use the look-ahead :math:`(1-\mu) g_t + \mu m_t`.
      mu_dtype: storage dtype of the buffer; ``None``: the param dtype.

    Returns:
      A ``GradientTransformation`` whose state is an :class:`EmaMomentumState`.

    Equivalents: the momentum of ``torch.optim.Muon``; ``optax.contrib.scale_by_muon``'s
    (optax's Nesterov form differs).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.scale_by_ema_momentum(0.5, nesterov=False)
        >>> g = {"w": jnp.array([2.0])}
        >>> u, state = tx.update(g, tx.init(g))
        >>> u["w"]
        Array([1.], dtype=float32)
    """
    check_flag("nesterov", nesterov)
    return lift(EMA_MOMENTUM, momentum=momentum, nesterov=nesterov, mu_dtype=mu_dtype)


# --- Newton-Schulz orthogonalisation --------------------------------------------------------


def _steps_coefficients(coefficients: Any, steps: int) -> tuple[Coefficients, ...]:
    """One :math:`(a, b, c)` per step: a triple repeated, or a per-step sequence."""
    if isinstance(coefficients, str):
        if coefficients == "polar_express":
            table = POLAR_EXPRESS_COEFFICIENTS
            return table[:steps] + (table[-1],) * max(0, steps - len(table))
        coefficients = QUINTIC_COEFFICIENTS
    coefficients = tuple(coefficients)
    if len(coefficients) == 3 and all(isinstance(c, (int, float)) for c in coefficients):
        return (tuple(float(c) for c in coefficients),) * steps  # type: ignore[return-value]
    rows = tuple(tuple(float(c) for c in abc) for abc in coefficients)
    if len(rows) < steps or any(len(abc) != 3 for abc in rows):
        raise ValueError(f"Invalid ns_coefficients: {coefficients!r} (a triple (a, b, c), "
                         f"'quintic', 'polar_express', or one triple per step, ns_steps={steps})")
    return cast(tuple[Coefficients, ...], rows[:steps])


def _matrix_view(shape: tuple[int, ...], batch_dims: int, flatten: str) -> tuple[int, ...]:
    """The ``(..., rows, cols)`` shape a param is orthogonalised in."""
    batch, rest = shape[:batch_dims], shape[batch_dims:]
    if len(rest) == 2:
        return shape
    if flatten == "first":  # torch's conv layout (out, in, kh, kw) -> (out, in*kh*kw)
        return batch + (rest[0], math.prod(rest[1:]))
    return batch + (math.prod(rest[:-1]), rest[-1])  # flax's (kh, kw, in, out)


def _check_matrix(shape: tuple[int, ...], opt: dict) -> str | None:
    if len(shape) - opt["batch_dims"] < 2:
        return (f"is not a matrix (with batch_dims={opt['batch_dims']}): route it to another "
                f"optimizer (optxform.muon_with_adamw, or optxform.route), as torch.optim.Muon "
                f"requires")
    return None


def _shape_ratio(rows: int, cols: int, adjust_lr_fn: str | None) -> float:
    """torch.optim.Muon's learning-rate factor for a ``rows x cols`` matrix."""
    if adjust_lr_fn == "match_rms_adamw":
        return 0.2 * math.sqrt(max(rows, cols))
    return math.sqrt(max(1.0, rows / cols))


def _newton_schulz(x: jax.Array, coefficients: tuple[Coefficients, ...], eps: Any,
                   polar_express: bool) -> jax.Array:
    """The iteration on one matrix ``x`` (``rows <= cols``), in ``x``'s dtype.

    Each step's two products are accumulated in float32 at least and combined there,
    then rounded once to ``x``'s dtype, as a bfloat16 ``addmm`` does (torch on the CPU,
    cuBLAS with its float32 epilogue).
    """
    dtype = x.dtype
    wide = jnp.dtype(jnp.float32) if jnp.finfo(dtype).bits < 32 else dtype
    precision = None if wide != dtype else jax.lax.Precision.HIGHEST

    def matmul(a, b):
        return jnp.matmul(a, b, precision=precision, preferred_element_type=wide)

    norm = jnp.linalg.norm(x.astype(wide)).astype(dtype)  # accumulated in float32, as torch
    eps = jnp.asarray(eps, dtype)
    x = x / (norm * _SAFETY + eps if polar_express else jnp.maximum(norm, eps))
    for a, b, c in coefficients:
        gram = matmul(x, x.T).astype(dtype)
        poly = (b * gram.astype(wide) + c * matmul(gram, gram)).astype(dtype)
        x = (a * x.astype(wide) + matmul(poly, x)).astype(dtype)
    return x


def _orthogonalize_leaf(x: Leaf) -> tuple[jax.Array, dict]:
    opt = x.opt
    g, sharding = gathered(x.g)
    shape = g.shape
    view = _matrix_view(shape, opt["batch_dims"], opt["flatten"])
    rows, cols = view[-2:]
    m = g.reshape((-1, rows, cols)).astype(opt["ns_dtype"])
    tall = rows > cols
    if tall:
        m = jnp.swapaxes(m, -1, -2)
    run = lambda one: _newton_schulz(one, opt["coefficients"], x.s["eps"],  # noqa: E731
                                     opt["ns_coefficients"] == "polar_express")
    o = jax.vmap(run)(m)
    if tall:
        o = jnp.swapaxes(o, -1, -2)
    o = o.astype(g.dtype) * _shape_ratio(rows, cols, opt["adjust_lr_fn"])
    # A non-finite iterate (inf or NaN in the gradient, or an overflow in a low precision):
    # that matrix's update is zero rather than a NaN that would reach the params.
    finite = jnp.all(jnp.isfinite(o), axis=(-2, -1), keepdims=True)
    u = jnp.where(finite, o, 0.0).reshape(shape)
    return resharded(u, sharding), {}


class OrthogonalizeState(NamedTuple):
    """``orthogonalize_by_newton_schulz`` keeps no state (an empty tuple)."""


ORTHOGONALIZE = Rule(
    name="orthogonalize_by_newton_schulz", kind="matrix", state=OrthogonalizeState,
    counts_steps=False, hyperparameters=(Hyperparameter("eps", check_non_negative),),
    options=("ns_coefficients", "coefficients", "ns_dtype", "adjust_lr_fn", "batch_dims",
             "flatten"),
    leaf=_orthogonalize_leaf, complex_params="reject", check_shape=_check_matrix,
    batch_same_shapes=True)


def orthogonalize_by_newton_schulz(
        ns_coefficients: Literal["quintic", "polar_express"] | Coefficients
        | Sequence[Coefficients] = QUINTIC_COEFFICIENTS,
        eps: ArrayLike = 1e-7, ns_steps: int = 5, ns_dtype: DTypeLike = jnp.bfloat16,
        adjust_lr_fn: Literal["original", "match_rms_adamw"] | None = None, *,
        batch_dims: int = 0,
        flatten: Literal["last", "first"] = "last") -> GradientTransformation:
    r"""Replace each param's matrix by Newton-Schulz's approximation of its polar factor.

    For a matrix :math:`G` (transposed first if it has more rows than columns), with
    :math:`X_0 = G / \max(\lVert G\rVert_F, \varepsilon)` and one :math:`(a, b, c)` per step:

    .. math::

        A_k = X_k X_k^\top, \qquad X_{k+1} = a X_k + (b A_k + c A_k^2) X_k

    then :math:`u = r \cdot X_K`, where :math:`r = \sqrt{\max(1, \text{rows}/\text{cols})}`
    (``adjust_lr_fn`` ``None`` or ``"original"``) or :math:`0.2\sqrt{\max(\text{rows},
    \text{cols})}` (``"match_rms_adamw"``). Each step maps every singular value
    :math:`\sigma \mapsto a\sigma + b\sigma^3 + c\sigma^5`, pushing them towards 1.

    Args:
      ns_coefficients: ``(a, b, c)`` for every step (default: Keller Jordan's quintic, as
        ``torch.optim.Muon``), a sequence of one triple per step, ``"quintic"``, or
        ``"polar_express"``: the per-step minimax polynomials of Polar Express (Amsel et al.
        2025, Algorithm 1, with its safety factor 1.01 and its normalisation
        :math:`X_0 = G / (1.01\lVert G\rVert_F + \varepsilon)`).
      eps: :math:`\varepsilon \ge 0` in the normalisation.
      ns_steps: the number of steps :math:`K \ge 1`.
      ns_dtype: the dtype the iteration runs in. torch runs it in bfloat16 (the default);
        float32 (float64 under x64) reproduces torch's algorithm to rounding.
      adjust_lr_fn: the shape factor :math:`r`, as ``torch.optim.Muon``'s argument.
      batch_dims: leading axes that index separate matrices (stacked or scanned layers:
        a ``(layers, rows, cols)`` param with ``batch_dims=1``).
      flatten: how a param with more than two (non-batch) axes becomes a matrix: ``"last"``
        keeps its last axis as the columns (flax's conv kernels ``(kh, kw, in, out)`` ->
        ``(kh*kw*in, out)``); ``"first"`` keeps its first axis as the rows (torch's
        ``(out, in, kh, kw)`` -> ``(out, in*kh*kw)``, as Keller Jordan's Muon does).

    Returns:
      A stateless ``GradientTransformation``. Params of one shape and dtype are
      orthogonalised in one batched call. A param that is not a matrix (fewer than two axes
      after ``batch_dims``) raises ``ValueError`` naming its path at ``init``; complex params
      are refused as in torch. A matrix whose iterate is not finite gets a zero update.
      Under sharding, the state is sharded like its param; the iteration needs each whole
      matrix, so a matrix sharded over an explicit mesh axis is gathered for it and its
      update resharded like the param (under automatic sharding XLA inserts the
      all-gathers or all-reduces itself).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.orthogonalize_by_newton_schulz("polar_express", ns_steps=8,
        ...                                               ns_dtype=jnp.float32)
        >>> g = {"w": jnp.array([[3.0, 0.0], [0.0, 0.5]])}
        >>> u, _ = tx.update(g, tx.init(g))
        >>> jnp.round(u["w"], 2)
        Array([[1., 0.],
               [0., 1.]], dtype=float32)
    """
    check_integer("ns_steps", ns_steps, minimum=1)
    check_integer("batch_dims", batch_dims, minimum=0)
    check_one_of("adjust_lr_fn", adjust_lr_fn, (None, "original", "match_rms_adamw"))
    check_one_of("flatten", flatten, ("last", "first"))
    check_dtype("ns_dtype", ns_dtype)
    if ns_dtype is None or not jnp.issubdtype(jnp.dtype(ns_dtype), jnp.floating):
        raise ValueError(f"Invalid ns_dtype: {ns_dtype!r} (a floating dtype)")
    name = ns_coefficients if isinstance(ns_coefficients, str) else None
    if name is not None:
        check_one_of("ns_coefficients", name, ("quintic", "polar_express"))
    return lift(ORTHOGONALIZE, eps=eps, ns_coefficients=name,
                coefficients=_steps_coefficients(ns_coefficients, ns_steps),
                ns_dtype=jnp.dtype(ns_dtype), adjust_lr_fn=adjust_lr_fn,
                batch_dims=batch_dims, flatten=flatten)


def scale_by_muon(momentum: ArrayLike = 0.95, nesterov: bool = True,
                  ns_coefficients: Literal["quintic", "polar_express"] | Coefficients
                  | Sequence[Coefficients] = QUINTIC_COEFFICIENTS,
                  eps: ArrayLike = 1e-7, ns_steps: int = 5,
                  adjust_lr_fn: Literal["original", "match_rms_adamw"] | None = None,
                  ns_dtype: DTypeLike = jnp.bfloat16, *, batch_dims: int = 0,
                  flatten: Literal["last", "first"] = "last",
                  mu_dtype: DTypeLike | None = None) -> GradientTransformation:
    r"""Muon's direction: :func:`scale_by_ema_momentum`, then
    :func:`orthogonalize_by_newton_schulz`.

    .. math::

        m_t = \mu m_{t-1} + (1-\mu) g_t, \qquad
        u_t = r \cdot \mathrm{NS}_K\big((1-\mu) g_t + \mu m_t\big) \ \text{(nesterov)}

    Args:
      momentum, nesterov, mu_dtype: as :func:`scale_by_ema_momentum`.
      ns_coefficients, eps, ns_steps, adjust_lr_fn, ns_dtype, batch_dims, flatten: as
        :func:`orthogonalize_by_newton_schulz`.

    Returns:
      ``chain(scale_by_ema_momentum(...), orthogonalize_by_newton_schulz(...))``; its
      state is ``(EmaMomentumState, OrthogonalizeState)``.

    Equivalents: the direction of ``torch.optim.Muon`` (before its learning rate and weight
    decay); ``optax.contrib.scale_by_muon`` (2-D only, other defaults).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.scale_by_muon(ns_dtype=jnp.float32)
        >>> g = {"w": jnp.eye(3)}
        >>> u, _ = tx.update(g, tx.init(g))
        >>> u["w"].shape
        (3, 3)
    """
    return chain(scale_by_ema_momentum(momentum, nesterov, mu_dtype=mu_dtype),
                 orthogonalize_by_newton_schulz(ns_coefficients, eps, ns_steps, ns_dtype,
                                                adjust_lr_fn, batch_dims=batch_dims,
                                                flatten=flatten))
