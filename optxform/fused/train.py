r"""TrainState: a flax-style train state whose params stay packed between steps.

A training step's optimizer update on a tree of many small leaves costs one XLA kernel per
leaf (and compile time per leaf); on the same params packed into one buffer per dtype it
costs a handful. :class:`TrainState` keeps the params packed *between* steps and hands the
model its usual tree inside the step::

    state.params            # the tree, cut out of the packed buffers (inside jit: slices)
    state.apply_gradients(grads=grads)   # grads as a tree: packed once, updated packed

It has the attributes and methods of flax's ``flax.training.train_state.TrainState``
(``create``, ``params``, ``apply_gradients``, ``replace``, ``step``, ``opt_state``,
``tx``, ``apply_fn``, extra fields given to ``create``), so a flax training loop switches
by its import line, and an equinox model can be the params (its non-array leaves, such as
activation functions, are kept as they are). Checkpoints speak the tree:
:meth:`TrainState.state_dict` / :meth:`TrainState.load_state_dict`.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from optxform.core import GradientTransformation, OptState, apply_updates
from optxform.fused.layout import SOLO_SIZE
from optxform.fused.split import ParamSplit, split_params
from optxform.fused.wrapper import keeps_shapes
from optxform.state import load_state_dict as _load_state_dict
from optxform.state import state_dict as _state_dict

__all__ = ["TrainState"]

class TrainState:
    r"""A train state (flax's ``TrainState`` API) that keeps the params packed across steps.

    .. math::

        \theta_{t+1} = \theta_t + \mathrm{tx}(g_t, s_t, \theta_t)

    on the packed buffers ``flat = layout.pack(params)`` (one 1-D buffer per dtype; leaves
    of at least ``solo_size`` elements keep their own). ``state.params`` cuts the leaves
    out of ``flat`` as :class:`optxform.PackedModel` does: at offsets fixed at compile time
    up to 32 leaves in shared buffers (the fastest step), beyond at offsets XLA cannot fold
    (so it compiles the model's kernels once per distinct leaf shape, not per leaf); the
    offsets are made inside the step, never carried in the state. Its gradient flows back
    as one concatenation per buffer. For the elementwise and
    global transforms (Adam, AdamW, SGD, Lion, RMSprop, weight decay, schedules,
    ``clip_by_global_norm``) the math is that of ``tx`` on the tree; a ``tx`` that reads
    each leaf's shape (Adafactor, Muon, Shampoo) is run with every leaf in its own buffer.

    Fields (all pytree children, so the state goes through ``jax.jit`` with donation):
    ``step`` (int32), ``flat`` (the packed params), ``opt_state`` (``tx``'s
    state on ``flat``), ``frozen`` (non-float array leaves of the params, kept as they are)
    and ``extras`` (fields given to :meth:`create` by name, e.g. ``batch_stats``, read as
    attributes). ``apply_fn`` and ``tx`` are static. ``packed=False`` keeps the params as
    their tree (the plain layout, for comparison).

    Equivalents: ``flax.training.train_state.TrainState`` (same methods; its params are
    the tree); torch's ``fused=True`` optimizers (one kernel for many tensors).

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> params = {"w": jnp.ones((2, 2)), "b": jnp.zeros(2)}
        >>> state = optxform.TrainState.create(apply_fn=None, params=params,
        ...                                    tx=optxform.sgd(0.1))
        >>> state.flat
        {'float32': Array([0., 0., 1., 1., 1., 1.], dtype=float32)}
        >>> grads = {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}
        >>> state = jax.jit(lambda s, g: s.apply_gradients(grads=g))(state, grads)
        >>> state.params["b"], int(state.step)
        (Array([-0.1, -0.1], dtype=float32), 1)
    """

    step: jax.Array
    flat: Any
    opt_state: OptState
    frozen: tuple
    extras: dict
    apply_fn: Callable | None
    tx: GradientTransformation

    def __init__(self, step: jax.Array, flat: Any, opt_state: OptState,
                 frozen: tuple, extras: dict, apply_fn: Callable | None,
                 tx: GradientTransformation, split: ParamSplit) -> None:
        object.__setattr__(self, "_fields", dict(
            step=step, flat=flat, opt_state=opt_state, frozen=frozen,
            extras=extras, apply_fn=apply_fn, tx=tx, split=split))

    def __getattr__(self, name: str) -> Any:
        fields = object.__getattribute__(self, "_fields")
        if name in fields:
            return fields[name]
        if name in fields["extras"]:
            return fields["extras"][name]
        raise AttributeError(f"TrainState has no field {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("TrainState is immutable: use state.replace(...)")

    def __repr__(self) -> str:
        layout = self.split.layout
        where = "tree" if layout is None else f"packed {dict((k, s) for k, _, s in layout.groups)}"
        return f"TrainState(step={self.step}, params {where}, extras={sorted(self.extras)})"

    # --- construction ------------------------------------------------------------------

    @classmethod
    def create(cls, *, apply_fn: Callable | None = None, params: Any,
               tx: GradientTransformation, packed: bool = True, labels: Any = None,
               solo_size: int | None = SOLO_SIZE, **kwargs: Any) -> "TrainState":
        """A state at step 0: ``params`` packed and ``tx.init`` run on the packed buffers.

        Args:
          apply_fn: the model's apply function (kept, not called), as in flax.
          params: the params tree (a flax params dict, an nnx ``State``, an equinox
            model); float arrays are trained, other arrays and non-array leaves are kept.
          tx: the optimizer (an optxform or optax gradient transformation).
          packed: keep the params packed (default); ``False`` keeps the tree.
          labels: per-leaf labels for param groups (see :func:`optxform.packed_layout`);
            select the buffers in ``tx`` with :func:`optxform.label_mask`.
          solo_size: leaves with at least this many elements keep a buffer of their own.
          **kwargs: extra fields (e.g. ``batch_stats``), read back as attributes.

        Returns:
          A :class:`TrainState` with ``step`` 0.
        """
        flat, frozen, split = split_params(params, packed, labels, solo_size, keeps_shapes(tx))
        return cls(jnp.asarray(0, jnp.int32), flat, tx.init(flat), frozen,
                   dict(kwargs), apply_fn, tx, split)

    def replace(self, **changes: Any) -> "TrainState":
        """A copy with some fields (or extras, or ``params`` as a tree) replaced."""
        fields = dict(self._fields)
        extras = dict(fields["extras"])
        if "params" in changes:
            fields["flat"] = self._pack(changes.pop("params"))
        for name, value in changes.items():
            if name in fields and name != "split":
                fields[name] = value
            elif name in extras:
                extras[name] = value
            else:
                raise AttributeError(f"TrainState has no field {name!r}")
        fields["extras"] = extras
        return type(self)(**fields)

    # --- the tree view -----------------------------------------------------------------

    @property
    def params(self) -> Any:
        """The params tree (inside ``jit``: slices of the packed buffers, differentiable)."""
        return self.split.join(self.flat, self.frozen)

    def _pack(self, tree: Any) -> Any:
        """A tree like the params (grads, or new params) as ``flat``; None at untrained leaves."""
        return self.split.pack(tree)

    # --- the update --------------------------------------------------------------------

    def apply_gradients(self, *, grads: Any, **kwargs: Any) -> "TrainState":
        """One optimizer step: ``grads`` (a tree like the params) packed, ``tx`` run packed.

        Args:
          grads: the gradients as a tree like ``params`` (``None`` or absent at leaves
            that are not trained, as ``equinox.filter_grad`` gives them).
          **kwargs: fields to replace at the same time (as in flax).

        Returns:
          The state after the step: ``step + 1``, new packed params and ``opt_state``.
        """
        updates, opt_state = self.tx.update(self._pack(grads), self.opt_state, self.flat)
        return self.replace(step=self.step + 1, flat=apply_updates(self.flat, updates),
                            opt_state=opt_state, **kwargs)

    # --- checkpoints in the tree's terms ----------------------------------------------

    def tree_state(self) -> dict:
        """``{"step", "params", "opt_state"}`` in the plain layout (what a tree state holds)."""
        layout = self.split.layout
        opt_state = self.opt_state if layout is None else layout.unpack_state(self.opt_state)
        return {"step": self.step, "params": self.split.arrays_only(self.params),
                "opt_state": opt_state}

    def state_dict(self) -> dict[str, np.ndarray]:
        """The state as ``{readable key: numpy array}`` in the tree's terms.

        Keys are those of :func:`optxform.state_dict` on :meth:`tree_state`
        (``"params/layer1/w"``, ``"opt_state/adam.mu/layer1/w"``, ``"step"``): the same
        whether the params are packed or not, so a checkpoint moves between layouts.

        Returns:
          A dict of host arrays (and the ``"<structure>"`` entry).
        """
        return _state_dict(self.tree_state())

    def load_state_dict(self, d: Mapping[str, Any]) -> "TrainState":
        """This state with the values of ``d`` (from :meth:`state_dict`, either layout).

        Args:
          d: a dict from :meth:`state_dict`.

        Returns:
          A :class:`TrainState` with this one's layout holding ``d``'s step, params and
            optimizer state.
        """
        tree = _load_state_dict(self.tree_state(), d)
        layout = self.split.layout
        opt_state = tree["opt_state"] if layout is None else layout.pack_state(tree["opt_state"])
        return self.replace(step=tree["step"], flat=self._pack(tree["params"]),
                            opt_state=opt_state)

    # --- pytree ------------------------------------------------------------------------

    def tree_flatten_with_keys(self) -> tuple[list, tuple]:
        f = self._fields
        names = ("step", "flat", "opt_state", "frozen", "extras")
        children = [(jax.tree_util.GetAttrKey(n), f[n]) for n in names]
        return children, (f["apply_fn"], f["tx"], f["split"])

    @classmethod
    def tree_unflatten(cls, aux: tuple, children: Any) -> "TrainState":
        apply_fn, tx, split = aux
        step, flat, opt_state, frozen, extras = children
        return cls(step, flat, opt_state, frozen, extras, apply_fn, tx, split)


jax.tree_util.register_pytree_with_keys(
    TrainState, TrainState.tree_flatten_with_keys,
    TrainState.tree_unflatten)

