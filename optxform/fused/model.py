r"""pack_model: a model whose float arrays live packed, so a training loop runs unchanged.

equinox's training loop carries the model itself through its jitted step
(``eqx.filter_value_and_grad`` of the model, ``optim.update`` on
``eqx.filter(model, eqx.is_array)``, ``eqx.apply_updates``; the repository's
examples/two_line_equinox.py is one).

Adding ``model = optxform.pack_model(model)`` before it is the whole change: the
:class:`PackedModel` is a pytree whose array leaves are a few flat buffers (one per dtype;
large leaves keep their own) and it behaves like the model (calls and attribute reads go to
the model, cut out of the buffers). Its gradient is the packed gradient, so the optimizer,
``eqx.apply_updates`` and the donation all work on a handful of buffers instead of one per
leaf.
"""

from __future__ import annotations

from typing import Any

import jax

from optxform.fused.layout import SOLO_SIZE
from optxform.fused.split import ParamSplit, split_params

__all__ = ["PackedModel", "pack_model"]


class PackedModel:
    r"""A model (any pytree) with its float arrays packed: one 1-D buffer per dtype.

    Leaves of the model divide as equinox's filters divide them: inexact (floating or
    complex) arrays are trained and packed into ``buffers``; other arrays (integers,
    booleans) are kept as they are in ``frozen``; everything else (activation functions,
    Python numbers) is static and lives in the pytree's aux data. As a pytree its leaves
    are ``buffers`` then ``frozen``, so ``jax.jit`` takes it as an argument directly.

    It behaves like the model: ``packed(*args)`` calls the model, ``packed.name`` reads its
    attribute, ``packed[i]`` indexes it, each on ``packed.unpack()``. Inside a jitted step
    the unpacked leaves are slices of the buffers, and the gradient with respect to the
    :class:`PackedModel` is a :class:`PackedModel` holding the packed gradient (one
    concatenation per buffer):

    .. math::

        \nabla_{\mathrm{buffers}}\, L(\mathrm{unpack}(\mathrm{buffers}))
        = \mathrm{pack}(\nabla_\theta L(\theta))

    so every elementwise or global optimizer (Adam, AdamW, SGD, Lion, RMSprop, weight
    decay, schedules, ``clip_by_global_norm``; optxform's or optax's) gives the updates it
    gives on the tree, as a few kernels instead of a few per leaf.

    What does not fit: optimizers that read each leaf's shape (Muon, Adafactor, Shampoo,
    SOAP, Kron, per-leaf norms or clipping) would see 1-D buffers and compute something
    else, and masks or labels written against the model's paths find no such paths:
    keep the plain model for those (or use :class:`optxform.TrainState`, which runs them
    leaf by leaf).

    Compile time. Slices at offsets fixed at compile time make XLA compile every layer's
    kernels anew (about 20-40 ms per leaf on a 2-core CPU: 7-13 s for a 300-leaf MLP);
    they are the fastest to run, so a model with at most ``STATIC_SLICES`` (32) leaves
    in shared buffers uses them. Beyond that the offsets come out of a ``lax.cond`` whose
    branches both return them: XLA cannot see them as constants, so each of the model's
    kernels is compiled once per distinct leaf shape, as on the tree (the same 300-leaf
    MLP: 1.2-1.5 s), for a fixed cost of about 0.1 ms per step.

    Checkpoints: ``packed.unpack()`` is the model (save it with
    ``eqx.tree_serialise_leaves``; pack the loaded model again). The optimizer state is
    laid out like the buffers. Tree surgery (``eqx.tree_at``, ``eqx.nn.inference_mode``)
    sees only the buffers: apply it to ``packed.unpack()`` and pack the result again.

    Equivalents: the equinox model itself (same calls, same gradients up to layout);
    torch's ``fused=True`` optimizers (one kernel for many tensors).

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> def linear(w, b, x):
        ...     return x @ w + b
        >>> model = jax.tree_util.Partial(linear, jnp.ones((2, 2)), jnp.zeros(2))
        >>> model = optxform.pack_model(model)
        >>> model.buffers
        {'float32': Array([1., 1., 1., 1., 0., 0.], dtype=float32)}
        >>> model(jnp.ones(2))
        Array([2., 2.], dtype=float32)
        >>> grads = jax.grad(lambda m: m(jnp.ones(2)).sum())(model)
        >>> grads.buffers
        {'float32': Array([1., 1., 1., 1., 1., 1.], dtype=float32)}
        >>> tx = optxform.sgd(0.5)
        >>> updates, _ = tx.update(grads, tx.init(model), model)
        >>> optxform.apply_updates(model, updates).unpack().args[1]
        Array([-0.5, -0.5], dtype=float32)
    """

    buffers: dict[str, jax.Array]
    frozen: tuple
    split: ParamSplit

    def __init__(self, buffers: dict[str, jax.Array], frozen: tuple, split: ParamSplit) -> None:
        object.__setattr__(self, "buffers", buffers)
        object.__setattr__(self, "frozen", frozen)
        object.__setattr__(self, "split", split)

    def unpack(self) -> Any:
        """The model tree (inside ``jit``: slices of the buffers, differentiable).

        Returns:
          The model as it was given to :func:`pack_model`, with the current values.
        """
        return self.split.join(self.buffers, self.frozen)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.unpack()(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("buffers", "frozen", "split"):
            raise AttributeError(name)  # copy/pickle probes; fields not yet set
        return getattr(self.unpack(), name)

    def __getitem__(self, index: Any) -> Any:
        return self.unpack()[index]

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("PackedModel is immutable (a pytree): build a new one with "
                             "optxform.pack_model, or use eqx.tree_at on .unpack()")

    def __repr__(self) -> str:
        sizes = {key: getattr(buffer, "size", None) for key, buffer in self.buffers.items()}
        trained = self.split.kinds.count("train")
        return (f"PackedModel({trained} leaves packed in {sizes}, "
                f"{len(self.frozen)} frozen arrays)")

    # --- pytree ------------------------------------------------------------------------

    def _tree_flatten_with_keys(self) -> tuple[list, ParamSplit]:
        return [(jax.tree_util.GetAttrKey("buffers"), self.buffers),
                (jax.tree_util.GetAttrKey("frozen"), self.frozen)], self.split

    @classmethod
    def _tree_unflatten(cls, split: ParamSplit, children: Any) -> "PackedModel":
        buffers, frozen = children
        return cls(buffers, frozen, split)


jax.tree_util.register_pytree_with_keys(
    PackedModel, PackedModel._tree_flatten_with_keys, PackedModel._tree_unflatten)


def pack_model(model: Any, solo_size: int | None = SOLO_SIZE) -> PackedModel:
    r"""The model with its float arrays packed into one buffer per dtype (see :class:`PackedModel`).

    One added line turns equinox's usual training loop into the packed one; the step, its
    ``eqx.filter_jit(donate="all")``, ``eqx.filter_value_and_grad``, ``optim.update`` and
    ``eqx.apply_updates`` stay as they are:

    .. math::

        \mathrm{buffers}_{t+1} = \mathrm{buffers}_t
        + \mathrm{tx}(\mathrm{pack}(g_t), s_t, \mathrm{buffers}_t)

    which is the tree's update for every elementwise or global optimizer.

    Args:
      model: an equinox model, or any pytree (its inexact arrays are trained, other arrays
        kept, non-array leaves static). A :class:`PackedModel` is returned as it is.
      solo_size: leaves with at least this many elements keep a buffer of their own
        (packing them would copy megabytes to save one kernel); ``None`` packs every leaf.
    Returns:
      A :class:`PackedModel`: a pytree of the buffers and the non-float arrays that calls,
        indexes and reads attributes like ``model``; ``.unpack()`` gives the model back.

    Equivalents: none in optax or equinox (they keep one buffer per leaf); torch's
    ``fused=True`` / ``foreach=True`` optimizers batch the leaves inside the step instead.

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> model = jax.tree_util.Partial(jnp.dot, jnp.ones(3))
        >>> packed = optxform.pack_model(model)
        >>> packed(jnp.arange(3.0)), packed.unpack().args[0].shape
        (Array(3., dtype=float32), (3,))
    """
    if isinstance(model, PackedModel):
        return model
    buffers, frozen, split = split_params(model, solo_size=solo_size)
    return PackedModel(buffers, frozen, split)
