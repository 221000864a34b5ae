"""Gradient accumulation: MultiSteps (one inner step every k micro-batches)."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from optxform import tree as otu
from optxform.core import GradientTransformation, Params, Updates, call_update
from optxform.core.counters import increment, zero_count
from optxform.core.validation import check_integer

__all__ = ["MultiSteps", "MultiStepsState"]


class MultiStepsState(NamedTuple):
    """The state of :class:`MultiSteps` (the same fields as optax's).

    Attributes:
      mini_step: int32 scalar, the micro-batches accumulated in the current window
        (``0 .. k-1``).
      gradient_step: int32 scalar, the inner updates made so far (saturating).
      inner_opt_state: the wrapped transform's state, advanced once per window.
      acc_grads: the sum of the window's gradients, a tree like the params, in float32 or
        wider.
    """

    mini_step: jax.Array
    gradient_step: jax.Array
    inner_opt_state: Any
    acc_grads: Any


class MultiSteps:
    """Gradient accumulation: average the gradients of ``k`` micro-batches, then step once.

    For micro-batch gradients ``g_1..g_k`` of a mean loss, the ``k``-th call passes
    ``(g_1 + ... + g_k) / k`` (the gradient of the mean loss over the concatenated batch)
    to ``tx`` and returns its updates; the ``k - 1`` calls before it return zero updates and
    leave ``tx``'s state alone. ``k = every_k_schedule(gradient_step)`` (an int, or a
    function of the number of inner steps made so far) is re-read at each micro-step, so
    it can grow during training. ``use_grad_mean=False`` passes the sum instead.

    The gradients are summed in float32 (or the gradient's dtype if wider) and the mean is
    cast back to the gradient's dtype. The window position ``mini_step`` restarts at 0
    after each inner step, so it never grows without bound; ``gradient_step`` saturates at
    the int32 maximum, after which the schedule is read at that step and accumulation
    keeps its period.

    Usage, as with ``optax.MultiSteps``::

        opt = optxform.MultiSteps(optxform.adam(1e-3), every_k_schedule=4)
        state = opt.init(params)
        updates, state = opt.update(grads, state, params)   # jit-able
        opt.has_updated(state)    # True right after an inner step
        tx = opt.gradient_transformation()   # a plain GradientTransformation (for chain)

    Args:
      tx: the transform to step once per window.
      every_k_schedule: ``k``, the micro-batches per window: an int ``>= 1``, or a
        function of ``gradient_step`` returning one.
      use_grad_mean: pass the mean of the window's gradients (the default) rather than
        their sum.

    torch equivalent: calling ``loss.backward()`` on ``k`` micro-batches with the loss
    divided by ``k``, then ``optimizer.step(); optimizer.zero_grad()``. Equivalent:
    ``optax.MultiSteps`` (first argument named ``opt`` there).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> opt = optxform.MultiSteps(optxform.sgd(1.0), every_k_schedule=2)
        >>> params = {"w": jnp.zeros(1)}
        >>> state = opt.init(params)
        >>> for g in (1.0, 3.0):
        ...     updates, state = opt.update({"w": jnp.array([g])}, state, params)
        ...     print(updates["w"], bool(opt.has_updated(state)))
        [0.] False
        [-2.] True
    """

    def __init__(self, tx: GradientTransformation,
                 every_k_schedule: int | Callable[[jax.Array], ArrayLike] = 1,
                 use_grad_mean: bool = True) -> None:
        if not callable(every_k_schedule):
            check_integer("every_k_schedule", every_k_schedule, minimum=1)
        self._tx = tx
        self._every_k_schedule = every_k_schedule
        self._use_grad_mean = bool(use_grad_mean)

    @property
    def inner_opt(self) -> GradientTransformation:
        """The wrapped transform."""
        return self._tx

    def _k(self, gradient_step: jax.Array) -> jax.Array:
        schedule = self._every_k_schedule
        k = schedule(gradient_step) if callable(schedule) else schedule
        return jnp.maximum(jnp.asarray(k).astype(jnp.int32), jnp.ones([], jnp.int32))

    def init(self, params: Params) -> MultiStepsState:
        acc = otu.tree_map(
            lambda p: jnp.zeros(jnp.shape(p), otu.at_least_float32(jnp.asarray(p).dtype)), params)
        return MultiStepsState(mini_step=zero_count(), gradient_step=zero_count(),
                               inner_opt_state=self._tx.init(params), acc_grads=acc)

    def update(self, updates: Updates, state: MultiStepsState, params: Params | None = None,
               **extra: Any) -> tuple[Updates, MultiStepsState]:
        """Accumulate ``updates``; every ``k``-th call, step the inner transform."""
        # A None gradient leaf adds nothing; its update is None in the window it arrives in.
        acc = jax.tree.map(lambda a, g: a if g is None else a + g.astype(a.dtype),
                           state.acc_grads, updates)
        count = increment(state.mini_step)  # micro-batches in the window, this one included
        emit = count >= self._k(state.gradient_step)

        def inner_step():
            divisor = count if self._use_grad_mean else jnp.ones([], jnp.int32)
            grads = otu.tree_map(lambda g, a: (a / divisor.astype(a.dtype)).astype(g.dtype),
                                 updates, acc)
            new_updates, inner_state = call_update(
                self._tx, grads, state.inner_opt_state, params, extra)
            return new_updates, MultiStepsState(
                mini_step=zero_count(), gradient_step=increment(state.gradient_step),
                inner_opt_state=inner_state,
                acc_grads=jax.tree.map(lambda a, g: a if g is None else jnp.zeros_like(a),
                                       acc, updates))

        out_shapes = jax.eval_shape(inner_step)[0]

        def accumulate():
            zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), out_shapes)
            return zeros, MultiStepsState(
                mini_step=count, gradient_step=state.gradient_step,
                inner_opt_state=state.inner_opt_state, acc_grads=acc)

        return jax.lax.cond(emit, inner_step, accumulate)

    def has_updated(self, state: MultiStepsState) -> jax.Array:
        """Whether the last ``update`` stepped the inner transform (a bool scalar)."""
        return jnp.logical_and(state.mini_step == 0, state.gradient_step > 0)

    def gradient_transformation(self) -> GradientTransformation:
        """This accumulation as a plain :class:`GradientTransformation` (``init``, ``update``)."""
        return GradientTransformation(self.init, self.update)
