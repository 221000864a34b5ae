"""ZeRO-1: shard the optimizer state of data-parallel (replicated) params across devices.

In plain data parallelism every device holds the params, the gradients and the whole
optimizer state. Adam's two moments are twice the size of the params, so the state is
usually the largest of the three. ZeRO stage 1 (Rajbhandari et al. 2020, "ZeRO: Memory
Optimizations Toward Training Trillion Parameter Models") keeps params replicated but
splits every state buffer across the data-parallel devices: each device updates only its
slice of the moments, then the updates are all-gathered so every device can apply them to
its full copy of the params. Per-device state memory drops by the data-parallel size; the
arithmetic, and so the trajectory, is unchanged (only the order of additions inside a
cross-device reduction may differ, i.e. last-bit differences at most).

Usage (params replicated over a ``("data",)`` mesh, the batch sharded over it)::

    mesh = jax.make_mesh((8,), ("data",))
    tx = optxform.zero1(optxform.adamw(1e-3), mesh, axis_name="data")
    state = tx.init(params)                   # every moment split 8 ways along one dim

    @jax.jit
    def step(params, state, batch):
        grads = jax.grad(loss)(params, batch)          # batch sharded over "data"
        updates, state = tx.update(grads, state, params)
        return optxform.apply_updates(params, updates), state

``zero1(tx, ...)`` is an ordinary ``GradientTransformation`` wrapping ``tx``: its state is
exactly ``tx``'s state (same tree, same values), only laid out differently, so it can be
saved, restored and inspected like any other. Inside ``update`` it pins three layouts with
:func:`optxform.constrain_sharding`: the incoming gradients and the state in the sharded
(ZeRO) layout, so XLA may turn the gradient all-reduce into a reduce-scatter and computes
each slice of the moments on one device; the outgoing updates in the params' layout, which
all-gathers them.

Which dimension is split: for each state leaf, starting from the sharding of the parameter
it mirrors (see :mod:`optxform.parallel.sharding`; replicated by default), the first
dimension that is not sharded yet and whose size is a multiple of the data-parallel size.
A leaf with no such dimension (a bias of odd length, a scalar counter) stays replicated.
Params that are already sharded over other mesh axes (tensor parallelism) are supported by
passing their ``param_shardings``; the data axis is then added on a free dimension.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from optxform.core import GradientTransformation, call_update
from optxform.parallel.sharding import _shape, constrain_sharding, match_param, param_index
from optxform.tree.quantize import QuantizedBlocks

__all__ = ["zero1", "zero1_init", "zero1_spec", "zero1_state_shardings"]


def _as_spec(sharding_or_spec, ndim: int) -> list:
    if isinstance(sharding_or_spec, NamedSharding):
        spec = tuple(sharding_or_spec.spec)
    elif isinstance(sharding_or_spec, PartitionSpec):
        spec = tuple(sharding_or_spec)
    elif sharding_or_spec is None:
        spec = ()
    else:
        raise ValueError(f"zero1: param_shardings must hold NamedSharding or PartitionSpec, "
                         f"got {type(sharding_or_spec).__name__}")
    return list(spec) + [None] * (ndim - len(spec))


def _uses(entry, axis_name: str) -> bool:
    return entry == axis_name or (isinstance(entry, tuple) and axis_name in entry)


def zero1_spec(shape: Sequence[int], base_spec: PartitionSpec | NamedSharding | None,
               axis_name: str, axis_size: int) -> PartitionSpec:
    """``base_spec`` with ``axis_name`` added on the first free dimension divisible by
    ``axis_size``; unchanged when none qualifies or ``axis_name`` is already used.

    Args:
      shape: the shape of the state leaf.
      base_spec: the layout the leaf has without ZeRO (the sharding of the param it
        mirrors, a ``PartitionSpec``, or ``None`` for replicated).
      axis_name: the data-parallel mesh axis to split over.
      axis_size: the size of that axis.

    Returns:
      A ``PartitionSpec`` with one entry per dimension of ``shape``.

    Example::

        >>> import optxform
        >>> from jax.sharding import PartitionSpec as P
        >>> optxform.zero1_spec((8, 3), None, "data", 4)
        P('data', None)
        >>> optxform.zero1_spec((3, 8), P(None, "model"), "data", 4)  # no free dimension fits
        P(None, 'model')
    """
    spec = _as_spec(base_spec, len(shape))
    if not any(_uses(entry, axis_name) for entry in spec):
        for i, size in enumerate(shape):
            if spec[i] is None and size >= axis_size and size % axis_size == 0:
                spec[i] = axis_name
                break
    return PartitionSpec(*spec)


def _param_specs(params: Any, param_shardings: Any) -> list:
    if param_shardings is None:
        return param_index(params, jax.tree.map(lambda _: PartitionSpec(), params))
    return param_index(params, param_shardings)


def zero1_state_shardings(state: Any, params: Any, mesh: Mesh, axis_name: str = "data",
                          param_shardings: Any = None) -> Any:
    """The ZeRO-1 ``NamedSharding`` of every leaf of ``state`` (concrete or abstract).

    For each state leaf, starting from the layout of the param it mirrors (replicated by
    default), ``axis_name`` is added on the first dimension that is not sharded yet and
    whose size is a multiple of the axis size (:func:`zero1_spec`); a leaf with no such
    dimension (a scalar counter, a bias of odd length) stays as it is. A buffer stored
    as 8-bit blocks (:class:`~optxform.QuantizedBlocks`) is split along its block axis
    only, so every device holds whole blocks with their scales (replicated when the
    number of blocks is not a multiple of the axis size): a block never straddles shards.

    Args:
      state: an optimizer state, concrete or abstract (``jax.eval_shape(tx.init, params)``).
      params: the params the state belongs to (arrays or ``jax.ShapeDtypeStruct``s).
      mesh: the device mesh.
      axis_name: the data-parallel axis of ``mesh`` to split the state over.
      param_shardings: a tree matching ``params`` of ``NamedSharding``/``PartitionSpec``
        (default: every param replicated).

    Returns:
      A tree with the structure of ``state`` whose leaves are ``NamedSharding``s on
        ``mesh``.

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> mesh = jax.make_mesh((len(jax.devices()),), ("data",))  # 1 device or more
        >>> tx, params = optxform.adam(0.1), {"w": jnp.ones((8, 2))}
        >>> shardings = optxform.zero1_state_shardings(jax.eval_shape(tx.init, params),
        ...                                            params, mesh)
        >>> shardings["adam"].mu["w"].spec, shardings["adam"].count.spec
        (P('data', None), P())
    """
    if axis_name not in mesh.shape:
        raise ValueError(f"zero1: axis_name {axis_name!r} is not an axis of the mesh "
                         f"{dict(mesh.shape)}")
    size = mesh.shape[axis_name]
    index = _param_specs(params, param_shardings)

    def choose(path, leaf):
        if isinstance(leaf, QuantizedBlocks):  # whole blocks per device, or replicated
            blocks = zero1_spec((_shape(leaf.scales)[0],), None, axis_name, size)
            return QuantizedBlocks(NamedSharding(mesh, PartitionSpec(*blocks, None)),
                                   NamedSharding(mesh, blocks))
        shape = _shape(leaf)
        found = match_param(tuple(path), index)
        base = None
        if found is not None and found[0] == shape:
            base = found[1]
        return NamedSharding(mesh, zero1_spec(shape, base, axis_name, size))

    return jax.tree_util.tree_map_with_path(
        choose, state, is_leaf=lambda x: isinstance(x, QuantizedBlocks))


def _param_layout(params: Any, mesh: Mesh, param_shardings: Any) -> Any:
    if param_shardings is None:
        return jax.tree.map(lambda _: NamedSharding(mesh, PartitionSpec()), params)

    def layout(param, sharding_or_spec):
        return NamedSharding(mesh, PartitionSpec(*_as_spec(sharding_or_spec, len(_shape(param)))))

    return jax.tree.map(layout, params, param_shardings)


def zero1_init(tx: GradientTransformation, params: Any, mesh: Mesh, axis_name: str = "data",
               param_shardings: Any = None) -> Any:
    """``tx.init(params)`` created directly in the ZeRO-1 layout (see the module docstring).

    Args:
      tx: the transform whose state to build.
      params: the (replicated) params.
      mesh: the device mesh.
      axis_name: the data-parallel axis of ``mesh`` to split the state over.
      param_shardings: a tree matching ``params`` of ``NamedSharding``/``PartitionSpec``
        (default: every param replicated).

    Returns:
      ``tx.init(params)``, every leaf a ``jax.Array`` laid out as
        :func:`zero1_state_shardings` says.

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> mesh = jax.make_mesh((len(jax.devices()),), ("data",))  # 1 device or more
        >>> state = optxform.zero1_init(optxform.adam(0.1), {"w": jnp.ones((8, 2))}, mesh)
        >>> state["adam"].mu["w"].sharding.spec
        P('data', None)
    """
    abstract = jax.eval_shape(tx.init, params)
    out = zero1_state_shardings(abstract, params, mesh, axis_name, param_shardings)
    return jax.jit(tx.init, out_shardings=out)(params)


def zero1(tx: GradientTransformation, mesh: Mesh, axis_name: str = "data",
          param_shardings: Any = None) -> GradientTransformation:
    """Wrap ``tx`` so its state is sharded over ``axis_name`` of ``mesh`` (ZeRO stage 1).

    The state is ``tx``'s own state laid out across devices; updates come out in the
    params' layout (replicated unless ``param_shardings`` says otherwise). Use it inside
    ``jax.jit``; the math is ``tx``'s, so the trajectory is ``tx``'s.

    Args:
      tx: the transform to wrap.
      mesh: the device mesh.
      axis_name: the data-parallel axis of ``mesh`` to split the state over.
      param_shardings: a tree matching the params of ``NamedSharding``/``PartitionSpec``
        for params already sharded over other axes (default: every param replicated).

    Returns:
      A gradient transformation with the updates and state values of ``tx``; its
        ``init`` is :func:`zero1_init` and its state is ``tx``'s state laid out as
        :func:`zero1_state_shardings` says.

    Equivalents: torch's ``ZeroRedundancyOptimizer(params, optimizer_class)``;
    DeepSpeed's ZeRO stage 1.

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> mesh = jax.make_mesh((len(jax.devices()),), ("data",))  # 1 device or more
        >>> tx = optxform.zero1(optxform.adam(0.1), mesh)
        >>> params = {"w": jnp.ones((8, 2))}
        >>> @jax.jit
        ... def step(params, state, grads):
        ...     updates, state = tx.update(grads, state, params)
        ...     return optxform.apply_updates(params, updates), state
        >>> params, state = step(params, tx.init(params), {"w": jnp.ones((8, 2))})
        >>> params["w"][0], state["adam"].mu["w"].sharding.spec
        (Array([0.9, 0.9], dtype=float32), P('data', None))
    """
    if axis_name not in mesh.shape:
        raise ValueError(f"zero1: axis_name {axis_name!r} is not an axis of the mesh "
                         f"{dict(mesh.shape)}")

    def init(params):
        return zero1_init(tx, params, mesh, axis_name, param_shardings)

    def update(updates, state, params=None, **extra):
        reference = updates if params is None else params
        grad_layout = zero1_state_shardings(updates, reference, mesh, axis_name,
                                            param_shardings)
        state_layout = zero1_state_shardings(state, reference, mesh, axis_name,
                                             param_shardings)
        updates = constrain_sharding(updates, grad_layout)
        state = constrain_sharding(state, state_layout)
        updates, state = call_update(tx, updates, state, params, extra)
        state = constrain_sharding(state, state_layout)
        updates = constrain_sharding(updates, _param_layout(reference, mesh, param_shardings))
        return updates, state

    return GradientTransformation(init, update)
