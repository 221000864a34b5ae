"""An equinox training loop on the packed path: one added line.

equinox's usual loop carries ``(model, opt_state)`` through an ``eqx.filter_jit`` step, so
the optimizer runs a few XLA kernels per leaf of the model. ``optxform.pack_model`` gives a
model whose float arrays live packed in one buffer per dtype: it calls and reads like the
model, its gradient is the packed gradient, and the loop below (equinox's own, unchanged)
then updates a handful of buffers. The one line that differs is marked ``<- the change``.

    python examples/two_line_equinox.py [--steps 300]

Trains an MLP on scikit-learn's handwritten digits and prints the loss and the test
accuracy (>= 95% expected). ``model.unpack()`` is the trained equinox model (for
``eqx.tree_serialise_leaves``, or anything else that wants the model's own tree).
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
    model = optxform.pack_model(model)  # <- the change
    optim = optxform.adam(1e-3)
    opt_state = optim.init(eqx.filter(model, eqx.is_array))

    @eqx.filter_jit(donate="all")
    def make_step(model, opt_state, x, y):
        loss, grads = eqx.filter_value_and_grad(loss_fn)(model, x, y)
        updates, opt_state = optim.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    for step, x, y in batches(x_train, y_train, steps, batch_size):
        model, opt_state, loss = make_step(model, opt_state, x, y)
        log(step, steps, loss)
    return accuracy(jax.vmap(model)(x_test), y_test)


if __name__ == "__main__":
    cli(main, __doc__)
