"""Interop with optax: keep the extra arguments of ``update`` inside optax's combinators.

optxform transforms already are optax transforms structurally (a NamedTuple of ``init`` and
``update``). What differs is one isinstance test: optax's combinators and wrappers
(``chain``, ``named_chain``, ``partition``, ``masked``, ``MultiSteps``, ...) pass
``update``'s extra keyword arguments (``loss=``, ``value=``, ``value_fn=``, ``grad=``) only
to transforms of type ``optax.GradientTransformationExtraArgs`` and wrap every other one in
a function that drops them. :func:`to_optax` re-labels an
optxform transform with optax's own type, so optax forwards them::

    tx = optax.chain(optax.clip_by_global_norm(1.0),
                     optxform.to_optax(optxform.adam(1e-3)),
                     optxform.to_optax(optxform.reduce_on_plateau(patience=5)))
    updates, state = tx.update(grads, state, params, loss=val_loss)

Why this is not automatic: the test is ``isinstance`` against optax's class, which is not an
ABC (no ``register``), so only an object built from that class passes. optxform would have
to import optax whenever it is installed (optax is an optional package here), or choose the
type by whether optax happens to be imported already, which would make a transform's type
depend on import order. A transform that needs its extra arguments raises ``ValueError``
naming ``to_optax`` when they are dropped, so a missing wrapper never goes unnoticed.
"""

from __future__ import annotations

from typing import Any

from optxform.core.base import call_update

__all__ = ["to_optax"]


def to_optax(tx: Any) -> Any:
    """Return ``tx`` as an ``optax.GradientTransformationExtraArgs`` (needs optax installed).

    The result has the same ``init`` and an ``update`` that forwards extra keyword arguments
    to ``tx.update`` when it accepts them (every optxform transform does) and drops them
    otherwise, so it gives the same updates and states as ``tx`` itself. Use it for
    transforms that read ``update``'s extra arguments (``reduce_on_plateau``: ``loss=``;
    ``lbfgs``, ``zoom_linesearch``, ``backtracking_linesearch``: ``value=``, ``grad=``,
    ``value_fn=``; or any chain containing them) before handing them to ``optax.chain``,
    ``optax.named_chain``, ``optax.partition`` or flax's ``TrainState``. An object that
    already is optax's extra-args type is returned unchanged.

    Equivalent: ``optax.with_extra_args_support``, which instead drops the extra arguments
    of any transform not built as optax's type.

    Args:
      tx: a gradient transformation (any NamedTuple or object with callable ``init`` and
        ``update``).

    Returns:
      An ``optax.GradientTransformationExtraArgs`` with the same ``init`` and the same
        updates and states as ``tx``, whose ``update`` receives the extra keyword
        arguments that optax's combinators pass on.

    Raises:
      ImportError: optax is not installed.
      ValueError: ``tx`` is not a gradient transformation (callable ``init`` and ``update``).

    Example (with optax installed)::

        >>> import jax.numpy as jnp, optax, optxform
        >>> plateau = optxform.reduce_on_plateau(factor=0.5, patience=0)
        >>> tx = optax.chain(optax.clip_by_global_norm(1.0), optxform.to_optax(plateau))
        >>> params = {"w": jnp.zeros(2)}
        >>> state = tx.init(params)
        >>> for loss in [1.0, 2.0, 2.0]:  # loss= reaches reduce_on_plateau inside optax.chain
        ...     updates, state = tx.update({"w": jnp.array([3.0, 4.0])}, state, params, loss=loss)
        >>> updates["w"]  # clipped to norm 1, then halved after the loss stopped improving
        Array([0.3, 0.4], dtype=float32)
    """
    try:
        import optax
    except ImportError as error:
        raise ImportError("to_optax needs optax: pip install optax") from error
    if not (callable(getattr(tx, "init", None)) and callable(getattr(tx, "update", None))):
        raise ValueError("to_optax: tx must be a gradient transformation (a NamedTuple of "
                         f"init and update), got {type(tx).__name__}")
    if isinstance(tx, optax.GradientTransformationExtraArgs):
        return tx

    def update(updates, state, params=None, **extra):
        return call_update(tx, updates, state, params, extra)

    return optax.GradientTransformationExtraArgs(tx.init, update)
