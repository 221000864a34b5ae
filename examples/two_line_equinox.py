"""An equinox training loop on the packed path.

equinox's usual loop carries ``(model, opt_state)`` through an ``eqx.filter_jit`` step, so
the optimizer runs a few XLA kernels per leaf. ``optxform.TrainState`` holds the model
with its float arrays packed into one buffer per dtype between steps; inside the step
``state.params`` is the model again (its activation functions and other non-array fields
kept), and ``state.apply_gradients`` takes equinox's gradients (``None`` where a leaf is
not trained). The lines that differ from the usual loop are marked ``<- the change``.

    python examples/two_line_equinox.py [--steps 300]

Trains an MLP on scikit-learn's handwritten digits and prints the loss and the test
accuracy (>= 95% expected). Against equinox's usual loop four lines differ: the state
instead of ``tx.init``, the step's arguments, ``state.params`` for the model, and
``state.apply_gradients`` for ``tx.update`` + ``eqx.apply_updates``.
"""

from __future__ import annotations

import equinox as eqx
import jax

import optxform
from digits_data import accuracy, batches, cli, cross_entropy, digits, log


def loss_fn(model, x, y):
    return cross_entropy(jax.vmap(model)(x), y)


def main(steps: int = 300, batch_size: int = 64) -> float:
    (x_train, y_train), (x_test, y_test) = digits()
    model = eqx.nn.MLP(64, 10, 128, 2, activation=jax.nn.relu, key=jax.random.PRNGKey(0))
    state = optxform.TrainState.create(params=model, tx=optxform.adam(1e-3))  # <- the change

    @eqx.filter_jit(donate="all")
    def train_step(state, x, y):  # <- the change (was: model, opt_state, x, y)
        loss, grads = eqx.filter_value_and_grad(loss_fn)(state.params, x, y)  # <- state.params
        return state.apply_gradients(grads=grads), loss  # <- the change (tx.update, apply_updates)

    for step, x, y in batches(x_train, y_train, steps, batch_size):
        state, loss = train_step(state, x, y)
        log(step, steps, loss)
    model = state.params
    return accuracy(jax.vmap(model)(x_test), y_test)


if __name__ == "__main__":
    cli(main, __doc__)
