"""The protocol: a gradient transformation is a pair of pure functions.

An optimizer in optxform is a ``GradientTransformation``: a NamedTuple holding

* ``init(params) -> state``: builds the state (a pytree of arrays) for a params tree;
* ``update(updates, state, params=None, **extra) -> (updates, state)``: turns incoming
  updates (usually gradients) into outgoing updates, and advances the state.

Transforms compose with :func:`chain`; the final updates are added to the params with
:func:`apply_updates`::

    tx = optxform.chain(optxform.clip_by_global_norm(1.0),
                        optxform.scale_by_adam(),
                        optxform.scale_by_learning_rate(1e-3))
    state = tx.init(params)
    updates, state = tx.update(grads, state, params)
    params = optxform.apply_updates(params, updates)

The NamedTuple is structurally identical to ``optax.GradientTransformation``, so each
library's transforms are accepted by the other's ``chain`` and by flax's ``TrainState``.

``update`` may receive extra keyword arguments (``value=``, ``grad=``, ``value_fn=`` for
line searches, ``loss=`` for plateau schedules). Every optxform transform accepts and
ignores those it does not use; :func:`chain` forwards them only to members whose
``update`` accepts keyword arguments, so plain optax transforms can sit in a chain too.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, NamedTuple, TypeVar, cast

import jax

from optxform.core.trees import check_same_structure
from optxform.core.validation import check_hyperparameter

Params = Any
Updates = Any
OptState = Any
Schedule = Callable[[jax.Array], jax.Array]
ScalarOrSchedule = float | jax.Array | Schedule
_Factory = TypeVar("_Factory", bound=Callable[..., Any])


class GradientTransformation(NamedTuple):
    """A pair of pure functions ``(init, update)``; see the module docstring."""

    init: Callable[[Params], OptState]
    update: Callable[..., tuple[Updates, OptState]]


class EmptyState(NamedTuple):
    """The state of a transform that keeps nothing between steps."""


def identity() -> GradientTransformation:
    """Pass updates through unchanged (optax.identity)."""

    def init(params):
        del params
        return EmptyState()

    def update(updates, state, params=None, **extra):
        del params, extra
        return updates, state

    update.parts = ()
    return GradientTransformation(init, update)


@functools.lru_cache(maxsize=1024)
def _accepts_extra_args(update_fn: Callable) -> bool:
    try:
        parameters = inspect.signature(update_fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def call_update(tx: GradientTransformation, updates, state, params, extra: dict):
    """Call ``tx.update``, passing ``extra`` keyword arguments only if it accepts them."""
    if extra and _accepts_extra_args(tx.update):
        return tx.update(updates, state, params, **extra)
    return tx.update(updates, state, params)


def _check_updates_match_params(updates, params) -> None:
    if params is not None:
        check_same_structure(params, updates, "params", "updates", none_passes=True)


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Apply ``transforms`` one after another; the state is the tuple of their states.

    Equivalent to ``optax.chain``. Extra keyword arguments of ``update`` are forwarded to
    every member that accepts them.
    """

    def init(params):
        return tuple(tx.init(params) for tx in transforms)

    def update(updates, state, params=None, **extra):
        if len(state) != len(transforms):
            raise ValueError(
                f"chain: the state has {len(state)} entries but the chain has "
                f"{len(transforms)} transforms; was it initialised by another optimizer?"
            )
        _check_updates_match_params(updates, params)
        new_state = []
        for tx, tx_state in zip(transforms, state):
            updates, tx_state = call_update(tx, updates, tx_state, params, extra)
            new_state.append(tx_state)
        return updates, tuple(new_state)

    update.parts = tuple(transforms)  # the members, for tools that read declarations
    return GradientTransformation(init, update)


def named_chain(*named_transforms: tuple[str, GradientTransformation]) -> GradientTransformation:
    """Like :func:`chain`, with the state a dict keyed by the given names (optax.named_chain)."""
    names = [name for name, _ in named_transforms]
    if len(set(names)) != len(names):
        raise ValueError(f"named_chain: names must be unique, got {names}")

    def init(params):
        return {name: tx.init(params) for name, tx in named_transforms}

    def update(updates, state, params=None, **extra):
        missing = [name for name in names if name not in state]
        if missing:
            raise ValueError(f"named_chain: the state has no entry {missing[0]!r}")
        _check_updates_match_params(updates, params)
        new_state = {}
        for name, tx in named_transforms:
            updates, new_state[name] = call_update(tx, updates, state[name], params, extra)
        return updates, new_state

    update.parts = tuple(tx for _, tx in named_transforms)
    return GradientTransformation(init, update)


def declares_hyperparameters(*names: str) -> Callable[[_Factory], _Factory]:
    """Mark a transform factory's numeric arguments: those :func:`inject_hyperparams` keeps
    in the state (as float32 or wider) and may schedule. Everything else it takes is static.

    Usage: ``@declares_hyperparameters("learning_rate", "b1", "b2", "eps", "weight_decay")``
    above an alias. The names are stored as ``factory.hyperparameters``, and each call
    checks them first: a real, finite scalar (or a schedule for ``learning_rate``), else a
    ``ValueError`` naming the argument and the value.
    """

    def mark(factory: _Factory) -> _Factory:
        signature = inspect.signature(factory)
        missing = [name for name in names if name not in signature.parameters]
        if missing:
            raise ValueError(f"{factory.__name__} declares hyperparameter {missing[0]!r} "
                             "but takes no such argument")

        @functools.wraps(factory)
        def checked(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            for name in names:
                check_hyperparameter(name, bound.arguments[name],
                                     schedule=name == "learning_rate")
            return factory(*args, **kwargs)

        checked.hyperparameters = tuple(names)
        return cast(_Factory, checked)

    return mark
