"""Checkpoints of sharded state: save from one device layout, restore onto another.

A checkpoint file (:func:`optxform.save_state`) holds whole arrays, never shards, so it
does not remember the mesh it was saved from. Restoring is therefore free to choose any
layout: save on 8 devices, restore on 4, or on a ``(4, 2)`` mesh instead of ``(2, 4)``,
or in a single process after training in several.

Saving gathers every leaf to host memory (in a multi-process run each array is
all-gathered across processes first, then process 0 writes the file and every process
waits for it). Restoring reads the file on every process (so it must be on a filesystem
all processes see) and builds each leaf directly in its target sharding, each process
materialising only the shards its own devices hold::

    save_sharded_state("opt.ckpt", state)                        # on mesh A
    ...
    template = optxform.sharded_template(tx, params_on_mesh_b)   # abstract, no memory
    state = load_sharded_state("opt.ckpt", template)             # laid out on mesh B

The template may also be a concrete state already laid out on the new mesh, or any state
with ``shardings`` passed explicitly (e.g. :func:`optxform.zero1_state_shardings`).
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh

from optxform.core import GradientTransformation
from optxform.parallel.sharding import state_shardings
from optxform.state import load_state, save_state
from optxform.state.structure import is_prng_key

__all__ = ["gather_to_host", "load_sharded_state", "place_on", "save_sharded_state",
           "sharded_template"]


def gather_to_host(tree: Any) -> Any:
    """Every leaf of ``tree`` as a whole numpy array on this host (a PRNG key array stays a
    key array, whole, on the default device).

    Arrays spread over several processes are all-gathered across processes (a collective:
    every process must call this with the same tree).

    Args:
      tree: a pytree of arrays, possibly sharded across devices and processes.

    Returns:
      A tree like ``tree`` whose array leaves are whole ``numpy.ndarray``s on this host
        (typed PRNG keys stay key arrays).

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> from jax.sharding import NamedSharding, PartitionSpec as P
        >>> mesh = jax.make_mesh((len(jax.devices()),), ("data",))  # 1 device or more
        >>> sharded = jax.device_put(jnp.arange(8.0), NamedSharding(mesh, P("data")))
        >>> optxform.gather_to_host({"w": sharded})
        {'w': array([0., 1., 2., 3., 4., 5., 6., 7.], dtype=float32)}
    """

    def gather(x):
        if is_prng_key(x):  # a typed key: gather its data, keep it a key
            return jax.random.wrap_key_data(gather(jax.random.key_data(x)),
                                            impl=jax.random.key_impl(x))
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            from jax.experimental import multihost_utils

            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(x)

    return jax.tree.map(gather, tree)


def place_on(host_tree: Any, shardings: Any) -> Any:
    """Lay the host arrays of ``host_tree`` out with ``shardings`` (a matching tree).

    Each process copies only the slices its own devices hold, so this works in multi-process
    runs as long as every process has the same ``host_tree``.

    Args:
      host_tree: a pytree of whole arrays (numpy arrays, or PRNG key arrays).
      shardings: a tree like ``host_tree`` of ``jax.sharding.Sharding``s.

    Returns:
      A tree like ``host_tree`` of ``jax.Array``s with the same values, laid out as
        ``shardings`` says.

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> from jax.sharding import NamedSharding, PartitionSpec as P
        >>> mesh = jax.make_mesh((len(jax.devices()),), ("data",))  # 1 device or more
        >>> placed = optxform.place_on({"w": jnp.arange(8.0)}, {"w": NamedSharding(mesh, P("data"))})
        >>> placed["w"].sharding.spec, placed["w"].sum()
        (P('data',), Array(28., dtype=float32))
    """

    def place(value, sharding):
        value = value if is_prng_key(value) else np.asarray(value)
        return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])

    return jax.tree.map(place, host_tree, shardings)


def sharded_template(tx: GradientTransformation, params: Any, param_shardings: Any = None,
                     mesh: Mesh | None = None, shardings: Any = None) -> Any:
    """``tx``'s state as ``jax.ShapeDtypeStruct`` leaves carrying their target shardings.

    No memory is allocated. By default each leaf gets the sharding :func:`sharded_init`
    would give it; pass ``shardings`` (a tree like the state) to choose another layout.

    Args:
      tx: the transform whose state to describe.
      params: the params (arrays or ``jax.ShapeDtypeStruct``s), on the target layout.
      param_shardings: a tree like ``params`` of shardings; ``None`` to read them from
        ``params``.
      mesh: the mesh to replicate unmatched leaves over; ``None`` to take it from the
        params' shardings.
      shardings: a tree like the state of shardings, overriding the default layout.

    Returns:
      A tree like ``tx.init(params)`` of ``jax.ShapeDtypeStruct`` leaves with their
        ``sharding`` set (a template for :func:`load_sharded_state`).

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> from jax.sharding import NamedSharding, PartitionSpec as P
        >>> mesh = jax.make_mesh((len(jax.devices()),), ("data",))  # 1 device or more
        >>> params = jax.device_put({"w": jnp.ones((8, 2)), "b": jnp.zeros(2)},
        ...                         {"w": NamedSharding(mesh, P("data")),
        ...                          "b": NamedSharding(mesh, P())})
        >>> template = optxform.sharded_template(optxform.adam(0.1), params)
        >>> leaf = template["adam"].mu["w"]
        >>> leaf.shape, leaf.dtype, leaf.sharding.spec
        ((8, 2), dtype('float32'), P('data',))
    """
    abstract = jax.eval_shape(tx.init, params)
    if shardings is None:
        shardings = state_shardings(abstract, params, param_shardings, mesh)
    return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                        abstract, shardings)


def save_sharded_state(path: str | os.PathLike, state: Any) -> None:
    """Write a (possibly sharded, possibly multi-process) state to ``path``.

    The file is the ordinary :func:`optxform.save_state` format (atomic write, a checksum
    per array). In a multi-process run every process must call this; process 0 writes, and
    all processes return once the file is complete.

    Args:
      path: the file to write (a string or path-like), on a filesystem that every process
        sees in a multi-process run.
      state: an optimizer state, possibly sharded across devices and processes.

    Returns:
      None; the file at ``path`` holds the whole state when the call returns.

    Equivalent: torch's ``torch.distributed.checkpoint.save`` (which writes shards instead
    of whole arrays).

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> from jax.sharding import NamedSharding, PartitionSpec as P
        >>> mesh = jax.make_mesh((len(jax.devices()),), ("data",))  # 1 device or more
        >>> params = jax.device_put({"w": jnp.ones((8, 2)), "b": jnp.zeros(2)},
        ...                         {"w": NamedSharding(mesh, P("data")),
        ...                          "b": NamedSharding(mesh, P())})
        >>> tx = optxform.adam(0.1)
        >>> optxform.save_sharded_state("opt.ckpt", optxform.sharded_init(tx, params))
        >>> state = optxform.load_sharded_state("opt.ckpt", optxform.sharded_template(tx, params))
        >>> state["adam"].mu["w"].sharding.spec
        P('data',)
    """
    host = gather_to_host(state)
    if jax.process_index() == 0:
        save_state(path, host)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(f"optxform.save_sharded_state:{os.fspath(path)}")


def load_sharded_state(path: str | os.PathLike, template_state: Any,
                       shardings: Any = None) -> Any:
    """Read a :func:`save_state` file into the layout of ``template_state``.

    ``shardings`` (a tree like the state) defaults to the ``sharding`` of each template
    leaf (a concrete state on the new mesh, or :func:`sharded_template`). All the checks
    of :func:`optxform.load_state` apply (keys, shapes, dtypes, checksums).

    Args:
      path: a file written by :func:`save_sharded_state` or :func:`optxform.save_state`.
      template_state: a state of the optimizer being resumed, concrete or abstract, whose
        leaves carry their target shardings unless ``shardings`` is given.
      shardings: a tree like the state of shardings; ``None`` to read them from
        ``template_state``.

    Returns:
      The saved state with the structure of ``template_state``, every leaf a ``jax.Array``
        laid out as its sharding says (whatever the layout it was saved from).

    Equivalent: torch's ``torch.distributed.checkpoint.load``.

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> from jax.sharding import NamedSharding, PartitionSpec as P
        >>> mesh = jax.make_mesh((len(jax.devices()),), ("data",))  # 1 device or more
        >>> tx = optxform.adam(0.1)
        >>> optxform.save_state("opt.ckpt", tx.init({"w": jnp.ones((8, 2))}))  # unsharded
        >>> params = jax.device_put({"w": jnp.ones((8, 2))}, {"w": NamedSharding(mesh, P("data"))})
        >>> state = optxform.load_sharded_state("opt.ckpt", optxform.sharded_template(tx, params))
        >>> state["adam"].nu["w"].sharding.spec
        P('data',)
    """
    if shardings is None:
        def sharding_of(leaf):
            sharding = getattr(leaf, "sharding", None)
            if not isinstance(sharding, jax.sharding.Sharding):
                raise ValueError("load_sharded_state: a template leaf has no sharding; pass "
                                 "shardings= or use sharded_template(...)")
            return sharding

        shardings = jax.tree.map(sharding_of, template_state)
    host_template = jax.tree.map(
        lambda leaf: jax.ShapeDtypeStruct(tuple(np.shape(leaf)), leaf.dtype), template_state)
    return place_on(load_state(path, host_template), shardings)
