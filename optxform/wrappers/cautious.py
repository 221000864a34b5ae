r"""cautious: keep only the elements of an update that agree in sign with the gradient.

The cautious mask of C-Optim (Liang et al. 2024) wraps any transform that turns gradients
into a direction (an update to be subtracted, as ``scale_by_adam`` gives): the wrapper
zeroes the direction's elements whose sign disagrees with the incoming gradient's and
rescales the survivors, per leaf, so that the leaf's overall step size is kept.
"""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp

from optxform import tree as otu
from optxform.core import GradientTransformation, call_update

__all__ = ["cautious"]

Rescale = Literal["count", "clamped_mean"]
_RESCALES = ("count", "clamped_mean")
_MIN_MEAN = 1e-3  # the floor of the clamped mean (C-Optim's c_adamw.py, timm)


def _cautious_leaf(u: Any, g: Any, rescale: Rescale) -> Any:
    """``u`` where ``u * g > 0``, times the leaf's rescaling factor; 0 elsewhere."""
    if u is None or g is None:
        return u
    u, g = jnp.asarray(u), jnp.asarray(g)
    is_complex = jnp.iscomplexobj(u)
    real_u = otu.real_view(u)
    dtype = otu.at_least_float32(real_u.dtype)
    wide_u = real_u.astype(dtype)
    agree = wide_u * otu.real_view(g).astype(dtype) > 0
    n = agree.size
    kept = jnp.sum(agree, dtype=jnp.int32).astype(dtype)  # an exact count at any size
    if rescale == "count":
        factor = (1.0 / (kept + 1.0)) * n  # torch's ``n / tensor``: a reciprocal, times n
    else:
        factor = 1.0 / jnp.maximum(kept / n, _MIN_MEAN)
    out = jnp.where(agree, wide_u * factor, jnp.zeros((), dtype)).astype(real_u.dtype)
    return otu.complex_from_real_view(out) if is_complex else out


def cautious(tx: GradientTransformation, rescale: Rescale = "count") -> GradientTransformation:
    r"""Mask ``tx``'s direction where it disagrees with the gradient (C-Optim's caution).

    With :math:`g_t` the updates ``tx`` receives and :math:`u_t` the direction it returns,
    per leaf of :math:`n` elements:

    .. math::

        \phi_t = \mathbb{1}[u_t \odot g_t > 0], \qquad
        \tilde u_t = u_t \odot \phi_t \cdot s_t, \qquad
        s_t = \begin{cases}
          n / (\textstyle\sum \phi_t + 1) & \texttt{rescale="count"} \\
          1 / \max(\operatorname{mean} \phi_t,\ 10^{-3}) & \texttt{rescale="clamped\_mean"}
        \end{cases}

    Only elements whose step would move against the gradient's descent direction are
    dropped; the factor :math:`s_t \approx 1/\text{(fraction kept)}` restores the leaf's
    average step. ``tx`` must output a gradient-like direction, before the learning rate
    flips its sign: wrap the ``scale_by_*`` member (``cautious(scale_by_adam())``), not a
    whole alias, whose updates point downhill and would keep the wrong half. ``tx``'s
    state is passed through unchanged (the mask keeps nothing), so checkpoints of ``tx``
    and of ``cautious(tx)`` are interchangeable.

    The mean is taken per leaf, as the reference does per param tensor. Under
    :func:`~optxform.packed` the wrapper declares a per-leaf reduction, so the packed
    transform runs on each leaf in its own shape and gives the same updates as the plain
    one (without the packing speed-up). A complex leaf is masked on its real and imaginary
    parts as separate elements (torch's ``view_as_real``).

    Args:
      tx: the transform whose direction is masked; its updates must have the gradient's
        structure.
      rescale: ``"count"``: :math:`n / (\text{kept} + 1)`, the authors' first code
        (``c_lion.py``) and pytorch-optimizer's ``cautious=True``; ``"clamped_mean"``:
        :math:`1 / \max(\text{kept} / n, 10^{-3})`, the authors' current ``c_adamw.py``
        (and timm's ``caution=True``). The paper's Algorithm 1 writes
        :math:`1 / (\operatorname{mean}\phi + \epsilon)`, which ``"count"`` is with
        :math:`\epsilon = 1/n`.

    Returns:
      A ``GradientTransformation`` with ``tx``'s state.

    Equivalents: pytorch-optimizer's optimizers with ``cautious=True`` (``Lion``,
    ``ADOPT``, ``AdEMAMix``, ``MARS``, ...) are ``cautious`` over their direction
    (e.g. ``chain(cautious(scale_by_lion(b1, b2)), add_decayed_weights(wd),
    scale_by_learning_rate(lr))`` is ``Lion(lr, betas, weight_decay, cautious=True)``);
    optax has none. Reference: Liang et al., 2024, "Cautious Optimizers: Improving
    Training with One Line of Code", https://arxiv.org/abs/2411.16085.

    Example (the second element's step would go uphill: it is dropped, and the first is
    scaled by ``n / (kept + 1) = 2 / 2``)::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.cautious(optxform.scale_by_lion())
        >>> params = {"w": jnp.zeros(2)}
        >>> state = tx.init(params)
        >>> state = state._replace(mu={"w": jnp.array([0.0, 10.0])})
        >>> u, state = tx.update({"w": jnp.array([1.0, -1.0])}, state)
        >>> u["w"]
        Array([1., 0.], dtype=float32)
    """
    if rescale not in _RESCALES:
        raise ValueError(f"Invalid rescale: {rescale!r} (rescale must be one of "
                         f"{', '.join(map(repr, _RESCALES))})")

    def update(updates, state, params=None, **extra):
        direction, state = call_update(tx, updates, state, params, extra)
        return jax.tree.map(lambda u, g: _cautious_leaf(u, g, rescale), direction, updates,
                            is_leaf=lambda x: x is None), state

    update.parts = (tx,)
    update.kind = "matrix"  # a mean over each leaf: packing must keep leaves apart
    return GradientTransformation(tx.init, update)
