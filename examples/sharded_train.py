"""Training under ``jax.jit`` with params sharded over a device mesh (``NamedSharding``).

A ``(data, model)`` mesh: the batch is split over ``data``; the MLP's hidden dimension
is split over ``model`` (``w1`` by columns, ``b1``, ``w2`` by rows), the small output
bias replicated. :func:`optxform.sharded_init` creates the optimizer state with exactly the
params' layout (each Adam moment sharded like its parameter, the step counters replicated),
so the optimizer update is local to every device: elementwise chains move no data, and
global-norm clipping needs a single all-reduce of a few scalars (one partial sum of squares
per sharded leaf, combined by XLA into one collective).

    python examples/sharded_train.py [--steps 200] [--mesh 2x4] [--zero1]

``--zero1`` instead keeps the params replicated over an 8-way data mesh and shards only the
optimizer state (:func:`optxform.zero1`), printing the per-device state memory.
On a CPU-only machine XLA is asked for 8 host devices automatically.
"""

from __future__ import annotations

import argparse
import os
import re

if __name__ == "__main__" and "xla_force_host_platform_device_count" not in os.environ.get(
        "XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + " --xla_force_host_platform_device_count=8").strip()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import AxisType, NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import optxform  # noqa: E402

COLLECTIVES = ("all-reduce", "all-gather", "all-to-all", "collective-permute", "reduce-scatter")

# How each parameter is laid out over the ("data", "model") mesh.
PARAM_SPECS = {"w1": P(None, "model"), "b1": P("model"), "w2": P("model", None), "b2": P()}


def make_mesh(shape=(2, 4), names=("data", "model")):
    """A mesh with Auto axes: XLA's partitioner propagates the shardings we pin."""
    return jax.make_mesh(shape, names, axis_types=(AxisType.Auto,) * len(shape))


def make_problem(seed: int = 0, n: int = 512, d_in: int = 16, d_hidden: int = 64,
                 d_out: int = 4):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d_in)).astype(np.float32)
    teacher = rng.standard_normal((d_in, d_out)).astype(np.float32)
    y = np.tanh(x @ teacher).astype(np.float32)
    params = {
        "w1": (rng.standard_normal((d_in, d_hidden)) / np.sqrt(d_in)).astype(np.float32),
        "b1": np.zeros((d_hidden,), np.float32),
        "w2": (rng.standard_normal((d_hidden, d_out)) / np.sqrt(d_hidden)).astype(np.float32),
        "b2": np.zeros((d_out,), np.float32),
    }
    return params, x, y


def loss_fn(params, x, y):
    h = jnp.tanh(x @ params["w1"] + params["b1"][None, :])
    out = h @ params["w2"] + params["b2"][None, :]
    return jnp.mean(jnp.square(out - y))


def make_optimizer(total_steps: int, peak_lr: float = 1e-2, clip: bool = True):
    schedule = optxform.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=peak_lr, warmup_steps=max(1, total_steps // 10),
        decay_steps=total_steps, end_value=peak_lr * 1e-2)
    adamw = optxform.adamw(learning_rate=schedule, weight_decay=1e-2)
    return optxform.chain(optxform.clip_by_global_norm(1.0), adamw) if clip else adamw


def param_shardings(mesh, specs=None):
    return {k: NamedSharding(mesh, s) for k, s in (specs or PARAM_SPECS).items()}


def make_train_step(tx, on_trace=None):
    """A jitted step ``(params, state, x, y) -> (params, state, loss)``.

    ``on_trace`` (optional) is called each time the step is traced, to count compiles.
    No shardings are passed to ``jit``: they come with the arrays and XLA keeps them.
    """

    def step(params, opt_state, x, y):
        if on_trace is not None:
            on_trace()
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optxform.apply_updates(params, updates), opt_state, loss

    return jax.jit(step, donate_argnums=(0, 1))


def make_optimizer_step(tx):
    """Only the optimizer: ``(params, state, grads) -> (params, state)``, for HLO checks."""

    def step(params, opt_state, grads):
        updates, opt_state = tx.update(grads, opt_state, params)
        return optxform.apply_updates(params, updates), opt_state

    return jax.jit(step)


def count_collectives(hlo_text: str) -> dict[str, int]:
    """How many cross-device operations of each kind a compiled HLO module contains."""
    return {op: len(re.findall(rf"\b{op}(?:-start)?\(", hlo_text)) for op in COLLECTIVES}


def compiled_collectives(jitted, *args) -> dict[str, int]:
    return count_collectives(jitted.lower(*args).compile().as_text())


def setup(mesh, tx, seed: int = 0):
    """Params placed on the mesh, the state created with their layout; the data on host."""
    params, x, y = make_problem(seed)
    params = jax.device_put(params, param_shardings(mesh))
    opt_state = optxform.sharded_init(tx, params)
    return params, opt_state, x, y


def batch_at(mesh, x, y, step: int, batch_size: int):
    """The ``step``-th host minibatch, split over the mesh's ``data`` axis."""
    n_batches = x.shape[0] // batch_size
    i = step % n_batches
    batch_sharding = NamedSharding(mesh, P("data", None))
    return (jax.device_put(x[i * batch_size:(i + 1) * batch_size], batch_sharding),
            jax.device_put(y[i * batch_size:(i + 1) * batch_size], batch_sharding))


def run_steps(mesh, tx, params, opt_state, x, y, steps: int, batch_size: int):
    """``steps`` training steps from ``params``/``opt_state``; the losses as numpy."""
    step = make_train_step(tx)
    losses = []
    for t in range(steps):
        xb, yb = batch_at(mesh, x, y, t, batch_size)
        params, opt_state, loss = step(params, opt_state, xb, yb)
        losses.append(loss)
    return params, opt_state, np.asarray(jnp.stack(losses))


def train(mesh, tx, steps: int, batch_size: int = 64):
    params, opt_state, x, y = setup(mesh, tx)
    return run_steps(mesh, tx, params, opt_state, x, y, steps, batch_size)


def train_zero1(steps: int, batch_size: int = 64, n_devices: int = 8):
    """Replicated params, data parallel over ``n_devices``, optimizer state ZeRO-1 sharded."""
    mesh = make_mesh((n_devices,), ("data",))
    tx = optxform.zero1(make_optimizer(steps), mesh, axis_name="data")
    params, x, y = make_problem()
    params = jax.device_put(params, NamedSharding(mesh, P()))
    return run_steps(mesh, tx, params, tx.init(params), x, y, steps, batch_size)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--mesh", default="2x4", help="data x model, e.g. 2x4 or 1x8")
    parser.add_argument("--zero1", action="store_true")
    args = parser.parse_args(argv)

    if args.zero1:
        params, opt_state, losses = train_zero1(args.steps)
        per_device = optxform.bytes_per_device(opt_state)
        print(f"ZeRO-1 optimizer state per device: {sorted(set(per_device.values()))} bytes "
              f"(whole state {sum(int(leaf.nbytes) for leaf in jax.tree.leaves(opt_state))})")
    else:
        shape = tuple(int(s) for s in args.mesh.split("x"))
        mesh = make_mesh(shape)
        tx = make_optimizer(args.steps)
        params, opt_state, losses = train(mesh, tx, args.steps)
        for name, leaf in sorted(params.items()):
            print(f"{name}: {leaf.shape} sharded as {leaf.sharding.spec}")
        grads = jax.tree.map(jnp.ones_like, params)
        print("collectives in the optimizer step:",
              compiled_collectives(make_optimizer_step(tx), params, opt_state, grads))
    for t in range(0, args.steps, max(1, args.steps // 10)):
        print(f"step {t:4d}  loss {losses[t]:.5f}")
    print(f"final loss {losses[-1]:.5f}")
    return params, opt_state, losses


if __name__ == "__main__":
    main()
