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

import flax.linen as nn
import jax

import optxform
from digits_data import accuracy, batches, cli, cross_entropy, digits, log
from optxform import TrainState  # <- the change (was: from flax.training.train_state import TrainState)


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        for width in (128, 128):
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(10)(x)


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
    for step, x, y in batches(x_train, y_train, steps, batch_size):
        state, loss = train_step(state, x, y)
        log(step, steps, loss)
    return accuracy(model.apply({"params": state.params}, x_test), y_test)


if __name__ == "__main__":
    cli(main, __doc__)
