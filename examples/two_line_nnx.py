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

import jax
from flax import nnx

import optxform
from digits_data import accuracy, batches, cli, cross_entropy, digits, log
from optxform import TrainState  # <- the change (was: from flax.training.train_state import TrainState)


class MLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.layers = nnx.List([nnx.Linear(64, 128, rngs=rngs), nnx.Linear(128, 128, rngs=rngs)])
        self.head = nnx.Linear(128, 10, rngs=rngs)

    def __call__(self, x):
        for layer in self.layers:
            x = nnx.relu(layer(x))
        return self.head(x)


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
    for step, x, y in batches(x_train, y_train, steps, batch_size):
        state, loss = train_step(state, x, y)
        log(step, steps, loss)
    model = nnx.merge(graphdef, state.params)
    return accuracy(model(x_test), y_test)


if __name__ == "__main__":
    cli(main, __doc__)
