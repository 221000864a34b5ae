"""Sharding-aware optimizer state: create the state with the same layout as the params.

Under ``jax.jit`` with sharded params, ``tx.init(params)`` builds its buffers with
``jnp.zeros(shape)``; zeros depend on no input, so XLA would replicate them on every device
(or leave the choice to the compiler). :func:`sharded_init` instead places every state leaf
that mirrors a parameter (Adam's ``mu`` and ``nu``, a momentum buffer, an EMA copy) with
that parameter's sharding, and every other leaf (step counters, injected hyperparameters)
replicated over the same mesh::

    mesh = jax.make_mesh((2, 4), ("data", "model"))
    params = jax.device_put(params, {"w": NamedSharding(mesh, P(None, "model")), ...})
    tx = optxform.adamw(1e-3)
    state = optxform.sharded_init(tx, params)      # mu["w"], nu["w"] sharded like params["w"]
    # a jitted step then keeps every elementwise operation local to each device.

How a state leaf is matched to a parameter: its key path must end with the parameter's key
path (``0/mu/layer1/w`` ends with ``layer1/w``; the longest such parameter wins) and its
shape must equal the parameter's. A leaf of the same rank whose dimensions are each either
the parameter's or 1 (a factored second moment ``(n, 1)`` of an ``(n, m)`` weight) gets the
parameter's sharding with the size-1 dimensions left unsharded. Any other leaf is replicated.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import (AxisType, Mesh, NamedSharding, PartitionSpec, Sharding,
                          SingleDeviceSharding)

from optxform.core import GradientTransformation

__all__ = ["bytes_per_device", "constrain_sharding", "replicated_sharding", "sharded_init",
           "state_shardings"]


def _shape(leaf) -> tuple[int, ...]:
    return tuple(np.shape(leaf)) if not hasattr(leaf, "shape") else tuple(leaf.shape)


def param_index(params: Any, values: Any = None) -> list[tuple[tuple, tuple[int, ...], Any]]:
    """``[(key_path, shape, value)]`` for each param leaf; ``value`` from ``values`` (a tree
    matching params) or, by default, the param leaf itself. Longest paths come first, so a
    search for the first path that ends a state path finds the most specific parameter."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(params)
    if values is None:
        vals = [leaf for _, leaf in flat]
    else:
        vals = treedef.flatten_up_to(values)
    index = [(tuple(path), _shape(leaf), v) for (path, leaf), v in zip(flat, vals)]
    return sorted(index, key=lambda item: -len(item[0]))


def match_param(state_path: tuple, index) -> tuple[tuple[int, ...], Any] | None:
    """The ``(param_shape, value)`` of the longest param path ending ``state_path``."""
    for path, shape, value in index:
        n = len(path)
        if n <= len(state_path) and tuple(state_path[len(state_path) - n:]) == path:
            return shape, value
    return None


def _mesh_of(shardings) -> Mesh | None:
    for s in jax.tree.leaves(shardings):
        if isinstance(s, NamedSharding):
            return s.mesh
    return None


def replicated_sharding(param_shardings: Any, mesh: Mesh | None = None) -> Sharding:
    """A sharding that replicates a value over the devices the params live on.

    ``mesh`` when given; otherwise the mesh of the first ``NamedSharding`` among
    ``param_shardings``; otherwise, when every param is on one device, that device.

    Args:
      param_shardings: a tree of ``jax.sharding.Sharding``s (the params' shardings).
      mesh: the mesh to replicate over; ``None`` to take it from ``param_shardings``.

    Returns:
      A ``NamedSharding(mesh, PartitionSpec())``, or a ``SingleDeviceSharding`` when the
        params live on one device without a mesh. Raises ``ValueError`` when the params
        span several devices without a ``NamedSharding`` and no ``mesh`` is given.

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> from jax.sharding import NamedSharding, PartitionSpec as P
        >>> mesh = jax.make_mesh((len(jax.devices()),), ("data",))  # 1 device or more
        >>> optxform.replicated_sharding({"w": NamedSharding(mesh, P("data"))}).spec
        P()
    """
    if mesh is None:
        mesh = _mesh_of(param_shardings)
    if mesh is not None:
        return NamedSharding(mesh, PartitionSpec())
    devices = {d for s in jax.tree.leaves(param_shardings) for d in s.device_set}
    if len(devices) == 1:
        return SingleDeviceSharding(devices.pop())
    if not devices:
        return SingleDeviceSharding(jax.devices()[0])
    raise ValueError("replicated_sharding: the params are spread over several devices without "
                     "a NamedSharding; pass mesh=")


def _derived_sharding(param_sharding: Sharding, param_shape, leaf_shape, replicated):
    """The param's sharding adapted to a leaf of shape ``leaf_shape`` (see module docstring)."""
    if tuple(leaf_shape) == tuple(param_shape):
        return param_sharding
    if (isinstance(param_sharding, NamedSharding) and len(leaf_shape) == len(param_shape)
            and all(a in (b, 1) for a, b in zip(leaf_shape, param_shape))):
        spec = tuple(param_sharding.spec) + (None,) * (len(param_shape)
                                                     - len(param_sharding.spec))
        new_spec = [axis if a == b else None for axis, a, b in zip(spec, leaf_shape, param_shape)]
        return NamedSharding(param_sharding.mesh, PartitionSpec(*new_spec))
    return replicated


def _shardings_of(params: Any) -> Any:
    def get(x):
        if not isinstance(x, jax.Array):
            raise ValueError("sharded_init: params must be jax.Arrays carrying a sharding, or "
                             "pass param_shardings=")
        return x.sharding

    return jax.tree.map(get, params)


def state_shardings(state: Any, params: Any, param_shardings: Any = None,
                    mesh: Mesh | None = None) -> Any:
    """A tree like ``state`` holding the sharding each state leaf should have.

    ``state`` may be concrete or abstract (``jax.eval_shape(tx.init, params)``). The
    shardings of the params are read from ``params`` (``jax.Array``s) unless
    ``param_shardings`` (a tree matching ``params``) is given. Leaves mirroring a parameter
    take its sharding; all others (scalar counters included) are replicated.

    Args:
      state: an optimizer state, concrete or abstract.
      params: the params tree the state belongs to (arrays or ``jax.ShapeDtypeStruct``s).
      param_shardings: a tree like ``params`` of shardings; ``None`` to read them from
        ``params``.
      mesh: the mesh to replicate unmatched leaves over; ``None`` to take it from the
        params' shardings.

    Returns:
      A tree with the structure of ``state`` whose leaves are ``jax.sharding.Sharding``s
        (for ``out_shardings`` of ``jax.jit``, or :func:`optxform.place_on`).

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> from jax.sharding import NamedSharding, PartitionSpec as P
        >>> mesh = jax.make_mesh((len(jax.devices()),), ("data",))  # 1 device or more
        >>> params = jax.device_put({"w": jnp.ones((8, 2)), "b": jnp.zeros(2)},
        ...                         {"w": NamedSharding(mesh, P("data")),
        ...                          "b": NamedSharding(mesh, P())})
        >>> tx = optxform.adam(0.1)
        >>> shardings = optxform.state_shardings(jax.eval_shape(tx.init, params), params)
        >>> shardings["adam"].mu["w"].spec, shardings["adam"].count.spec
        (P('data',), P())
    """
    if param_shardings is None:
        param_shardings = _shardings_of(params)
    replicated = replicated_sharding(param_shardings, mesh)
    index = param_index(params, param_shardings)

    def choose(path, leaf):
        found = match_param(tuple(path), index)
        if found is None or _shape(leaf) == ():
            return replicated
        param_shape, sharding = found
        return _derived_sharding(sharding, param_shape, _shape(leaf), replicated)

    return jax.tree_util.tree_map_with_path(choose, state)


def _is_explicit(mesh: Mesh, spec: PartitionSpec) -> bool:
    names = [n for entry in spec if entry is not None
             for n in (entry if isinstance(entry, tuple) else (entry,))]
    explicit = {name for name, kind in zip(mesh.axis_names, mesh.axis_types)
                if kind == AxisType.Explicit}
    return any(n in explicit for n in names) or (not names and bool(explicit))


def constrain_sharding(tree: Any, shardings: Any) -> Any:
    """Lay ``tree`` out as ``shardings`` inside ``jit``: ``jax.sharding.reshard`` for leaves
    on Explicit mesh axes (sharding in types, the default of ``jax.make_mesh``), else
    ``jax.lax.with_sharding_constraint`` (Auto axes, where XLA's partitioner decides).

    Args:
      tree: a tree of arrays (traced, inside ``jax.jit``).
      shardings: a tree like ``tree`` of ``jax.sharding.Sharding``s.

    Returns:
      A tree like ``tree`` with the same values, each leaf laid out as its sharding says.

    Equivalent: ``jax.lax.with_sharding_constraint`` leaf by leaf; torch: ``DTensor``
    redistribution.

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> from jax.sharding import NamedSharding, PartitionSpec as P
        >>> mesh = jax.make_mesh((len(jax.devices()),), ("data",))  # 1 device or more
        >>> replicated = {"w": jax.device_put(jnp.ones(8), NamedSharding(mesh, P()))}
        >>> layout = {"w": NamedSharding(mesh, P("data"))}
        >>> out = jax.jit(lambda t: optxform.constrain_sharding(t, layout))(replicated)
        >>> out["w"].sharding.spec
        P('data',)
    """

    def one(x, s):
        if isinstance(s, NamedSharding) and _is_explicit(s.mesh, s.spec):
            return jax.sharding.reshard(x, s)
        return jax.lax.with_sharding_constraint(x, s)

    return jax.tree.map(one, tree, shardings)


def sharded_init(tx: GradientTransformation, params: Any, param_shardings: Any = None,
                 mesh: Mesh | None = None) -> Any:
    """``tx.init(params)`` with each state leaf created directly in its target sharding.

    A state leaf that mirrors a param (its key path ends with the param's path and its
    shape is the param's) takes the param's sharding; a factored leaf (the param's shape
    with some dimensions 1) takes it with those dimensions unsharded; every other leaf
    (step counters, hyperparameters) is replicated over the params' mesh. Nothing is
    materialised on one device first: ``init`` runs under ``jax.jit`` with
    ``out_shardings``.

    Args:
      tx: the transform whose state to build.
      params: the params, ``jax.Array``s carrying their shardings (or any arrays with
        ``param_shardings``).
      param_shardings: a tree like ``params`` of shardings; ``None`` to read them from
        ``params``.
      mesh: the mesh to replicate unmatched leaves over; ``None`` to take it from the
        params' shardings.

    Returns:
      ``tx.init(params)``, every leaf a ``jax.Array`` laid out as :func:`state_shardings`
        says.

    Equivalent: torch's optimizer state follows its (DTensor/FSDP) params lazily on the
    first step; optax has no such helper (``jax.jit(tx.init, out_shardings=...)``).

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> from jax.sharding import NamedSharding, PartitionSpec as P
        >>> mesh = jax.make_mesh((len(jax.devices()),), ("data",))  # 1 device or more
        >>> params = jax.device_put({"w": jnp.ones((8, 2)), "b": jnp.zeros(2)},
        ...                         {"w": NamedSharding(mesh, P("data")),
        ...                          "b": NamedSharding(mesh, P())})
        >>> state = optxform.sharded_init(optxform.adam(0.1), params)
        >>> state["adam"].mu["w"].sharding.spec, state["adam"].mu["b"].sharding.spec
        (P('data',), P())
    """
    if param_shardings is None:
        param_shardings = _shardings_of(params)
    abstract = jax.eval_shape(tx.init, params)
    out = state_shardings(abstract, params, param_shardings, mesh)
    return jax.jit(tx.init, out_shardings=out)(params)


def bytes_per_device(tree: Any) -> dict[jax.Device, int]:
    """``{device: bytes}`` held by the leaves of ``tree`` on each (addressable) device.

    A replicated array counts in full on every device; a sharded one counts only its shard.

    Args:
      tree: any pytree; leaves that are not ``jax.Array`` are not counted.

    Returns:
      A dict ``{jax.Device: int}``, the bytes of array data on each device this process
        addresses (devices holding nothing are absent).

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> from jax.sharding import NamedSharding, PartitionSpec as P
        >>> mesh = jax.make_mesh((len(jax.devices()),), ("data",))  # 1 device or more
        >>> sharded = jax.device_put(jnp.ones(16), NamedSharding(mesh, P("data")))
        >>> sum(optxform.bytes_per_device(sharded).values())  # 64 bytes split over the devices
        64
        >>> replicated = jax.device_put(jnp.ones(2), NamedSharding(mesh, P()))
        >>> set(optxform.bytes_per_device(replicated).values())  # 8 bytes on every device
        {8}
    """
    totals: dict[jax.Device, int] = {}
    for leaf in jax.tree.leaves(tree):
        if not isinstance(leaf, jax.Array):
            continue
        for shard in leaf.addressable_shards:
            totals[shard.device] = totals.get(shard.device, 0) + shard.data.nbytes
    return totals
