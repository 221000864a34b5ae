"""ema: an exponential moving average of the params, kept in the optimizer state."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from optxform import tree as otu
from optxform.core import GradientTransformation, apply_updates
from optxform.core.base import declares_hyperparameters
from optxform.core.counters import increment, zero_count
from optxform.core.validation import check_range
from optxform.core.trees import require_params

__all__ = ["EmaState", "ema", "ema_params"]


class EmaState(NamedTuple):
    """The state of :func:`ema`; read the average with :func:`ema_params`.

    Attributes:
      count: int32 scalar, the number of averages taken so far (torch's ``n_averaged``;
        saturating).
      ema: the averaged params, a tree like the params, in float32 or the param's dtype if
        wider (the initial params before the first step).
    """

    count: jax.Array
    ema: Any


@declares_hyperparameters("decay")
def ema(decay: ArrayLike = 0.999) -> GradientTransformation:
    """Keep an exponential moving average of the params; pass the updates through unchanged.

    Place it LAST in a chain, ``chain(optimizer, ema(decay))``: it sees the final updates
    ``u_t`` and the params ``p_{t-1}`` of the step and averages the params the step
    produces, ``p_t = apply_updates(p_{t-1}, u_t)``::

        ema_1 = p_1                                    (the first step copies)
        ema_t = lerp(ema_{t-1}, p_t, 1 - decay)        = decay * ema_{t-1} + (1 - decay) * p_t

    Read the average with :func:`ema_params` (``ema_params(state)``), e.g. to evaluate or
    export the averaged model. The average is held in float32 (or the param dtype if wider)
    so that a bfloat16 model's average does not stall; ``ema_params(state, like=params)``
    casts it back to the params' dtypes. Before the first step the average holds the initial
    params. ``decay`` in [0, 1]: 0 tracks the params exactly, 1 keeps the first step's params.

    torch equivalent: ``torch.optim.swa_utils.AveragedModel(model,
    multi_avg_fn=get_ema_multi_avg_fn(decay))`` with ``averaged.update_parameters(model)``
    after every ``optimizer.step()`` (same copy-first rule and the same lerp, so the
    averages match torch's in float32). Not the same as ``optax.ema(decay)``, which
    averages the *updates* (replacing them by their average, with a zero start and
    ``debias``) rather than keeping an average of the params beside them.

    Args:
      decay: the weight of the old average, in ``[0, 1]``.

    Returns:
      A :class:`GradientTransformation` whose state is an :class:`EmaState`; its
        ``update`` needs ``params`` and returns the updates unchanged.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.chain(optxform.sgd(0.5), optxform.ema(decay=0.5))
        >>> params = {"w": jnp.zeros(1)}
        >>> state = tx.init(params)
        >>> for _ in range(2):  # the params go to 1, then 2
        ...     updates, state = tx.update({"w": -2 * jnp.ones(1)}, state, params)
        ...     params = optxform.apply_updates(params, updates)
        >>> optxform.ema_params(state)["w"]  # 1, then 0.5 * 1 + 0.5 * 2
        Array([1.5], dtype=float32)
    """
    check_range("decay", decay, 0.0, 1.0, high_closed=True)

    def init(params):
        return EmaState(count=zero_count(), ema=otu.tree_map(_wide_copy, params))

    def update(updates, state, params=None, **extra):
        del extra
        require_params(params, updates, "ema")
        new_params = apply_updates(params, updates)
        first = state.count == 0
        weight = 1.0 - decay if isinstance(decay, (int, float)) else \
            1.0 - jnp.asarray(decay, jnp.float32)

        def average(avg, p):
            p = p.astype(avg.dtype)
            w = jnp.asarray(weight).astype(avg.dtype)
            # torch.lerp's two forms, chosen by the weight, for bitwise-close agreement.
            lerp = jnp.where(w < 0.5, avg + w * (p - avg), p - (p - avg) * (1 - w))
            return jnp.where(first, p, lerp)

        new_ema = otu.tree_map(average, state.ema, new_params)
        return updates, EmaState(count=increment(state.count), ema=new_ema)

    update.parts = ()  # elementwise: an average of each param
    return GradientTransformation(init, update)


def _wide_copy(p):
    p = jnp.asarray(p)
    return p.astype(otu.at_least_float32(p.dtype))


def ema_params(state: Any, like: Any = None) -> Any:
    """The averaged params held by the :func:`ema` member of ``state`` (a nested state).

    Args:
      state: an optimizer state holding exactly one :class:`EmaState` (at any depth).
      like: a params tree; if given, each average is cast to the matching param's dtype.

    Returns:
      The averaged params: a tree like the params, in float32 or wider (in the params'
        dtypes with ``like``).

    Raises:
      ValueError: if ``state`` holds no :class:`EmaState`, or several.

    Equivalent: the parameters of a ``torch.optim.swa_utils.AveragedModel``.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.chain(optxform.sgd(0.5), optxform.ema(decay=0.5))
        >>> params = {"w": jnp.zeros(2, jnp.bfloat16)}
        >>> state = tx.init(params)
        >>> updates, state = tx.update({"w": -jnp.ones(2, jnp.bfloat16)}, state, params)
        >>> optxform.ema_params(state)["w"]  # the first step copies the params
        Array([0.5, 0.5], dtype=float32)
        >>> optxform.ema_params(state, like=params)["w"].dtype
        dtype(bfloat16)
    """
    found = [node for node in jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, EmaState))
             if isinstance(node, EmaState)]
    if not found:
        raise ValueError("ema_params: the state holds no ema(...) member")
    if len(found) > 1:
        raise ValueError(f"ema_params: the state holds {len(found)} ema(...) members; "
                         f"pass the one you mean (e.g. state[index])")
    average = found[0].ema
    return average if like is None else otu.cast_like(average, like)
