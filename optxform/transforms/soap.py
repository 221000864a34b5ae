r"""SOAP: Adam run in the eigenbasis of Shampoo's preconditioner (Vyas et al. 2024).

One declared "matrix" rule (see :mod:`optxform.rules`), :func:`scale_by_soap`, following
``pytorch_optimizer.SOAP`` (4.1.0, a port of the authors' code) operation by operation.
Each param keeps Adam's two moments (shaped like the param) and, packed per param (see
:mod:`optxform.transforms.kronecker`), one EMA statistic :math:`L_k` and one orthogonal
basis :math:`Q_k` per preconditioned axis.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from optxform.core import GradientTransformation
from optxform.core.validation import check_flag, check_integer, check_one_of
from optxform.rules import Buffer, Leaf, Rule, Step, beta, lift, non_negative
from optxform.transforms.kronecker import (axis_gram, identity_like, keep_if_not_finite,
                                           pack, packed_size, unpack)
from optxform.tree.numerics import (bias_correction, lerp, one_matrix_per_call, one_minus,
                                     step_dtype)
from optxform.tree.sharding import gathered, resharded

__all__ = ["SoapState", "scale_by_soap"]


class SoapState(NamedTuple):
    """State of :func:`scale_by_soap`.

    Attributes:
      count: int32, the updates made.
      exp_avg: the first moment of the gradient (not rotated), shaped like each param.
      exp_avg_sq: the second moment of the rotated gradient, shaped like each param
        (float32 or wider), its entries permuted with the basis at each refresh.
      gg: per param, the EMA statistics :math:`L_k` of its preconditioned axes, packed into
        one flat vector (float32 or wider; empty for a param with none).
      q: per param, the bases :math:`Q_k` (eigenvectors of :math:`L_k`, largest first),
        packed like ``gg``.
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count
    exp_avg: Any
    exp_avg_sq: Any
    gg: Any
    q: Any


# --- the shape a param is preconditioned in ------------------------------------------------


def merge_small_dims(shape: tuple[int, ...], max_dim: int) -> tuple[int, ...]:
    """Adjacent axes merged while their product stays ``<= max_dim`` (the reference's
    ``merge_small_dims``, including its ``(1,)`` when everything merges into one axis)."""
    merged, product = [], 1
    for d in shape:
        product *= d
        if product > max_dim:
            merged.append(product // d)
            product = d
    merged.append(product)
    return tuple(merged) if len(merged) > 1 else (1,)


class _Layout(NamedTuple):
    permute: bool                 # channels_last 4-D: (n, h, w, c) -> (n, c, h, w) first
    view: tuple[int, ...]         # the shape the factors act on
    dims: tuple[int | None, ...]  # one per axis of ``view``: the factor's size or None


def _layout(shape: tuple[int, ...], opt: dict) -> _Layout:
    max_dim = opt["max_precondition_dim"]
    if len(shape) <= 1:  # vectors: one factor with precondition_1d; scalars: none
        use = len(shape) == 1 and opt["precondition_1d"] and shape[0] <= max_dim
        return _Layout(False, shape, tuple(shape[0] if use else None for _ in shape))
    view = shape
    permute = opt["merge_dims"] and opt["data_format"] == "channels_last" and len(shape) == 4
    if permute:
        view = (shape[0], shape[3], shape[1], shape[2])
    if opt["merge_dims"]:
        view = merge_small_dims(view, max_dim)
    return _Layout(permute, view, tuple(d if d <= max_dim else None for d in view))


def _to_view(x: jax.Array, layout: _Layout) -> jax.Array:
    if layout.permute:
        x = jnp.transpose(x, (0, 3, 1, 2))
    return x.reshape(layout.view)


def _from_view(x: jax.Array, layout: _Layout, shape: tuple[int, ...]) -> jax.Array:
    if layout.permute:
        return x.reshape(shape[0], shape[3], shape[1], shape[2]).transpose(0, 2, 3, 1)
    return x.reshape(shape)


def _check_shape(shape: tuple[int, ...], opt: dict) -> str | None:
    if not (opt["merge_dims"] and shape):
        return None
    merged = merge_small_dims(shape, opt["max_precondition_dim"])
    if math.prod(merged) != math.prod(shape):  # all of it fits in one axis: the reference
        return (f"merges into the single axis {merged} with merge_dims=True and "
                f"max_precondition_dim={opt['max_precondition_dim']}, which "
                f"pytorch_optimizer.SOAP cannot reshape to: use merge_dims=False for it")
    return None


def _factor_shape(opt: dict):
    return lambda shape: packed_size(_layout(tuple(shape), opt).dims)


# --- the per-leaf math ---------------------------------------------------------------------


def _rotate(x: jax.Array, bases: list, back: bool = False) -> jax.Array:
    r""":math:`x \times_k Q_k^\top` over every axis (``back``: :math:`x \times_k Q_k`).

    Axis 0 is contracted each time and the result's new axis goes last, so after every
    axis the original order is back (an unpreconditioned axis is just moved).
    """
    for q in bases:
        x = (jnp.moveaxis(x, 0, -1) if q is None
             else jnp.tensordot(x, q, axes=([0], [1 if back else 0])))
    return x


_eigh = one_matrix_per_call(lambda a: jnp.linalg.eigh(a, UPLO="L", symmetrize_input=False))
_orthonormal_factor = one_matrix_per_call(lambda a: jnp.linalg.qr(a)[0])


def _eigenbasis(factor: jax.Array, old: jax.Array) -> jax.Array:
    """Eigenvectors of ``factor``, largest eigenvalue first (the reference's ``eigh`` of
    ``factor + 1e-30 I``, lower triangle); ``old`` if they are not finite."""
    tiny = jnp.asarray(1e-30, factor.dtype) * identity_like(factor)
    _, q = _eigh(factor + tiny)
    return keep_if_not_finite(jnp.flip(q, axis=1), old)


def _power_iteration(factor: jax.Array, q: jax.Array, v: jax.Array, k: int):
    """One power iteration from the basis ``q``, re-sorted by its Rayleigh quotients, then
    orthonormalised by QR in float32 (as the reference does for every dtype); ``v``'s axis
    ``k`` follows the new order. ``q`` and ``v`` unchanged if the QR is not finite."""
    product = factor @ q
    order = jnp.argsort(jnp.sum(q * product, axis=0), descending=True, stable=True)
    new = _orthonormal_factor(jnp.take(product, order, axis=1).astype(jnp.float32))
    new = new.astype(q.dtype)
    ok = jnp.all(jnp.isfinite(new))
    order = jnp.where(ok, order, jnp.arange(order.shape[0]))
    return jnp.where(ok, new, q), jnp.take(v, order, axis=k)


def _soap_step(st: Step) -> tuple[dict, dict]:
    h = st.h
    b1, b2 = h["b1"], h["b2"]
    shampoo_beta = b2 if h["shampoo_beta"] is None else h["shampoo_beta"]
    step = jnp.maximum(st.t - 1, 1)  # the reference's step (it skips the first update)
    scale = (jnp.sqrt(bias_correction(b2, step)) / bias_correction(b1, step)
             if st.opt["correct_bias"] else jnp.ones((), step_dtype()))
    frequency = st.opt["precondition_frequency"]
    return {"first": st.t == 1,
            "refresh": (st.t > 1) & ((st.t - 1) % frequency == 0),
            "w1": one_minus(b1), "w2": one_minus(b2), "ws": one_minus(shampoo_beta),
            "eps": h["eps"], "scale": scale}, {}


def _soap_leaf(x: Leaf) -> tuple[jax.Array, dict]:
    s, opt = x.s, x.opt
    g, sharding = gathered(x.g)
    m, _ = gathered(x.buffers["exp_avg"])
    v, _ = gathered(x.buffers["exp_avg_sq"])
    shape = g.shape
    layout = _layout(shape, opt)
    gv = _to_view(g, layout)
    gg = unpack(x.buffers["gg"], layout.dims)
    gg = [None if f is None else lerp(f, axis_gram(gv, k).astype(f.dtype), s["ws"])
          for k, f in enumerate(gg)]
    q = unpack(x.buffers["q"], layout.dims)

    def first(_):  # the reference's first step: statistics and bases, no update
        bases = [None if f is None else _eigenbasis(f, identity_like(f)) for f in gg]
        return jnp.zeros_like(g), m, v, bases

    def later(_):
        v_new = lerp(v, _from_view(_rotate(gv, q), layout, shape) ** 2, s["w2"])
        m_new = lerp(m, g, s["w1"])
        rotated = _from_view(_rotate(_to_view(m_new, layout), q), layout, shape)
        d = rotated / (jnp.sqrt(v_new) + s["eps"])
        d = _from_view(_rotate(_to_view(d, layout), q, back=True), layout, shape)
        if opt["normalize_gradient"]:
            d = d / (jnp.sqrt(jnp.mean(d ** 2)) + s["eps"])

        def refresh(_):
            bases, vv = [], _to_view(v_new, layout)
            for k, (f, b) in enumerate(zip(gg, q)):
                if f is not None:
                    b, vv = _power_iteration(f, b, vv, k)
                bases.append(b)
            return bases, _from_view(vv, layout, shape)

        bases, v_new = jax.lax.cond(s["refresh"].astype(bool), refresh, lambda _: (q, v_new), None)
        return d * s["scale"], m_new, v_new, bases

    u, m, v, q = jax.lax.cond(s["first"].astype(bool), first, later, None)
    u, m, v = (resharded(a, sharding) for a in (u, m, v))
    return u, {"exp_avg": m, "exp_avg_sq": v, "gg": pack(gg, x.buffers["gg"]),
               "q": pack(q, x.buffers["q"])}


SOAP = Rule(
    name="scale_by_soap", kind="matrix", state=SoapState,
    hyperparameters=(beta("b1"), beta("b2"),
                     dataclasses.replace(beta("shampoo_beta"), optional=True),
                     non_negative("eps")),
    buffers=(Buffer("exp_avg"), Buffer("exp_avg_sq", "accumulator")),
    options=("precondition_frequency", "max_precondition_dim", "merge_dims",
             "precondition_1d", "correct_bias", "normalize_gradient", "data_format"),
    per_step=_soap_step, leaf=_soap_leaf, complex_params="reject",
    check_shape=_check_shape, batch_same_shapes=True)


def scale_by_soap(b1: ArrayLike = 0.95, b2: ArrayLike = 0.95,
                  shampoo_beta: ArrayLike | None = None, eps: ArrayLike = 1e-8,
                  precondition_frequency: int = 10, max_precondition_dim: int = 10000,
                  merge_dims: bool = False, precondition_1d: bool = False,
                  correct_bias: bool = True, normalize_gradient: bool = False,
                  data_format: Literal["channels_first", "channels_last"] = "channels_first"
                  ) -> GradientTransformation:
    r"""SOAP's direction: Adam in the eigenbasis of Shampoo's Kronecker factors.

    For each preconditioned axis :math:`k` of a param (its gradient :math:`G` unfolded
    along :math:`k` is :math:`G_{(k)}`), with :math:`\beta_s` = ``shampoo_beta``:

    .. math::

        L_k &\leftarrow \beta_s L_k + (1-\beta_s)\, G_{(k)} G_{(k)}^\top, \qquad
        \hat G = G \times_0 Q_0^\top \cdots \times_{n-1} Q_{n-1}^\top \\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1) G, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2)\, \hat G^{2} \\
        u_t &= c_t \cdot \Big(\frac{\hat m_t}{\sqrt{v_t} + \varepsilon}\Big)
               \times_0 Q_0 \cdots \times_{n-1} Q_{n-1}, \qquad
        c_t = \frac{\sqrt{1-\beta_2^{t-1}}}{1-\beta_1^{t-1}}

    where :math:`\hat m_t` is :math:`m_t` rotated like :math:`\hat G` (the first moment is
    kept unrotated, the second rotated). The first update only accumulates :math:`L_k` and
    sets :math:`Q_k` to its eigenvectors (largest eigenvalue first); it returns zeros,
    hence the bias corrections at :math:`t-1`. After each later update :math:`L_k` is
    updated, and every ``precondition_frequency`` updates :math:`Q_k` is refreshed by one
    power iteration :math:`\mathrm{QR}(L_k Q_k)`, its columns (and :math:`v`'s entries
    along axis :math:`k`) first sorted by the estimates :math:`\mathrm{diag}(Q_k^\top L_k
    Q_k)`, largest first. The QR runs in float32 whatever the dtype, as in the reference.
    With ``normalize_gradient``, :math:`u` is divided by :math:`\mathrm{rms}(u) +
    \varepsilon` before :math:`c_t`.

    Which axes: a vector only with ``precondition_1d``; every axis of size at most
    ``max_precondition_dim`` otherwise (larger ones and scalars: identity). With
    ``merge_dims`` adjacent axes are first merged while their product stays within
    ``max_precondition_dim`` (4-D ``channels_last`` params are first permuted to
    ``(n, c, h, w)``).

    Args:
      b1, b2: Adam's :math:`\beta_1, \beta_2` in ``[0, 1)``.
      shampoo_beta: :math:`\beta_s` for the statistics; ``None``: ``b2``.
      eps: :math:`\varepsilon \ge 0`.
      precondition_frequency: updates between refreshes of the bases (``>= 1``).
      max_precondition_dim: the largest axis given a factor.
      merge_dims: merge small adjacent axes first.
      precondition_1d: give vectors a factor too.
      correct_bias: multiply by :math:`c_t` (else :math:`c_t = 1`).
      normalize_gradient: divide the direction by its RMS.
      data_format: ``"channels_first"`` or ``"channels_last"`` (4-D params, ``merge_dims``).

    Returns:
      A ``GradientTransformation`` whose state is a :class:`SoapState`. A param that
      ``merge_dims`` would merge into one axis raises ``ValueError`` naming its path (the
      reference cannot reshape it); complex params are refused. A failed decomposition
      (NaN or infinite entries, from a non-finite gradient or an overflow) keeps the
      previous basis (the identity at the first update), so finite gradients never give
      NaN params. Under sharding, ``exp_avg`` and ``exp_avg_sq`` are sharded like their
      param; the factors multiply whole axes, so a param sharded over an explicit mesh axis
      is gathered for the step (the factors themselves are small and replicated).

    Equivalents: the direction of ``pytorch_optimizer.SOAP`` (before its learning rate and
    weight decay); no optax or torch.optim counterpart.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.scale_by_soap()
        >>> g = {"w": jnp.array([[1.0, 2.0], [3.0, 4.0]])}
        >>> state = tx.init(g)
        >>> u, state = tx.update(g, state)  # the first update only builds the bases
        >>> u["w"]
        Array([[0., 0.],
               [0., 0.]], dtype=float32)
        >>> state.gg["w"].shape  # two 2 x 2 factors, packed
        (8,)
    """
    check_integer("precondition_frequency", precondition_frequency, minimum=1)
    check_integer("max_precondition_dim", max_precondition_dim, minimum=1)
    for name, flag in (("merge_dims", merge_dims), ("precondition_1d", precondition_1d),
                       ("correct_bias", correct_bias),
                       ("normalize_gradient", normalize_gradient)):
        check_flag(name, flag)
    check_one_of("data_format", data_format, ("channels_first", "channels_last"))
    options = dict(precondition_frequency=precondition_frequency,
                   max_precondition_dim=max_precondition_dim, merge_dims=merge_dims,
                   precondition_1d=precondition_1d, correct_bias=correct_bias,
                   normalize_gradient=normalize_gradient, data_format=data_format)
    factors = _factor_shape(options)
    rule = dataclasses.replace(SOAP, buffers=SOAP.buffers + (
        Buffer("gg", "accumulator", shape=factors), Buffer("q", "accumulator", shape=factors)))
    return lift(rule, b1=b1, b2=b2, shampoo_beta=shampoo_beta, eps=eps, **options)
