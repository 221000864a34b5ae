"""Hyperparameters in the state: inject_hyperparams (torch's ``param_group['lr']``)."""

from __future__ import annotations

import inspect
from typing import Any, Callable, Iterable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike

from optxform.core import GradientTransformation, call_update
from optxform.core.counters import increment, zero_count

__all__ = ["InjectHyperparamsState", "inject_hyperparams"]

# Callable arguments that are never schedules (masks, labels, closures, line searches).
_STATIC_CALLABLE_NAMES = frozenset({"mask", "param_labels", "value_fn", "line_search_fn",
                                    "scale_fn", "every_k_schedule"})


def _is_float_array(value: Any) -> bool:
    if isinstance(value, (jax.Array, np.ndarray, np.generic)):
        return jnp.issubdtype(jnp.result_type(value), jnp.floating)
    return False


def _classify(name: str, value: Any, default: Any, static_args: frozenset) -> str:
    """``'static'``, ``'numeric'`` or ``'schedule'`` for one bound argument."""
    if name in static_args or value is None or isinstance(value, (bool, np.bool_, str)):
        return "static"
    if isinstance(value, GradientTransformation) or _is_namedtuple_tx(value):
        return "static"
    if callable(value):
        return "static" if name in _STATIC_CALLABLE_NAMES else "schedule"
    if isinstance(value, float) or _is_float_array(value):
        return "numeric"
    if isinstance(value, (int, np.integer)):
        # An int is a hyperparameter when the argument is a float one (learning_rate=1);
        # int-valued options (sync_period, history_size, max_iter) stay static.
        takes_float = default is inspect.Parameter.empty or (
            isinstance(default, float) and not isinstance(default, bool))
        return "numeric" if takes_float else "static"
    return "static"


def _is_namedtuple_tx(value: Any) -> bool:
    return (isinstance(value, tuple) and getattr(value, "_fields", None) == ("init", "update"))


def _hyperparam_dtype(value: Any, dtype: Any) -> Any:
    if dtype is not None:
        return jnp.dtype(dtype)
    own = jnp.result_type(value) if _is_float_array(value) else jnp.float32
    # At least float32 (never a low-precision param dtype), wider if given wider.
    return jnp.promote_types(own, jnp.float32)


class InjectHyperparamsState(NamedTuple):
    """The state of a transform made by :func:`inject_hyperparams`.

    Attributes:
      count: int32 scalar, the number of updates made (the step schedules are evaluated
        at).
      hyperparams: a dict from each hyperparameter's name to a scalar array (float32 or
        the given array's wider dtype, or ``hyperparam_dtype``): the values the next
        update uses. Read and change them with :func:`tree_get` and :func:`tree_set`.
      inner_state: the state of the alias built from those values.
    """

    count: jax.Array
    hyperparams: dict
    inner_state: Any


def inject_hyperparams(inner_factory: Callable[..., GradientTransformation],
                       static_args: str | Iterable[str] = (),
                       hyperparam_dtype: DTypeLike | None = None
                       ) -> Callable[..., GradientTransformation]:
    r"""Wrap an alias factory so its numeric hyperparameters live in the state.

    ``inject_hyperparams(optxform.adam)(learning_rate=1e-3, b1=0.9)`` behaves like
    ``optxform.adam(1e-3, b1=0.9)``, but every numeric argument -- those given *and* the
    factory's float defaults (``b2``, ``eps``, ``weight_decay``, ...) -- is kept in
    ``state.hyperparams`` as a float32 scalar array, and each ``update`` rebuilds the alias
    from the values found there. So, between steps:

    * read them: ``optxform.tree_get(state, "learning_rate")``;
    * change them: ``state = optxform.tree_set(state, learning_rate=1e-4)``, like torch's
      ``param_group['lr'] = 1e-4``; same dtype and shape, so a jitted step never retraces,
      and the trajectory is exactly that of the alias rebuilt with the new value;
    * batch them: ``jax.vmap`` over a state whose ``learning_rate`` has a batch axis trains
      several learning rates in one compiled step;
    * schedule them: a callable argument is a schedule ``step -> value``; the state then
      holds the value the *next* update will use (like torch's param group after
      ``scheduler.step()``), evaluated at ``count``. A value set with ``tree_set`` on a
      scheduled hyperparameter is used for the next update, after which the schedule
      resumes (as a manual ``param_group`` edit lasts until the next ``scheduler.step()``).

    Which arguments are hyperparameters: those the factory declares (every optxform
    alias does, with :func:`~optxform.declares_hyperparameters`; ``factory.hyperparameters``
    lists them), except names in ``static_args``. A factory that declares nothing (one of
    your own, an optax alias) has its arguments recognised by type instead.
    What stays static then (fixed at construction, part of the compiled program): booleans,
    strings, ``None``, tuples (``etas``, ``eps=(None, 1e-3)``), transforms (``inner``),
    callables that are not schedules (``mask``, ``param_labels``, ``value_fn``, ...),
    integer-valued options whose default is an integer (``sync_period``, ``history_size``),
    and any name listed in ``static_args``. Aliases must build the general path when a
    hyperparameter is an array (e.g. a momentum buffer even for ``momentum=0.``).

    Args:
      inner_factory: a function returning a GradientTransformation (any alias or block).
      static_args: names to keep static even if numeric or callable.
      hyperparam_dtype: the dtype of the stored values (default: float32, or wider if a
        wider array is given).

    Returns:
      A function with ``inner_factory``'s signature returning a
        :class:`GradientTransformation` whose state is an :class:`InjectHyperparamsState`
        (``count``, ``hyperparams``, ``inner_state``); its structure is the same whether a
        hyperparameter is a number or a schedule. Invalid values raise ``ValueError`` at
        construction (the alias validates them).

    Equivalents: ``optax.inject_hyperparams`` (which stores the value *used* by the last
    update for schedules, and also injects integer options); torch's ``param_groups``.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.inject_hyperparams(optxform.sgd)(learning_rate=0.1)
        >>> params = {"w": jnp.ones(2)}
        >>> state = optxform.tree_set(tx.init(params), learning_rate=0.5)
        >>> updates, state = tx.update({"w": jnp.ones(2)}, state, params)
        >>> updates["w"]
        Array([-0.5, -0.5], dtype=float32)
        >>> optxform.tree_get(state, "learning_rate")
        Array(0.5, dtype=float32)
    """
    static_names = frozenset([static_args] if isinstance(static_args, str) else static_args)
    signature = inspect.signature(inner_factory)
    declared = getattr(inner_factory, "hyperparameters", None)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD
                    for p in signature.parameters.values())
    unknown = sorted(static_names - set(signature.parameters))
    if unknown and not takes_any:
        raise ValueError(f"inject_hyperparams: static_args names {unknown[0]!r}, which "
                         f"{getattr(inner_factory, '__name__', 'the factory')} does not take "
                         f"(its arguments: {', '.join(signature.parameters)})")

    def wrapped(*args, **kwargs) -> GradientTransformation:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        defaults = {n: p.default for n, p in signature.parameters.items()}
        var_keyword = next((n for n, p in signature.parameters.items()
                            if p.kind is inspect.Parameter.VAR_KEYWORD), None)
        flat = dict(arguments)
        if var_keyword is not None:
            flat.update(flat.pop(var_keyword, {}))

        numeric, schedules = {}, {}
        for name, value in flat.items():
            if declared is not None:  # the factory says which arguments are numeric
                kind = ("static" if name not in declared or name in static_names
                        else "schedule" if callable(value) else "numeric")
            else:
                kind = _classify(name, value, defaults.get(name, inspect.Parameter.empty),
                                 static_names)
            if kind == "numeric":
                numeric[name] = value
            elif kind == "schedule":
                schedules[name] = value
        dtypes = {name: _hyperparam_dtype(value, hyperparam_dtype) if name in numeric
                  else jnp.dtype(hyperparam_dtype or jnp.float32)
                  for name in flat if name in numeric or name in schedules}

        def build(hyperparams: dict) -> GradientTransformation:
            call_args = dict(arguments)
            extra = {}
            for name, value in hyperparams.items():
                if name in call_args:
                    call_args[name] = value
                else:
                    extra[name] = value
            if var_keyword is not None:
                call_args[var_keyword] = {**call_args.get(var_keyword, {}), **extra}
            return inner_factory(*inspect.BoundArguments(signature, call_args).args,
                                 **inspect.BoundArguments(signature, call_args).kwargs)

        def initial_values(count) -> dict:
            return {name: jnp.asarray(schedules[name](count) if name in schedules
                                      else numeric[name], dtypes[name])
                    for name in dtypes}

        # Build once now so the alias validates the values at construction.
        example = build(initial_values(zero_count()))

        def init(params):
            count = zero_count()
            hyperparams = initial_values(count)
            return InjectHyperparamsState(count=count, hyperparams=hyperparams,
                                          inner_state=build(hyperparams).init(params))

        def update(updates, state, params=None, **extra):
            hyperparams = {name: jnp.asarray(state.hyperparams[name], dtypes[name])
                           for name in dtypes}
            updates, inner_state = call_update(build(hyperparams), updates, state.inner_state,
                                               params, extra)
            count = increment(state.count)
            for name, fn in schedules.items():
                hyperparams[name] = jnp.asarray(fn(count), dtypes[name])
            return updates, InjectHyperparamsState(count=count, hyperparams=hyperparams,
                                                   inner_state=inner_state)

        update.parts = (example,)
        return GradientTransformation(init, update)

    wrapped.__name__ = f"inject_hyperparams({getattr(inner_factory, '__name__', 'factory')})"
    wrapped.__doc__ = inner_factory.__doc__
    wrapped.__signature__ = signature
    return wrapped
