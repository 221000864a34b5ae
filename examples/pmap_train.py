"""Data-parallel training with ``jax.pmap``: one model copy per device, gradients averaged.

Each device gets an equal slice of the batch, computes the gradient of the mean loss over
its slice, and ``jax.lax.pmean`` averages the gradients across devices. Every device then
runs the same optimizer update on the same averaged gradient, so the params and the
optimizer state stay replicated (identical on every device) without ever being sent
between devices. The averaged gradient is the full-batch gradient, so the run follows the
same trajectory as one device training on the whole batch (up to float rounding of the
cross-device sum); ``--check`` verifies that.

    python examples/pmap_train.py [--steps 200] [--devices 8] [--check]

On a CPU-only machine, ask XLA for several host devices first::

    XLA_FLAGS=--xla_force_host_platform_device_count=8 python examples/pmap_train.py --check

The optimizer is a chain: global-norm clipping, then AdamW with a warm-up + cosine
learning-rate schedule.
"""

from __future__ import annotations

import argparse
import functools
import os

if __name__ == "__main__" and "xla_force_host_platform_device_count" not in os.environ.get(
        "XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + " --xla_force_host_platform_device_count=8").strip()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import optxform  # noqa: E402

AXIS = "batch"


def make_problem(seed: int = 0, n: int = 512, d_in: int = 16, d_hidden: int = 32,
                 d_out: int = 4):
    """A teacher-student regression: ``(params, x, y)`` as numpy arrays."""
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


def make_optimizer(total_steps: int, peak_lr: float = 1e-2):
    schedule = optxform.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=peak_lr, warmup_steps=max(1, total_steps // 10),
        decay_steps=total_steps, end_value=peak_lr * 1e-2)
    return optxform.chain(
        optxform.clip_by_global_norm(1.0),
        optxform.adamw(learning_rate=schedule, weight_decay=1e-2),
    )


def batch_at(x, y, step: int, batch_size: int):
    """The ``step``-th minibatch (cycling through the data in order)."""
    start = (step * batch_size) % len(x)
    idx = (np.arange(batch_size) + start) % len(x)
    return x[idx], y[idx]


def replicate(tree, n: int):
    """Stack ``n`` copies of every leaf along a new leading (device) axis."""
    return jax.tree.map(lambda a: jnp.broadcast_to(jnp.asarray(a), (n,) + jnp.shape(a)), tree)


def unreplicate(tree):
    """The copy held by the first device."""
    return jax.tree.map(lambda a: a[0], tree)


def split_batch(a, n: int):
    """``(B, ...) -> (n, B // n, ...)``: one equal slice per device."""
    if a.shape[0] % n:
        raise ValueError(f"batch size {a.shape[0]} is not divisible by {n} devices")
    return a.reshape((n, a.shape[0] // n) + a.shape[1:])


def make_pmap_step(tx, axis_name: str = AXIS, devices=None):
    """A pmapped step: per-device grads, ``pmean`` over devices, the same update everywhere."""

    @functools.partial(jax.pmap, axis_name=axis_name, devices=devices)
    def step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        grads = jax.lax.pmean(grads, axis_name)   # the full-batch gradient on every device
        loss = jax.lax.pmean(loss, axis_name)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optxform.apply_updates(params, updates), opt_state, loss

    return step


def train_pmap(tx, params, x, y, steps: int, batch_size: int, n_devices: int):
    """Train with ``n_devices``-way pmap; returns (params, losses) of device 0."""
    devices = jax.local_devices()[:n_devices]
    params = replicate(params, n_devices)
    opt_state = jax.pmap(tx.init, devices=devices)(params)   # replicated state
    step = make_pmap_step(tx, devices=devices)
    losses = []
    for t in range(steps):
        xb, yb = batch_at(x, y, t, batch_size)
        params, opt_state, loss = step(params, opt_state, split_batch(xb, n_devices),
                                       split_batch(yb, n_devices))
        losses.append(loss[0])
    return unreplicate(params), np.asarray(jnp.stack(losses))


def train_single(tx, params, x, y, steps: int, batch_size: int):
    """The reference: one device, the whole batch."""

    @jax.jit
    def step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optxform.apply_updates(params, updates), opt_state, loss

    params = jax.tree.map(jnp.asarray, params)
    opt_state = tx.init(params)
    losses = []
    for t in range(steps):
        xb, yb = batch_at(x, y, t, batch_size)
        params, opt_state, loss = step(params, opt_state, xb, yb)
        losses.append(loss)
    return params, np.asarray(jnp.stack(losses))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--devices", type=int, default=jax.local_device_count())
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--check", action="store_true",
                        help="also train on one device and compare the params")
    args = parser.parse_args(argv)

    params, x, y = make_problem()
    tx = make_optimizer(args.steps)
    final, losses = train_pmap(tx, params, x, y, args.steps, args.batch_size, args.devices)
    for t in range(0, args.steps, max(1, args.steps // 10)):
        print(f"step {t:4d}  loss {losses[t]:.5f}")
    print(f"final loss {losses[-1]:.5f} on {args.devices} devices")
    if args.check:
        ref, _ = train_single(tx, params, x, y, args.steps, args.batch_size)
        diff = max(float(jnp.max(jnp.abs(a - b))) for a, b in
                   zip(jax.tree.leaves(final), jax.tree.leaves(ref)))
        print(f"max |params(pmap) - params(one device)| = {diff:.2e}")
    return final, losses


if __name__ == "__main__":
    main()
