"""Averaged SGD (ASGD): step-size decay and the running parameter average.

torch's ``ASGD`` (Polyak & Juditsky 1992, with Bottou's step-size decay) splits into:

* :func:`asgd_learning_rate`: the step size :math:`\\eta_t = \\text{lr} / (1 + \\lambda\\,
  \\text{lr}\\, (t-1))^{\\alpha}` as a schedule for ``scale_by_learning_rate``;
* the decay term :math:`-\\lambda\\eta_t\\theta`, which is ``add_decayed_weights(lambd)``
  placed before the learning rate;
* :func:`asgd_averaging`: the running average :math:`\\bar\\theta` of the iterates (torch's
  ``ax``), kept in the state and read with :func:`asgd_average`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from optxform import tree as otu
from optxform.core import GradientTransformation, OptState, ScalarOrSchedule, Schedule
from optxform.core.validation import check_learning_rate, check_non_negative
from optxform.rules import Buffer, Hyperparameter, Leaf, Rule, Step, lift
from optxform.tree.numerics import as_f32

__all__ = ["AsgdAveragingState", "asgd_average", "asgd_averaging", "asgd_averaging_weight",
           "asgd_learning_rate"]


def asgd_learning_rate(learning_rate: ScalarOrSchedule = 1e-2, lambd: ArrayLike = 1e-4,
                       alpha: ArrayLike = 0.75) -> Schedule:
    r"""torch ASGD's step size as a schedule: ``count -> lr / (1 + lambd * lr * count)**alpha``.

    .. math::

        \eta(c) = \frac{\text{lr}}{(1 + \lambda\, \text{lr}\, c)^{\alpha}}

    ``count`` :math:`c` is the number of updates already made, so the first update uses
    ``lr`` itself (torch's ``eta`` starts at ``lr`` and is recomputed at the end of each
    step). With ``learning_rate`` a schedule, ``lr`` is its value at the same count.

    Args:
      learning_rate: ``lr``, a number or a schedule ``count -> lr`` (torch ``lr``).
      lambd: :math:`\lambda \ge 0`, the decay term (torch ``lambd``).
      alpha: :math:`\alpha \ge 0`, the power of the decay (torch ``alpha``).

    Returns:
      A schedule: a function of the update count (an int or an int32 array) returning
        the step size as a float32 scalar array. Pass it to
        :func:`scale_by_learning_rate`, as :func:`optxform.asgd` does.

    Equivalent: torch ASGD's ``state['eta']``; optax has none.

    Example::

        >>> import optxform
        >>> eta = optxform.asgd_learning_rate(0.5, lambd=2.0, alpha=1.0)
        >>> [float(eta(count)) for count in (0, 1, 3)]
        [0.5, 0.25, 0.125]
    """
    check_learning_rate(learning_rate)
    check_non_negative("lambd", lambd)
    check_non_negative("alpha", alpha)

    def schedule(count):
        lr = as_f32(learning_rate(count) if callable(learning_rate) else learning_rate)
        t = as_f32(count)
        return lr / jnp.power(1.0 + as_f32(lambd) * lr * t, as_f32(alpha))

    return schedule


def asgd_averaging_weight(t0: ArrayLike = 1e6) -> Schedule:
    r"""torch ASGD's averaging weight ``mu``: ``count -> 1 / max(1, count - t0)``.

    .. math::

        \mu(c) = 1 / \max(1,\ c - t_0)

    ``count`` :math:`c` is the number of updates already made before the current one.
    While the weight is 1 (the first ``t0 + 1`` updates) the "average" is just the latest
    iterate.

    Args:
      t0: :math:`t_0 \ge 0`, the step at which averaging starts (torch ``t0``).

    Returns:
      A schedule: a function of the update count returning the weight as a float32
        scalar array (:func:`asgd_averaging` uses the same weights).

    Equivalent: torch ASGD's ``state['mu']``; optax has none.

    Example::

        >>> import optxform
        >>> mu = optxform.asgd_averaging_weight(t0=2)
        >>> [float(mu(count)) for count in (0, 3, 4)]
        [1.0, 1.0, 0.5]
    """
    check_non_negative("t0", t0)
    return lambda count: _averaging_weight(count, t0)


def _averaging_weight(count, t0) -> jax.Array:
    return 1.0 / jnp.maximum(1.0, as_f32(count) - as_f32(t0))


class AsgdAveragingState(NamedTuple):
    """The state of :func:`asgd_averaging`; read the average with :func:`asgd_average`.

    Attributes:
      count: int32 scalar, the number of updates made so far.
      ax: the running average of the iterates (torch's ``ax``), a tree like the params, in
        the param dtype (a complex param's as its real view, with a trailing axis of 2);
        zeros before the first update, as in torch.
    """

    count: jax.Array
    ax: Any


def _asgd_averaging_step(st: Step) -> tuple[dict, dict]:
    return {"mu": _averaging_weight(st.count, st.h["t0"])}, {}


def _asgd_averaging_leaf(x: Leaf) -> tuple[jax.Array, dict]:
    ax, mu = x.buffers["ax"], x.s["mu"]
    new_param = x.p + x.g
    # torch: ax.add_(param.sub(ax).mul_(mu)), each op rounded on its own.
    averaged = jnp.where(mu == 1.0, new_param, ax + otu.unfused((new_param - ax) * mu))
    return x.g, {"ax": averaged}


ASGD_AVERAGING = Rule(
    name="asgd_averaging", kind="elementwise", state=AsgdAveragingState,
    hyperparameters=(Hyperparameter("t0", check_non_negative),), buffers=(Buffer("ax"),),
    reads_params=True, per_step=_asgd_averaging_step, leaf=_asgd_averaging_leaf)


def asgd_averaging(t0: ArrayLike = 1e6) -> GradientTransformation:
    r"""Track torch ASGD's running average of the iterates; updates pass through unchanged.

    Place it last in a chain, after the learning rate: it needs the final updates and the
    params to know the new iterate :math:`\theta_t = \theta_{t-1} + u_t`. Then

    .. math::

        \bar\theta_t = \bar\theta_{t-1} + \mu_t\, (\theta_t - \bar\theta_{t-1}),\qquad
        \mu_t = 1 / \max(1, t - 1 - t_0),

    and :math:`\bar\theta_t = \theta_t` exactly while :math:`\mu_t = 1` (torch copies the
    param then). :math:`\bar\theta_0 = 0` as in torch. Read it with :func:`asgd_average`.

    Args:
      t0: the number of steps before averaging starts (``>= 0``).

    The new iterate and the average are computed in float32 (or the param's dtype where
    wider) and ``ax`` is stored in the param dtype. Complex params follow torch: real and
    imaginary parts are averaged as separate elements, and ``ax`` keeps the real view.

    Returns:
      A :class:`GradientTransformation` whose state is an :class:`AsgdAveragingState`
        (``ax`` in the param dtype, ``count`` int32); its ``update`` needs ``params`` and
        returns the updates unchanged.

    Equivalent: the averaging half of ``torch.optim.ASGD``; optax has none.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.chain(optxform.scale_by_learning_rate(1.0),
        ...                     optxform.asgd_averaging(t0=0))
        >>> params = {"w": jnp.zeros(1)}
        >>> state = tx.init(params)
        >>> for g in (-2.0, -4.0, -6.0):  # the iterates 2, 6, 12
        ...     updates, state = tx.update({"w": jnp.array([g])}, state, params)
        ...     params = optxform.apply_updates(params, updates)
        >>> optxform.asgd_average(state)["w"]  # 6 + (12 - 6) / 2
        Array([9.], dtype=float32)
    """
    return lift(ASGD_AVERAGING, t0=t0)


def _find_averaging_state(state) -> AsgdAveragingState | None:
    if isinstance(state, AsgdAveragingState):
        return state
    if isinstance(state, dict):
        children = state.values()
    elif isinstance(state, (tuple, list)):
        children = state
    else:
        return None
    for child in children:
        found = _find_averaging_state(child)
        if found is not None:
            return found
    return None


def asgd_average(state: OptState) -> Any:
    """The averaged params (torch ASGD's ``ax``) held in an ``asgd`` state.

    Searches ``state`` (an :func:`optxform.asgd` state, or any nesting of tuples, lists,
    dicts and NamedTuples containing an :class:`AsgdAveragingState`) and returns its
    ``ax`` tree.

    Args:
      state: an optimizer state holding an :class:`AsgdAveragingState` (the first one
        found, depth first, is used).

    Returns:
      The averaged params: a tree like the params, in the param dtype. A complex param's
        average is its real view (a trailing axis of 2: real and imaginary parts, torch's
        ``view_as_real(state['ax'])``).

    Raises:
      ValueError: if ``state`` holds no :class:`AsgdAveragingState`.

    Equivalent: ``optimizer.state[p]['ax']`` of a ``torch.optim.ASGD``.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.asgd(0.5, lambd=0.0, t0=0)
        >>> params = {"w": jnp.zeros(1)}
        >>> state = tx.init(params)
        >>> for _ in range(3):  # the iterates -0.5, -1, -1.5
        ...     updates, state = tx.update({"w": jnp.ones(1)}, state, params)
        ...     params = optxform.apply_updates(params, updates)
        >>> optxform.asgd_average(state)["w"]  # -1 + (-1.5 + 1) / 2
        Array([-1.25], dtype=float32)
    """
    found = _find_averaging_state(state)
    if found is None:
        raise ValueError("asgd_average: the state holds no AsgdAveragingState "
                         "(was it made by optxform.asgd or asgd_averaging?)")
    return found.ax
