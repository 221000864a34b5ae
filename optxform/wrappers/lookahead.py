"""Wrapper: lookahead."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from optxform import tree as otu
from optxform.core import GradientTransformation, call_update
from optxform.core.base import declares_hyperparameters
from optxform.core.validation import check_integer, check_range
from optxform.core.trees import require_params

__all__ = ["LookaheadState", "lookahead"]


class LookaheadState(NamedTuple):
    r"""The state of :func:`lookahead`.

    Attributes:
      inner_state: the wrapped transform's state (kept across syncs).
      slow: the slow weights :math:`\phi`, a tree like the params, in the param dtype.
      period_step: int32 scalar in ``[0, sync_period)``, the fast steps since the last
        sync.
    """

    inner_state: Any
    slow: Any
    period_step: jax.Array


@declares_hyperparameters("alpha")
def lookahead(inner: GradientTransformation, sync_period: int = 5,
              alpha: ArrayLike = 0.5) -> GradientTransformation:
    r"""Lookahead (Zhang et al. 2019): ``k`` fast steps of ``inner``, then a pull toward the slow.

    The params you hold are the *fast* weights :math:`\theta`; the slow weights
    :math:`\phi` live in the state (initialised to the params). Each update runs
    ``inner``; every ``sync_period``-th update (:math:`k`) also moves the slow weights
    and resets the fast weights to them:

    .. math::

        \theta &\leftarrow \theta + \text{inner}(g) \\
        \text{every } k\text{-th step:}\quad
        \phi &\leftarrow \phi + \alpha\,(\theta - \phi), \qquad \theta \leftarrow \phi

    The emitted update does this: :math:`u = \text{inner}(g)` on ordinary steps and
    :math:`u = \phi_{new} - \theta_{old}` on sync steps, so ``apply_updates`` leaves the
    params equal to the new slow weights. The inner state is kept across syncs. After the
    last sync the params are the slow weights, which is what to evaluate.

    The period is counted by its own counter in :math:`[0, k)`, so syncing keeps its
    rhythm for any number of steps (no overflow, unlike a global step count).

    Args:
      inner: any transform (e.g. ``optxform.adam(1e-3)``); it is called with the fast
        weights as ``params``.
      sync_period: :math:`k \ge 1`, fast steps per sync (1: sync every step).
      alpha: :math:`\alpha \in [0, 1]`, the slow weights' step toward the fast ones
        (1: plain ``inner``; 0: params never move).

    Returns:
      A :class:`GradientTransformation` whose state is a :class:`LookaheadState`
        (``slow`` in the param dtype, ``period_step`` int32); its ``update`` needs
        ``params``.

    Equivalents: the paper's algorithm; ``optax.lookahead`` keeps both weight sets in the
    params instead (``LookaheadParams``) and the user must evaluate ``params.slow``.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.lookahead(optxform.sgd(0.1), sync_period=2, alpha=0.5)
        >>> params = {"w": jnp.zeros(1)}
        >>> state = tx.init(params)
        >>> for _ in range(2):
        ...     updates, state = tx.update({"w": -jnp.ones(1)}, state, params)
        ...     params = optxform.apply_updates(params, updates)
        >>> params["w"]  # fast reached 0.2, slow moved halfway from 0
        Array([0.1], dtype=float32)
    """
    check_integer("sync_period", sync_period, minimum=1)
    check_range("alpha", alpha, 0.0, 1.0, high_closed=True)

    def init(params):
        return LookaheadState(inner_state=inner.init(params),
                              slow=otu.tree_map(jnp.asarray, params),
                              period_step=jnp.zeros([], jnp.int32))

    def update(updates, state, params=None, **extra):
        require_params(params, updates, "lookahead")
        fast_updates, inner_state = call_update(inner, updates, state.inner_state, params,
                                                extra)
        period_step = state.period_step + 1
        sync = period_step >= sync_period

        def advance(p, u):  # the fast weights after the inner step, as apply_updates does
            wide = otu.wider_dtype(p.dtype, u.dtype)
            return (p.astype(wide) + u.astype(wide)).astype(p.dtype)

        def pull(s, fast):  # the slow weights' move toward the fast ones
            return s + otu.as_dtype_of(alpha, s) * (fast.astype(s.dtype) - s)

        def emit(u, p, pulled):  # on a sync step, the update that lands the params on slow
            wide = otu.wider_dtype(p.dtype, u.dtype)
            synced = (pulled.astype(wide) - p.astype(wide)).astype(u.dtype)
            return jnp.where(sync, synced, u)

        # A None update (a param without a gradient this step) stays None, its slow copy
        # untouched.
        fast = otu.tree_map(lambda u, p: advance(p, u), fast_updates, params)
        pulled = otu.tree_map(lambda f, s: pull(s, f), fast, state.slow)
        new_updates = otu.tree_map(emit, fast_updates, params, pulled)
        new_slow = jax.tree.map(lambda s, n: s if n is None else jnp.where(sync, n, s),
                                state.slow, pulled)
        new_state = LookaheadState(
            inner_state=inner_state, slow=new_slow,
            period_step=jnp.where(sync, 0, period_step).astype(jnp.int32))
        return new_updates, new_state

    update.parts = (inner,)
    return GradientTransformation(init, update)
