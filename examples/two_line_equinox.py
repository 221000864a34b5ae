"""An equinox training loop on the packed path.

equinox's usual loop carries ``(model, opt_state)`` through an ``eqx.filter_jit`` step, so
the optimizer runs a few XLA kernels per leaf. ``optxform.TrainState`` holds the model
with its float arrays packed into one buffer per dtype between steps; inside the step
``state.params`` is the model again (its activation functions and other non-array fields
kept), and ``state.apply_gradients`` takes equinox's gradients (``None`` where a leaf is
not trained). The lines that differ from the usual loop are marked ``<- the change``.

    python examples/two_line_equinox.py [--steps 300]

Trains an MLP on scikit-learn's handwritten digits and prints the loss and the test
accuracy (>= 95% expected).
"""

from __future__ import annotations

import argparse

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import optxform


def digits(seed: int = 0):
    from sklearn.datasets import load_digits

    data = load_digits()
    x, y = (data.data / 16.0).astype(np.float32), data.target.astype(np.int32)
    order = np.random.default_rng(seed).permutation(len(x))
    split = int(0.8 * len(x))
    return (x[order[:split]], y[order[:split]]), (x[order[split:]], y[order[split:]])


def loss_fn(model, x, y):
    logits = jax.vmap(model)(x)
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1))


def main(steps: int = 300, batch_size: int = 64) -> float:
    (x_train, y_train), (x_test, y_test) = digits()
    model = eqx.nn.MLP(64, 10, 128, 2, activation=jax.nn.relu, key=jax.random.PRNGKey(0))
    state = optxform.TrainState.create(params=model, tx=optxform.adam(1e-3))  # <- the change

    @eqx.filter_jit(donate="all")
    def train_step(state, x, y):
        loss, grads = eqx.filter_value_and_grad(loss_fn)(state.params, x, y)
        return state.apply_gradients(grads=grads), loss  # <- the change

    rng = np.random.default_rng(0)
    for step in range(steps):
        batch = rng.integers(0, len(x_train), batch_size)
        state, loss = train_step(state, x_train[batch], y_train[batch])
        if step % 100 == 0 or step == steps - 1:
            print(f"step {step:4d}  loss {float(loss):.4f}")
    model = state.params
    accuracy = float(jnp.mean(jnp.argmax(jax.vmap(model)(x_test), -1) == y_test))
    print(f"test accuracy {accuracy:.3f}")
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    main(parser.parse_args().steps)
