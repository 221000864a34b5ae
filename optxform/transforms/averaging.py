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

    ``count`` is the number of updates already made, so the first update uses ``lr``
    itself (torch's ``eta`` starts at ``lr`` and is recomputed at the end of each step).
    With ``learning_rate`` a schedule, ``lr`` is its value at the same count.
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

    ``count`` is the number of updates already made before the current one. While the
    weight is 1 (the first ``t0 + 1`` updates) the "average" is just the latest iterate.
    """
    check_non_negative("t0", t0)
    return lambda count: _averaging_weight(count, t0)


def _averaging_weight(count, t0) -> jax.Array:
    return 1.0 / jnp.maximum(1.0, as_f32(count) - as_f32(t0))


class AsgdAveragingState(NamedTuple):
    count: jax.Array  # int32: updates made so far
    ax: Any           # the averaged params (torch's ``ax``), in the param dtype


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

    State: :class:`AsgdAveragingState`; ``ax`` in the param dtype, ``count`` int32.
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
    ``ax`` tree. A complex param's average is its real view (a trailing axis of 2: real
    and imaginary parts, torch's ``view_as_real(state['ax'])``). Raises ``ValueError`` if
    there is none.
    """
    found = _find_averaging_state(state)
    if found is None:
        raise ValueError("asgd_average: the state holds no AsgdAveragingState "
                         "(was it made by optxform.asgd or asgd_averaging?)")
    return found.ax
