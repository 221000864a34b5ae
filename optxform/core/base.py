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
    """A pair of pure functions ``(init, update)``: every optimizer and transform is one.

    The NamedTuple is structurally identical to ``optax.GradientTransformation``, so
    optxform and optax transforms compose with each other's ``chain``. ``update`` accepts
    and ignores extra keyword arguments it does not use (``loss=``, ``value=``, ...).

    Attributes:
      init: ``init(params) -> state``, the state (a pytree of arrays) for a params tree.
      update: ``update(updates, state, params=None, **extra) -> (updates, state)``, the
        outgoing updates for incoming ones (usually gradients) and the advanced state.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> def scale_by_two() -> optxform.GradientTransformation:
        ...     def init(params):
        ...         return optxform.EmptyState()
        ...     def update(updates, state, params=None, **extra):
        ...         return {k: 2 * u for k, u in updates.items()}, state
        ...     return optxform.GradientTransformation(init, update)
        >>> tx = optxform.chain(scale_by_two(), optxform.scale_by_learning_rate(0.1))
        >>> params = {"w": jnp.ones(2)}
        >>> updates, state = tx.update({"w": jnp.array([1.0, -1.0])}, tx.init(params), params)
        >>> updates["w"]
        Array([-0.2,  0.2], dtype=float32)
    """

    init: Callable[[Params], OptState]
    update: Callable[..., tuple[Updates, OptState]]


class EmptyState(NamedTuple):
    """The state of a transform that keeps nothing between steps (optax.EmptyState).

    An empty NamedTuple: a pytree with no leaves, so it costs nothing in checkpoints and
    under ``jit``.

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> state = optxform.identity().init({"w": jnp.ones(2)})
        >>> state, jax.tree.leaves(state)
        (EmptyState(), [])
    """


def identity() -> GradientTransformation:
    """Pass updates through unchanged (optax.identity).

    .. math:: u_t = g_t

    Returns:
      A gradient transformation whose ``update`` returns the incoming updates as they are;
        its state is an :class:`EmptyState`.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.identity()
        >>> tx.update({"w": jnp.array([3.0, 4.0])}, tx.init({"w": jnp.zeros(2)}))
        ({'w': Array([3., 4.], dtype=float32)}, EmptyState())
    """

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

    .. math:: u = f_n(\cdots f_2(f_1(g)))

    Extra keyword arguments of ``update`` are forwarded to every member that accepts them.

    Args:
      *transforms: the members, applied in the order given; optax transforms are accepted.

    Returns:
      A gradient transformation whose state is a tuple holding each member's state, in
        order (``state[i]`` belongs to ``transforms[i]``).

    Equivalent: ``optax.chain``; in torch the composition is written inside each
    optimizer's ``step``.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.chain(optxform.clip_by_global_norm(1.0),
        ...                     optxform.scale_by_learning_rate(0.5))
        >>> params = {"w": jnp.zeros(2)}
        >>> updates, state = tx.update({"w": jnp.array([3.0, 4.0])}, tx.init(params), params)
        >>> updates["w"]  # clipped to norm 1, then times -0.5
        Array([-0.3, -0.4], dtype=float32)
        >>> state
        (EmptyState(), ScaleByLearningRateState(count=Array(1, dtype=int32)))
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
    """Like :func:`chain`, with the state a dict keyed by the given names (optax.named_chain).

    The named state reads better in :func:`state_dict` keys (``"lr.count"`` rather than
    ``"1.count"``) and lets :func:`tree_get` pick a member by name.

    Args:
      *named_transforms: ``(name, transform)`` pairs, applied in the order given; names
        must be unique.

    Returns:
      A gradient transformation whose state is a dict ``{name: member state}``.

    Equivalent: ``optax.named_chain``.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.named_chain(("clip", optxform.clip_by_global_norm(1.0)),
        ...                           ("lr", optxform.scale_by_learning_rate(0.5)))
        >>> tx.init({"w": jnp.zeros(2)})
        {'clip': EmptyState(), 'lr': ScaleByLearningRateState(count=Array(0, dtype=int32))}
    """
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

    Args:
      *names: the names of the factory's numeric arguments; each must be a parameter of
        the decorated factory (else ``ValueError`` at decoration).

    Returns:
      A decorator: it returns the factory wrapped with the checks, same signature and
        docstring, with the attribute ``hyperparameters`` (the tuple of ``names``).

    Equivalent: none in optax (``optax.inject_hyperparams`` treats every numeric argument
    as a hyperparameter); torch keeps the hyperparameters in ``param_groups``.

    Example::

        >>> import optxform
        >>> @optxform.declares_hyperparameters("learning_rate")
        ... def plain_sgd(learning_rate: float = 0.1) -> optxform.GradientTransformation:
        ...     return optxform.scale_by_learning_rate(learning_rate)
        >>> plain_sgd.hyperparameters
        ('learning_rate',)
        >>> plain_sgd(float("nan"))
        Traceback (most recent call last):
        ...
        ValueError: Invalid learning_rate: nan...
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
