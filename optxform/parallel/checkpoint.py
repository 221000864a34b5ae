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
