"""A parameter router: params sent to optimizers by path pattern, rank and shape."""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable, Hashable, Mapping, Sequence

import jax

from optxform.core import GradientTransformation
from optxform.core.trees import path_to_str
from optxform.wrappers.multi_transform import multi_transform

__all__ = ["ParamGroup", "param_labels", "route"]


@dataclasses.dataclass(frozen=True)
class ParamGroup:
    """Which params belong to a group: every condition given must hold.

    Attributes:
      label: the group's name (a key of the transforms given to :func:`route`).
      path: a regular expression searched (``re.search``) in the param's path, its keys
        joined by ``"/"`` (``"layers/0/attn/kernel"``; an equinox field is its attribute
        name, a flax nnx param its attribute path).
      ndim: the param's rank, or a tuple of allowed ranks.
      min_ndim: the least rank (``2``: matrices and up).
      shape: a predicate of the param's shape.
      exclude: a regular expression that, found in the path, keeps the param out.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> group = optxform.ParamGroup("muon", min_ndim=2, exclude="embed|head")
        >>> group.matches("layer/kernel", jnp.ones((4, 4))), group.matches("embed", jnp.ones((9, 4)))
        (True, False)
    """

    label: Hashable
    path: str | None = None
    ndim: int | tuple[int, ...] | None = None
    min_ndim: int | None = None
    shape: Callable[[tuple[int, ...]], bool] | None = None
    exclude: str | None = None

    def __post_init__(self) -> None:
        for name in ("path", "exclude"):
            pattern = getattr(self, name)
            if pattern is not None:
                try:
                    re.compile(pattern)
                except re.error as e:
                    raise ValueError(f"Invalid {name}: {pattern!r} is not a regular "
                                     f"expression ({e})") from None

    def matches(self, path: str, param: Any) -> bool:
        """Whether the param at ``path`` belongs to this group.

        Args:
          path: the param's path, keys joined by ``"/"``.
          param: the param (anything with ``ndim`` and ``shape``).

        Returns:
          True when every condition given holds.
        """
        shape = tuple(getattr(param, "shape", ()))
        ndims = (self.ndim,) if isinstance(self.ndim, int) else self.ndim
        return ((self.path is None or re.search(self.path, path) is not None)
                and (self.exclude is None or re.search(self.exclude, path) is None)
                and (ndims is None or len(shape) in ndims)
                and (self.min_ndim is None or len(shape) >= self.min_ndim)
                and (self.shape is None or bool(self.shape(shape))))


def param_labels(groups: Sequence[ParamGroup], default: Hashable
                 ) -> Callable[[Any], Any]:
    r"""A function ``params -> labels``: each param's label is its first matching group's.

    Args:
      groups: the groups, tried in order.
      default: the label of a param no group matches.

    Returns:
      A function of a params tree giving a tree of labels with its structure, for
      :func:`multi_transform` (it works on flax linen dicts, flax nnx states and equinox
      modules alike, through their pytree paths).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> labels = optxform.param_labels([optxform.ParamGroup("muon", min_ndim=2)], "adamw")
        >>> labels({"w": jnp.ones((2, 2)), "b": jnp.ones(2)})
        {'b': 'adamw', 'w': 'muon'}
    """
    groups = tuple(groups)
    for g in groups:
        if not isinstance(g, ParamGroup):
            raise ValueError(f"Invalid groups: {g!r} is not a ParamGroup")

    def labels(params: Any) -> Any:
        def label_of(path, param):
            if param is None:
                return None
            name = path_to_str(path)
            return next((g.label for g in groups if g.matches(name, param)), default)

        return jax.tree_util.tree_map_with_path(label_of, params,
                                                is_leaf=lambda x: x is None)

    return labels


def route(transforms: Mapping[Any, GradientTransformation],
          groups: Sequence[ParamGroup], default: Hashable) -> GradientTransformation:
    r"""Send each param to the transform of its group: :func:`multi_transform` by rule.

    Args:
      transforms: a dict from each label to its transform (one per group label and the
        default).
      groups: the groups, tried in order (:class:`ParamGroup`: by path pattern, rank,
        shape).
      default: the label of params no group matches.

    Returns:
      ``multi_transform(transforms, param_labels(groups, default))``: its state holds one
      inner state per label, each over its own params only.

    torch equivalent: building param groups by hand (``[p for n, p in
    model.named_parameters() if p.ndim == 2]``) and one optimizer per group.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.route({"muon": optxform.muon(0.02), "adamw": optxform.adamw(1e-3)},
        ...                     [optxform.ParamGroup("muon", min_ndim=2)], default="adamw")
        >>> params = {"w": jnp.ones((3, 3)), "b": jnp.ones(3)}
        >>> state = tx.init(params)
        >>> sorted(state.inner_states)
        ['adamw', 'muon']
    """
    labels = param_labels(groups, default)
    missing = [g.label for g in groups if g.label not in transforms]
    if default not in transforms:
        missing.append(default)
    if missing:
        raise ValueError(f"route: no transform for label(s) {missing} (transforms: "
                         f"{list(transforms)})")
    return multi_transform(transforms, labels)
