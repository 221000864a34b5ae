r"""Shampoo: one inverse-root preconditioner per tensor axis (Gupta, Koren & Singer 2018).

One declared "matrix" rule (see :mod:`optxform.rules`), :func:`scale_by_shampoo`,
following ``pytorch_optimizer.Shampoo`` (4.1.0) operation by operation, plus optional
grafting as in Distributed Shampoo (Shi et al. 2023). Each param keeps its momentum buffer
(shaped like the param), its statistics :math:`L_k` and their inverse roots, packed per param
(see :mod:`optxform.transforms.kronecker`), and with grafting the grafted optimizer's
second moment.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from optxform.core import GradientTransformation
from optxform.core.validation import check_flag, check_integer, check_one_of
from optxform.rules import Buffer, Leaf, Rule, Step, beta, lift, non_negative
from optxform.transforms.kronecker import (axis_gram, identity_like, keep_if_not_finite,
                                           pack, packed_size, unpack)
from optxform.tree.numerics import (bias_correction, ema_of_square, lerp, one_matrix_per_call,
                                     one_minus)
from optxform.tree.sharding import gathered, resharded

__all__ = ["ShampooState", "scale_by_shampoo"]

#: Distributed Shampoo's default second-moment decay for each grafting.
GRAFT_B2 = {"adam": 0.999, "rmsprop": 0.99}


class ShampooState(NamedTuple):
    """State of :func:`scale_by_shampoo`.

    Attributes:
      count: int32, the updates made.
      momentum_buffer: the last update (the reference's ``momentum_buffer``), shaped like
        each param; mixed into the next gradient when ``momentum > 0``.
      graft_nu: the grafted optimizer's second moment, shaped like each param (float32 or
        wider); ``None`` without grafting.
      preconditioners: per param, :math:`L_k` for each axis, packed into one flat vector
        (float32 or wider).
      inverse_roots: per param, :math:`L_k^{-1/(2n)}` for each axis, packed likewise (zeros
        until first computed).
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count
    momentum_buffer: Any
    graft_nu: Any
    preconditioners: Any
    inverse_roots: Any


def _factor_shape(shape: tuple[int, ...]) -> tuple[int]:
    return packed_size(shape)


_svd = one_matrix_per_call(lambda a: jnp.linalg.svd(a, full_matrices=False))


def _inverse_root(factor: jax.Array, power: int) -> jax.Array:
    r""":math:`U \Sigma^{-1/p} V^\top` from the SVD, as the reference's ``compute_power_svd``;
    NaN for a non-finite ``factor`` (which never reaches the SVD: LAPACK may not return)."""
    finite = jnp.all(jnp.isfinite(factor))
    u, s, vh = _svd(jnp.where(finite, factor, identity_like(factor)))
    return jnp.where(finite, (u * s[None, :] ** (-1.0 / power)) @ vh, jnp.nan)


def _shampoo_step(st: Step) -> tuple[dict, dict]:
    h = st.h
    scalars = {"first": st.t == 1,
               "compute": st.t % st.opt["preconditioning_compute_steps"] == 0,
               "momentum": h["momentum"], "weight_decay": h["weight_decay"],
               "matrix_eps": h["matrix_eps"], "graft_eps": h["graft_eps"]}
    if st.opt["grafting"] is not None:
        b2 = h["graft_b2"]
        scalars.update(graft_b2=b2, graft_w=one_minus(b2),
                       graft_bc=bias_correction(b2, st.t))
    return scalars, {}


def _shampoo_leaf(x: Leaf) -> tuple[jax.Array, dict]:
    s, opt = x.s, x.opt
    g, sharding = gathered(x.g)
    buf, _ = gathered(x.buffers["momentum_buffer"])
    first = s["first"].astype(bool)
    if "momentum" not in x.zero:
        # The reference starts the buffer at the first gradient as given (before maximize).
        start = jnp.where(first, -g if opt["maximize"] else g, buf)
        g = lerp(g, start, s["momentum"])
    if "weight_decay" not in x.zero:
        assert x.p is not None  # the rule reads params
        p, _ = gathered(x.p)
        g = g + s["weight_decay"] * p
    order = g.ndim
    # every axis is preconditioned: no factor is None
    pre = [f for f in unpack(x.buffers["preconditioners"], g.shape) if f is not None]
    inv = [r for r in unpack(x.buffers["inverse_roots"], g.shape) if r is not None]
    pre = [jnp.where(first, s["matrix_eps"] * identity_like(f), f) + axis_gram(g, k)
           for k, f in enumerate(pre)]
    inv = [jax.lax.cond(s["compute"].astype(bool),
                        lambda f, r: keep_if_not_finite(_inverse_root(f, 2 * order), r),
                        lambda f, r: r, f, r)
           for f, r in zip(pre, inv)]
    u = g
    for k, r in enumerate(inv):
        u = (jnp.tensordot(u, r, axes=([k], [0])) if k == order - 1
             else jnp.moveaxis(jnp.tensordot(r, u, axes=([1], [k])), 0, k))
    new = {"preconditioners": pack(pre, x.buffers["preconditioners"]),
           "inverse_roots": pack(inv, x.buffers["inverse_roots"])}
    if opt["grafting"] is not None:
        nu, _ = gathered(x.buffers["graft_nu"])
        nu = ema_of_square(nu, g, s["graft_b2"], s["graft_w"])
        second = nu / s["graft_bc"] if opt["grafting"] == "adam" else nu
        graft = g / (jnp.sqrt(second) + s["graft_eps"])
        norm = jnp.linalg.norm(u)
        u = u * jnp.where(norm > 0, jnp.linalg.norm(graft) / jnp.where(norm > 0, norm, 1), 0)
        new["graft_nu"] = nu
    u = resharded(u, sharding)
    if "graft_nu" in new:
        new["graft_nu"] = resharded(new["graft_nu"], sharding)
    return u, {**new, "momentum_buffer": u}


SHAMPOO = Rule(
    name="scale_by_shampoo", kind="matrix", state=ShampooState,
    hyperparameters=(beta("momentum"),
                     non_negative("weight_decay"), non_negative("matrix_eps"),
                     dataclasses.replace(beta("graft_b2"), optional=True),
                     non_negative("graft_eps")),
    buffers=(Buffer("momentum_buffer"), Buffer("graft_nu", "accumulator", enabled_by="grafting"),
             Buffer("preconditioners", "accumulator", shape=_factor_shape),
             Buffer("inverse_roots", "accumulator", shape=_factor_shape)),
    options=("preconditioning_compute_steps", "grafting", "maximize"),
    reads_params=True, per_step=_shampoo_step, leaf=_shampoo_leaf,
    complex_params="reject", batch_same_shapes=True)


def scale_by_shampoo(momentum: ArrayLike = 0.0, weight_decay: ArrayLike = 0.0,
                     preconditioning_compute_steps: int = 1, matrix_eps: ArrayLike = 1e-6,
                     grafting: Literal["adam", "rmsprop"] | None = None,
                     graft_b2: ArrayLike | None = None, graft_eps: ArrayLike = 1e-8, *,
                     maximize: bool = False) -> GradientTransformation:
    r"""Shampoo's direction: each axis of the gradient multiplied by an inverse root of its
    statistics, optionally grafted to Adam's or RMSprop's per-param norm.

    For a param with :math:`n` axes and gradient :math:`g_t` (after ``maximize``):

    .. math::

        G &= (1-\mu)\, g_t + \mu\, b_{t-1} + \lambda\theta \qquad (b_0 = g_1) \\
        L_k &\leftarrow L_k + G_{(k)} G_{(k)}^\top \qquad (L_k = \epsilon I \text{ at first}) \\
        P &= G \times_0 L_0^{-1/(2n)} \cdots \times_{n-1} L_{n-1}^{-1/(2n)},
        \qquad u_t = b_t = P

    :math:`G_{(k)}` is :math:`G` unfolded along axis :math:`k` (for a matrix,
    :math:`P = L^{-1/4} G R^{-1/4}`). The buffer :math:`b` holds the last *update*, not a
    gradient average (the reference's quirk); with :math:`\mu = 0` it is unused. The
    inverse roots are recomputed (by SVD, :math:`U\Sigma^{-1/2n}V^\top`) at the updates
    :math:`t` divisible by ``preconditioning_compute_steps`` and reused in between; until
    the first such update they are zero, so the update is zero. With ``maximize`` and
    momentum, the reference's buffer starts at the un-negated first gradient; so does
    this one.

    Grafting (Distributed Shampoo's, per param; off by default as in the reference): the
    grafted optimizer keeps :math:`\nu_t = \beta\nu_{t-1} + (1-\beta) G^2` and its direction
    :math:`D = G / (\sqrt{\hat\nu_t} + \epsilon_g)` with :math:`\hat\nu_t =
    \nu_t/(1-\beta^t)` (``"adam"``) or :math:`\nu_t` (``"rmsprop"``); the update takes its
    Frobenius norm, :math:`u_t = P\,\lVert D\rVert_F / \lVert P\rVert_F` (zero where
    :math:`P = 0`), and the momentum buffer stores that :math:`u_t`. :math:`G` is the
    gradient after the momentum mix and coupled weight decay, the same one the statistics
    accumulate.

    Args:
      momentum: :math:`\mu \in [0, 1)`.
      weight_decay: :math:`\lambda \ge 0`, coupled (added to the mixed gradient).
      preconditioning_compute_steps: updates between inverse-root computations (``>= 1``).
      matrix_eps: :math:`\epsilon \ge 0`, the statistics' initial :math:`\epsilon I`.
      grafting: ``None``, ``"adam"`` or ``"rmsprop"``.
      graft_b2: :math:`\beta` of the grafted optimizer; ``None``: Distributed Shampoo's
        default (0.999 for Adam, 0.99 for RMSprop).
      graft_eps: :math:`\epsilon_g \ge 0`.
      maximize: tell the rule the gradient was negated (for the buffer's first value; the
        negation itself is the alias's ``"sign"`` member).

    Returns:
      A ``GradientTransformation`` whose state is a :class:`ShampooState`; its ``update``
      needs ``params``. Complex params are refused. An inverse root with NaN or infinite
      entries (a non-finite gradient, an overflow, a zero :math:`\epsilon` with a singular
      statistic) is not stored: the previous one is kept (zeros at first: a zero update),
      so finite gradients never give NaN params. Under sharding the buffers shaped like a
      param are sharded like it; the statistics and roots multiply whole axes, so a param
      sharded over an explicit mesh axis is gathered for the step (the factors are
      replicated).

    Equivalents: the direction of ``pytorch_optimizer.Shampoo`` (before its learning rate
    and decoupled weight decay); grafting as ``distributed_shampoo``'s
    ``AdamGraftingConfig`` / ``RMSpropGraftingConfig`` with one block per param.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.scale_by_shampoo(matrix_eps=0.0)
        >>> g = {"w": jnp.array([[2.0, 0.0], [0.0, 8.0]])}
        >>> u, _ = tx.update(g, tx.init(g), g)  # L = R = g g^T: (L R)^(-1/4) g = 1
        >>> jnp.round(u["w"], 4)
        Array([[1., 0.],
               [0., 1.]], dtype=float32)
    """
    check_integer("preconditioning_compute_steps", preconditioning_compute_steps, minimum=1)
    check_one_of("grafting", grafting, (None, "adam", "rmsprop"))
    check_flag("maximize", maximize)
    if grafting is not None and graft_b2 is None:
        graft_b2 = GRAFT_B2[grafting]
    return lift(SHAMPOO, momentum=momentum, weight_decay=weight_decay,
                matrix_eps=matrix_eps, graft_b2=graft_b2, graft_eps=graft_eps,
                preconditioning_compute_steps=preconditioning_compute_steps,
                grafting=grafting, maximize=maximize)
