"""A flax nnx training loop on the packed path: one changed line (the import).

flax's guide to nnx's functional API trains with ``nnx.split`` / ``nnx.merge`` and flax's
``TrainState``, its params an ``nnx.State`` tree. ``optxform.TrainState`` has the same
methods but keeps the params packed into one buffer per dtype between steps; inside the
step ``state.params`` is the ``nnx.State`` again, which ``nnx.merge`` turns into the model.
The packed path is the import marked ``<- the change``.

    python examples/two_line_nnx.py [--steps 300]

Trains an MLP on scikit-learn's handwritten digits and prints the loss and the test
accuracy (>= 95% expected).
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import optxform
from optxform import TrainState  # <- the change (was: from flax.training.train_state import TrainState)


class MLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.layers = nnx.List([nnx.Linear(64, 128, rngs=rngs), nnx.Linear(128, 128, rngs=rngs)])
        self.head = nnx.Linear(128, 10, rngs=rngs)

    def __call__(self, x):
        for layer in self.layers:
            x = nnx.relu(layer(x))
        return self.head(x)


def digits(seed: int = 0):
    from sklearn.datasets import load_digits

    data = load_digits()
    x, y = (data.data / 16.0).astype(np.float32), data.target.astype(np.int32)
    order = np.random.default_rng(seed).permutation(len(x))
    split = int(0.8 * len(x))
    return (x[order[:split]], y[order[:split]]), (x[order[split:]], y[order[split:]])


def cross_entropy(logits, labels):
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], 1))


def main(steps: int = 300, batch_size: int = 64) -> float:
    (x_train, y_train), (x_test, y_test) = digits()
    graphdef, params = nnx.split(MLP(nnx.Rngs(0)))
    state = TrainState.create(apply_fn=graphdef.apply, params=params, tx=optxform.adam(1e-3))

    def train_step(state, x, y):
        def loss_fn(params):
            return cross_entropy(nnx.merge(graphdef, params)(x), y)
        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        return state.apply_gradients(grads=grads), loss

    train_step = jax.jit(train_step, donate_argnums=0)
    rng = np.random.default_rng(0)
    for step in range(steps):
        batch = rng.integers(0, len(x_train), batch_size)
        state, loss = train_step(state, x_train[batch], y_train[batch])
        if step % 100 == 0 or step == steps - 1:
            print(f"step {step:4d}  loss {float(loss):.4f}")
    model = nnx.merge(graphdef, state.params)
    accuracy = float(jnp.mean(jnp.argmax(model(x_test), -1) == y_test))
    print(f"test accuracy {accuracy:.3f}")
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    main(parser.parse_args().steps)
