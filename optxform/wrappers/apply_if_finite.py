"""apply_if_finite: skip steps whose gradients or updates are not finite (a NaN/inf guard)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optxform import tree as otu
from optxform.core import GradientTransformation, call_update
from optxform.core.counters import INT32_MAX, increment, zero_count
from optxform.core.validation import check_integer

__all__ = ["ApplyIfFiniteState", "apply_if_finite"]


class ApplyIfFiniteState(NamedTuple):
    """The state of :func:`apply_if_finite` (the same fields as optax's).

    Attributes:
      notfinite_count: int32 scalar, the number of consecutive non-finite steps so far
        (0 after a finite one).
      last_finite: bool scalar, whether the last step was finite.
      total_notfinite: int32 scalar, the number of non-finite steps in all (saturating).
      inner_state: the wrapped transform's state, unchanged by skipped steps.
    """

    notfinite_count: jax.Array
    last_finite: jax.Array
    total_notfinite: jax.Array
    inner_state: Any


def apply_if_finite(tx: GradientTransformation,
                    max_consecutive_errors: int) -> GradientTransformation:
    """Run ``tx``, but drop a step whose incoming or outgoing updates hold a NaN or an inf.

    A step is *non-finite* when any element of the incoming updates (the gradients) or of
    the updates ``tx`` returns is NaN or +-inf. For such a step the wrapper returns zero
    updates (params do not move) and keeps ``tx``'s previous state (its moments and counters
    are untouched, as if the step never happened); it counts the step in
    ``notfinite_count`` (consecutive, reset by a finite step) and ``total_notfinite``.

    Giving up: up to ``max_consecutive_errors`` consecutive non-finite steps are skipped.
    The next one (number ``max_consecutive_errors + 1`` in a row) and every following
    non-finite step until a finite one are *applied*: ``tx``'s updates and state are used as
    they are, so the NaN reaches the params. This is optax's documented behaviour and is
    deliberate: a run that only ever produces NaNs fails visibly instead of silently
    freezing. ``max_consecutive_errors=0`` therefore skips nothing. Counters saturate at
    the int32 maximum.

    Args:
      tx: the transform to guard.
      max_consecutive_errors: how many non-finite steps in a row are skipped (an int
        ``>= 0``) before they are applied.

    Returns:
      A :class:`GradientTransformation` whose state is an :class:`ApplyIfFiniteState`
        wrapping ``tx``'s state.

    torch equivalent: ``torch.amp.GradScaler.step`` skipping ``optimizer.step()`` when the
    gradients hold infs/NaNs (without loss scaling, and without a give-up limit).
    Equivalent: ``optax.apply_if_finite``.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.apply_if_finite(optxform.sgd(0.1), max_consecutive_errors=2)
        >>> params = {"w": jnp.ones(2)}
        >>> state = tx.init(params)
        >>> updates, state = tx.update({"w": jnp.array([1.0, jnp.inf])}, state, params)
        >>> updates["w"], state.notfinite_count  # skipped: the params do not move
        (Array([0., 0.], dtype=float32), Array(1, dtype=int32))
        >>> updates, state = tx.update({"w": jnp.ones(2)}, state, params)
        >>> updates["w"], state.total_notfinite
        (Array([-0.1, -0.1], dtype=float32), Array(1, dtype=int32))
    """
    check_integer("max_consecutive_errors", max_consecutive_errors, minimum=0)
    limit = jnp.asarray(min(int(max_consecutive_errors), int(INT32_MAX)), jnp.int32)

    def init(params):
        return ApplyIfFiniteState(notfinite_count=zero_count(), last_finite=jnp.asarray(True),
                                  total_notfinite=zero_count(), inner_state=tx.init(params))

    def update(updates, state, params=None, **extra):
        new_updates, new_inner = call_update(tx, updates, state.inner_state, params, extra)
        finite = jnp.logical_and(otu.all_finite(updates), otu.all_finite(new_updates))
        notfinite_count = jnp.where(finite, jnp.zeros([], jnp.int32),
                                    increment(state.notfinite_count))
        total = jnp.where(finite, state.total_notfinite, increment(state.total_notfinite))
        apply = jnp.logical_or(finite, notfinite_count > limit)
        out_updates = otu.where(apply, new_updates, otu.zeros_like(new_updates))
        inner_state = jax.tree.map(lambda new, old: jnp.where(apply, new, old),
                                   new_inner, state.inner_state)
        return out_updates, ApplyIfFiniteState(
            notfinite_count=notfinite_count.astype(jnp.int32), last_finite=finite,
            total_notfinite=total.astype(jnp.int32), inner_state=inner_state)

    update.parts = (tx,)
    return GradientTransformation(init, update)
