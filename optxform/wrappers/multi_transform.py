"""Param groups: multi_transform (one transform per label) and freeze.

torch's ``param_groups`` give each group of parameters its own options::

    torch.optim.AdamW([
        {"params": backbone_weights, "lr": 1e-4, "weight_decay": 1e-2},
        {"params": backbone_biases_and_norms, "lr": 1e-4, "weight_decay": 0.0},
        {"params": head_weights, "lr": 1e-3, "weight_decay": 1e-2},
        {"params": head_biases_and_norms, "lr": 1e-3, "weight_decay": 0.0},
    ])

Here a label per param chooses a whole transform, and ``mask=`` chooses where weight decay
applies (see docs/state.md)::

    decay = lambda p: jax.tree.map(lambda x: x.ndim >= 2, p)   # no decay on biases/norms
    tx = optxform.multi_transform(
        {"backbone": optxform.adamw(1e-4, weight_decay=1e-2, mask=decay),
         "head": optxform.adamw(1e-3, weight_decay=1e-2, mask=decay),
         "frozen": optxform.freeze()},
        param_labels={"backbone": "backbone", "head": "head", "embed": "frozen"})
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, Mapping, NamedTuple

import jax

from optxform import tree as otu
from optxform.core import EmptyState, GradientTransformation, call_update
from optxform.core.trees import path_to_str
from optxform.tree.masks import resolve_prefix
from optxform.wrappers.masked import (
    _is_none, mask_tree, masked, unmask_tree)

__all__ = ["MultiTransformState", "freeze", "multi_transform"]


def freeze(mask: Any | Callable[[Any], Any] | None = None) -> GradientTransformation:
    """Zero the updates, so the params do not move (torch: ``requires_grad_(False)``).

    Without ``mask`` every update is zeroed (``optax.set_to_zero``): use it as the
    transform of a frozen group in :func:`multi_transform`. With ``mask`` (a bool pytree or
    a function of params, as in :func:`masked`) only the masked params are frozen and the
    other updates pass through (``optax.transforms.freeze``). Unlike torch's
    ``requires_grad_(False)``, gradients are still computed; they are discarded.

    Args:
      mask: which params to freeze: a pytree of bools matching the params (or a prefix of
        them), or a function of the params returning one; ``None``: all of them.

    Returns:
      A :class:`GradientTransformation` whose state is an :class:`EmptyState` (a
        :class:`MaskedState` holding one with ``mask``).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.freeze(mask={"w": False, "b": True})
        >>> params = {"w": jnp.ones(2), "b": jnp.ones(1)}
        >>> updates, _ = tx.update({"w": jnp.ones(2), "b": jnp.ones(1)}, tx.init(params), params)
        >>> updates
        {'b': Array([0.], dtype=float32), 'w': Array([1., 1.], dtype=float32)}
    """

    def init(params):
        del params
        return EmptyState()

    def update(updates, state, params=None, **extra):
        del params, extra
        return otu.zeros_like(updates), state

    zero = GradientTransformation(init, update)
    return zero if mask is None else masked(zero, mask)


class MultiTransformState(NamedTuple):
    """The state of :func:`multi_transform`.

    Attributes:
      inner_states: a dict from each label to the state of that label's transform, built
        for its own params only (the others are :class:`MaskedNode` there).
    """

    inner_states: dict


def multi_transform(transforms: Mapping[Hashable, GradientTransformation],
                    param_labels: Any | Callable[[Any], Any], *,
                    mask_compatible_extra_args: bool = False) -> GradientTransformation:
    """Param groups: each param is updated by the transform of its label.

    ``param_labels`` is a pytree of labels with the params' structure or a prefix of it
    (one label for a whole sub-dict), or a function ``params -> such a tree``. Labels are
    strings (or other mutually comparable hashable leaves), each a key of ``transforms``;
    a param whose label has no transform raises ``ValueError`` naming the label and the
    param. Each transform runs as :func:`masked` on its group, so its state holds entries
    for its own params only; a label with no params keeps a state for an empty tree.
    Use :func:`freeze` as the transform of a group that must not move.

    Args:
      transforms: a dict from each label to the transform of its params.
      param_labels: a pytree of labels with the params' structure (or a prefix of it), or
        a function of the params returning one.
      mask_compatible_extra_args: also restrict extra keyword arguments of ``update`` that
        are trees with the params' structure to each group's params.

    Returns:
      A :class:`GradientTransformation` whose state is a :class:`MultiTransformState`
        (one inner state per label).

    torch equivalent: one ``param_group`` per label (per-group ``lr``, ``weight_decay``,
    ...), or params left out of the optimizer for a frozen group. Equivalent:
    ``optax.multi_transform`` (``optax.partition``).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.multi_transform(
        ...     {"fast": optxform.sgd(0.1), "frozen": optxform.freeze()},
        ...     param_labels={"w": "fast", "b": "frozen"})
        >>> params = {"w": jnp.ones(2), "b": jnp.ones(1)}
        >>> updates, state = tx.update({"w": jnp.ones(2), "b": jnp.ones(1)},
        ...                            tx.init(params), params)
        >>> updates
        {'b': Array([0.], dtype=float32), 'w': Array([-0.1, -0.1], dtype=float32)}
        >>> sorted(state.inner_states)
        ['fast', 'frozen']
    """
    if not isinstance(transforms, Mapping):
        raise ValueError(f"multi_transform: transforms must be a dict label -> transform, "
                         f"got {type(transforms).__name__}")
    labels_known = list(transforms)

    def full_labels(tree):
        full = resolve_prefix(param_labels, tree, "multi_transform: param_labels")
        for path, label in jax.tree_util.tree_flatten_with_path(full, is_leaf=_is_none)[0]:
            if label is not None and label not in transforms:
                raise ValueError(
                    f"multi_transform: param {path_to_str(path)!r} has label {label!r}, "
                    f"which has no transform (labels with transforms: {labels_known})")
        return full

    def group_mask(labels, label):
        return jax.tree.map(lambda lab: None if lab is None else lab == label, labels,
                            is_leaf=_is_none)

    def init(params):
        labels = full_labels(params)
        return MultiTransformState(inner_states={
            label: tx.init(mask_tree(params, group_mask(labels, label)))
            for label, tx in transforms.items()})

    def update(updates, state, params=None, **extra):
        labels = full_labels(params if params is not None else updates)
        missing = [label for label in transforms if label not in state.inner_states]
        if missing:
            raise ValueError(f"multi_transform: the state has no entry for label "
                             f"{missing[0]!r}; was it initialised by another optimizer?")
        ref_def = jax.tree.structure(updates, is_leaf=_is_none)
        new_updates, new_states = updates, {}
        for label, tx in transforms.items():
            mask = group_mask(labels, label)
            group_extra = extra
            if mask_compatible_extra_args:
                group_extra = {
                    name: mask_tree(value, mask)
                    if jax.tree.structure(value, is_leaf=_is_none) == ref_def else value
                    for name, value in extra.items()}
            group_updates, new_states[label] = call_update(
                tx, mask_tree(updates, mask), state.inner_states[label],
                None if params is None else mask_tree(params, mask), group_extra)
            new_updates = unmask_tree(group_updates, new_updates)
        return new_updates, MultiTransformState(inner_states=new_states)

    update.parts = tuple(transforms.values())
    return GradientTransformation(init, update)
