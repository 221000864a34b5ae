r"""ADOPT (Taniguchi et al. 2024): Adam that normalises by the *previous* second moment.

One declared :class:`~optxform.rules.Rule`, lifted by :func:`~optxform.rules.lift`. The
arithmetic follows ``pytorch-optimizer`` 4.1.0's ``ADOPT`` step by step (its reference
implementation): the first step only records :math:`v = g^2`; every later step divides the
gradient by :math:`\max(\sqrt{v_{t-1}}, \epsilon)`, clips it, takes it into the momentum with
``lerp_`` and only then updates :math:`v`.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from optxform.core import GradientTransformation, Updates
from optxform.rules import Buffer, Leaf, Rule, Step, beta, lift, non_negative
from optxform.tree.numerics import ema_of_square, lerp, one_minus, step_dtype

__all__ = ["ScaleByAdoptState", "scale_by_adopt"]

ClipLambda = Callable[[jax.Array], ArrayLike]


def _fourth_root(step: jax.Array) -> jax.Array:
    """ADOPT's default clip bound, ``step ** 0.25``."""
    return step ** 0.25


class ScaleByAdoptState(NamedTuple):
    """The state of :func:`scale_by_adopt`.

    Attributes:
      count: int32 steps taken (the first only records ``nu``), saturating.
      mu: the momentum of the normalised gradient (reference ``exp_avg``), in the param
        dtype or ``mu_dtype``.
      nu: the second moment (reference ``exp_avg_sq``), float32 or wider, or ``nu_dtype``.
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count
    mu: Updates       # momentum of the normalised gradient (``exp_avg``): param dtype
    nu: Updates       # second moment (``exp_avg_sq``): float32 or wider


def _check_clip_lambda(clip_lambda) -> None:
    if clip_lambda is not None and not callable(clip_lambda):
        raise ValueError(f"Invalid clip_lambda: {clip_lambda!r} (clip_lambda must be a "
                         "callable step -> clip value, or None)")


def _adopt_step(st: Step) -> tuple[dict, dict]:
    h, clip_lambda = st.h, st.opt["clip_lambda"]
    clip = None
    if clip_lambda is not None:  # the reference's step: the first update is step 2
        clip = jnp.asarray(clip_lambda(st.t.astype(step_dtype())), step_dtype())
    return {"w1": one_minus(h["b1"]), "b2": h["b2"], "w2": one_minus(h["b2"]),
            "eps": h["eps"], "first": st.t == 1, "clip": clip}, {}


def _adopt_leaf(x: Leaf) -> tuple[jax.Array, dict]:
    s, g, mu, nu = x.s, x.g, x.buffers["mu"], x.buffers["nu"]
    normed = g / jnp.maximum(jnp.sqrt(nu), s["eps"])
    if s["clip"] is not None:
        normed = jnp.clip(normed, -s["clip"], s["clip"])
    new_mu = lerp(mu, normed, s["w1"])
    first = s["first"].astype(bool)  # record v_0 = g^2, leave the momentum and the params alone
    return (jnp.where(first, jnp.zeros_like(new_mu), new_mu),
            {"mu": jnp.where(first, mu, new_mu),
             "nu": jnp.where(first, nu + g * g, ema_of_square(nu, g, s["b2"], s["w2"]))})


ADOPT = Rule(
    name="scale_by_adopt", kind="elementwise", state=ScaleByAdoptState,
    hyperparameters=(beta("b1"), beta("b2"), non_negative("eps")),
    buffers=(Buffer("mu", "param", dtype_option="mu_dtype"),
             Buffer("nu", "accumulator", dtype_option="nu_dtype")),
    options=("clip_lambda",), per_step=_adopt_step, leaf=_adopt_leaf)


def scale_by_adopt(b1: ArrayLike = 0.9, b2: ArrayLike = 0.9999, eps: ArrayLike = 1e-6,
                   clip_lambda: ClipLambda | None = _fourth_root,
                   mu_dtype: DTypeLike | None = None,
                   nu_dtype: DTypeLike | None = None) -> GradientTransformation:
    r"""Rescale updates by ADOPT's rule: normalise by the previous second moment, then average.

    At step :math:`t = 1` only :math:`v_1 = g_1^2` is recorded and the update is zero. For
    :math:`t \ge 2`:

    .. math::

        \hat g_t &= \operatorname{clip}\Bigl(\frac{g_t}{\max(\sqrt{v_{t-1}},\ \epsilon)},
                    \ -c(t),\ c(t)\Bigr) \\
        m_t &= \operatorname{lerp}(m_{t-1}, \hat g_t, 1 - \beta_1)
              = \beta_1 m_{t-1} + (1 - \beta_1)\,\hat g_t, \qquad m_1 = 0 \\
        u_t &= m_t \\
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2

    with :math:`c(t)` = ``clip_lambda(t)`` (:math:`t^{1/4}` by default; no clipping with
    ``None``). There is no bias correction. Chain it with ``scale_by_learning_rate(lr)``.

    Args:
      b1: :math:`\beta_1 \in [0, 1)`, decay of the momentum.
      b2: :math:`\beta_2 \in [0, 1)`, decay of the second moment.
      eps: :math:`\epsilon \ge 0`, the floor of :math:`\sqrt{v}`.
      clip_lambda: a function ``step -> clip bound``, called once per step with the step
        number :math:`t` (1 for the first step, so the first update sees :math:`c(2)`) as a
        JAX float scalar: write it with ``jnp`` or operators (``lambda t: t ** 0.25``), not
        ``math``; ``None`` disables clipping (ADOPT before clipping was added).
      mu_dtype, nu_dtype: storage dtypes of the moments; ``None``: the param dtype for
        ``mu``, float32 or wider for ``nu``.

    Returns:
      A :class:`~optxform.GradientTransformation` whose state is a
      :class:`ScaleByAdoptState` (int32 ``count``, ``mu``, ``nu``).

    Equivalents: the direction of ``pytorch_optimizer.ADOPT`` (4.1.0); ``optax.contrib.
    scale_by_adopt`` evaluates its clip function at the step count *before* the
    increment (:math:`c(1)` at the first update, the paper's indexing).
    Reference: Taniguchi et al., 2024, https://arxiv.org/abs/2411.02853.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.scale_by_adopt()
        >>> g = {"w": jnp.array([0.5, -2.0])}
        >>> u, state = tx.update(g, tx.init(g))
        >>> u["w"], state.nu["w"]   # the first step records g**2 and moves nothing
        (Array([0., 0.], dtype=float32), Array([0.25, 4.  ], dtype=float32))
    """
    _check_clip_lambda(clip_lambda)
    return lift(ADOPT, b1=b1, b2=b2, eps=eps, clip_lambda=clip_lambda, mu_dtype=mu_dtype,
                nu_dtype=nu_dtype)
