"""A flax linen training loop on the packed path: one changed line (the import).

flax's ``TrainState`` keeps the params as a tree, so every optimizer step runs a few XLA
kernels per leaf. ``optxform.TrainState`` has the same methods but keeps the params packed
into one buffer per dtype between steps; ``state.params`` still hands the model its tree.
The loop below is flax's own; the packed path is the import marked ``<- the change``.

    python examples/two_line_linen.py [--steps 300]

Trains an MLP on scikit-learn's handwritten digits and prints the loss and the test
accuracy (>= 95% expected).
"""

from __future__ import annotations

import argparse

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import optxform
from optxform import TrainState  # <- the change (was: from flax.training.train_state import TrainState)


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        for width in (128, 128):
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(10)(x)


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
    model = MLP()
    params = model.init(jax.random.PRNGKey(0), x_train[:1])["params"]
    state = TrainState.create(apply_fn=model.apply, params=params, tx=optxform.adam(1e-3))

    def train_step(state, x, y):
        def loss_fn(params):
            return cross_entropy(state.apply_fn({"params": params}, x), y)
        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        return state.apply_gradients(grads=grads), loss

    train_step = jax.jit(train_step, donate_argnums=0)
    rng = np.random.default_rng(0)
    for step in range(steps):
        batch = rng.integers(0, len(x_train), batch_size)
        state, loss = train_step(state, x_train[batch], y_train[batch])
        if step % 100 == 0 or step == steps - 1:
            print(f"step {step:4d}  loss {float(loss):.4f}")
    logits = model.apply({"params": state.params}, x_test)
    accuracy = float(jnp.mean(jnp.argmax(logits, -1) == y_test))
    print(f"test accuracy {accuracy:.3f}")
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    main(parser.parse_args().steps)
