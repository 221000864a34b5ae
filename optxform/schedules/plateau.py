"""Reduce the step size when a monitored loss stops improving (torch ReduceLROnPlateau)."""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from optxform import tree as otu
from optxform.core import GradientTransformation
from optxform.core.counters import increment
from optxform.schedules.numerics import check_int, check_number

__all__ = ["ReduceOnPlateauState", "reduce_on_plateau"]


class ReduceOnPlateauState(NamedTuple):
    """The state of :func:`reduce_on_plateau`: four scalars, whatever the params.

    Attributes:
      best: float32 scalar, the best loss seen so far (``+inf`` in mode ``'min'``,
        ``-inf`` in mode ``'max'``, before the first loss); torch's ``best``.
      num_bad_epochs: int32 scalar, the losses seen since the last improvement (held at 0
        during a cooldown); torch's ``num_bad_epochs``.
      cooldown_counter: int32 scalar, the updates left before bad losses count again;
        torch's ``cooldown_counter``.
      scale: float32 scalar, the factor the next updates are multiplied by (1 at first,
        at least ``min_scale``); torch's lr divided by the base lr.
    """

    best: jax.Array
    num_bad_epochs: jax.Array
    cooldown_counter: jax.Array
    scale: jax.Array


def reduce_on_plateau(factor: ArrayLike = 0.1, patience: int = 10, threshold: ArrayLike = 1e-4,
                      threshold_mode: str = "rel", cooldown: int = 0, min_scale: ArrayLike = 0.0,
                      mode: str = "min", eps: ArrayLike = 1e-8) -> GradientTransformation:
    r"""Scale updates by ``scale``, multiplied by ``factor`` when the loss plateaus.

    Each ``update(updates, state, params, loss=value)`` first scales the updates by the
    current ``scale`` (the value the previous losses decided, as torch's lr is used by
    ``optimizer.step()`` before ``scheduler.step(loss)``), then records ``loss``:

    .. math::

        \text{better} &= \begin{cases}
          \ell < b\,(1 - \theta) & \text{min, rel} \qquad \ell < b - \theta\ \ \text{min, abs} \\
          \ell > b\,(1 + \theta) & \text{max, rel} \qquad \ell > b + \theta\ \ \text{max, abs}
        \end{cases} \\
        b &\leftarrow \ell \text{ and } n \leftarrow 0 \text{ if better, else }
              n \leftarrow n + 1 \\
        \text{in cooldown } (k > 0)&: k \leftarrow k - 1,\ n \leftarrow 0 \\
        n > \text{patience}&: \sigma \leftarrow \max(\sigma \cdot \text{factor},
              \sigma_{min}) \text{ if the drop exceeds eps};\ k \leftarrow \text{cooldown};\
              n \leftarrow 0 .

    All of it is array arithmetic on :class:`ReduceOnPlateauState`, so it runs under
    ``jit``/``scan``. A NaN loss is never "better" (it counts as a bad epoch), as in torch.

    Args:
      factor: the multiplier applied at a plateau, in ``[0, 1)``.
      patience: bad losses tolerated before reducing (``>= 0``).
      threshold: :math:`\theta \ge 0`, the least improvement that counts.
      threshold_mode: ``'rel'`` or ``'abs'``.
      cooldown: steps after a reduction during which bad losses are ignored.
      min_scale: the floor of ``scale`` (torch's ``min_lr`` divided by the base lr).
      mode: ``'min'`` (a loss) or ``'max'`` (an accuracy).
      eps: reductions of ``scale`` smaller than this are skipped (torch's ``eps``, here in
        units of the scale rather than of the lr: identical for a base lr of 1).

    Equivalents: ``torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode, factor, patience,
    threshold, threshold_mode, cooldown, min_lr=min_scale * lr, eps)``, with
    ``scheduler.step(loss)`` after each ``optimizer.step()``: one ``update`` here counts as
    one ``scheduler.step``. ``optax.contrib.reduce_on_plateau`` differs:
    it applies the new scale in the same update that sees the loss, and has no ``mode``.

    Returns:
      A gradient transformation whose ``update`` needs the keyword argument ``loss=`` (a
        scalar) and returns the updates times the current scale; its state is a
        :class:`ReduceOnPlateauState`. Inside ``optax.chain``, wrap it with
        :func:`optxform.to_optax` so that ``loss=`` reaches it.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.reduce_on_plateau(factor=0.5, patience=1)
        >>> params = {"w": jnp.ones(2)}
        >>> state = tx.init(params)
        >>> for loss in [1.0, 1.0, 1.0, 1.0]:  # the third loss is the second bad one
        ...     updates, state = tx.update({"w": jnp.ones(2)}, state, params, loss=loss)
        >>> updates["w"], state.scale
        (Array([0.5, 0.5], dtype=float32), Array(0.5, dtype=float32))
    """
    f = check_number("factor", factor, low=0.0, high=1.0, high_open=True)
    patience = check_int("patience", patience)
    theta = check_number("threshold", threshold, low=0.0)
    if not math.isfinite(theta):
        raise ValueError(f"Invalid threshold: {threshold!r} (threshold must be finite)")
    if threshold_mode not in ("rel", "abs"):
        raise ValueError(f"Invalid threshold_mode: {threshold_mode!r} (threshold_mode must "
                         "be 'rel' or 'abs')")
    if mode not in ("min", "max"):
        raise ValueError(f"Invalid mode: {mode!r} (mode must be 'min' or 'max')")
    cooldown = check_int("cooldown", cooldown)
    floor = check_number("min_scale", min_scale, low=0.0)
    eps = check_number("eps", eps, low=0.0)
    worst = math.inf if mode == "min" else -math.inf

    def is_better(loss, best):
        # best * (1 -/+ theta) written as best -/+ best * theta (one rounding fewer in
        # float32, so fewer borderline losses are judged differently from torch's float64);
        # the infinite initial best stays infinite, as in torch.
        if threshold_mode == "rel":
            margin = jnp.where(jnp.isfinite(best), best * np.float32(theta), np.float32(0.0))
        else:
            margin = np.float32(theta)
        if mode == "min":
            return loss < best - margin
        return loss > best + margin

    def init(params):
        del params
        return ReduceOnPlateauState(best=jnp.asarray(worst, jnp.float32),
                                    num_bad_epochs=jnp.zeros([], jnp.int32),
                                    cooldown_counter=jnp.zeros([], jnp.int32),
                                    scale=jnp.ones([], jnp.float32))

    def update(updates, state, params=None, *, loss=None, **extra):
        del params, extra
        if loss is None:
            raise ValueError("reduce_on_plateau needs the monitored value: call "
                             "update(updates, state, params, loss=value) (inside optax.chain "
                             "or another optax combinator, wrap it: optxform.to_optax(tx))")
        loss = jnp.asarray(loss)
        if loss.shape != ():
            raise ValueError(f"reduce_on_plateau: loss must be a scalar, got shape {loss.shape}")
        loss = loss.astype(jnp.float32)
        updates = otu.scale(state.scale, updates)

        better = is_better(loss, state.best)
        best = jnp.where(better, loss, state.best)
        bad = jnp.where(better, 0, increment(state.num_bad_epochs))
        in_cooldown = state.cooldown_counter > 0
        counter = jnp.where(in_cooldown, state.cooldown_counter - 1, state.cooldown_counter)
        bad = jnp.where(in_cooldown, 0, bad)
        reduce = bad > patience
        reduced = jnp.maximum(state.scale * np.float32(f), np.float32(floor))
        scale = jnp.where(reduce & (state.scale - reduced > np.float32(eps)), reduced,
                          state.scale)
        counter = jnp.where(reduce, cooldown, counter)
        bad = jnp.where(reduce, 0, bad)
        return updates, ReduceOnPlateauState(best=best.astype(jnp.float32),
                                             num_bad_epochs=bad.astype(jnp.int32),
                                             cooldown_counter=counter.astype(jnp.int32),
                                             scale=scale.astype(jnp.float32))

    return GradientTransformation(init, update)
