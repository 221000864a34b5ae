"""The data of the two-line examples: scikit-learn's handwritten digits (no download)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def digits(seed: int = 0):
    """``(x_train, y_train), (x_test, y_test)``: 8x8 images as 64 floats in [0, 1], 80/20."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x, y = (data.data / 16.0).astype(np.float32), data.target.astype(np.int32)
    order = np.random.default_rng(seed).permutation(len(x))
    split = int(0.8 * len(x))
    return (x[order[:split]], y[order[:split]]), (x[order[split:]], y[order[split:]])


def cross_entropy(logits, labels):
    """Mean softmax cross-entropy of integer ``labels``."""
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], 1))


def batches(x, y, steps: int, batch_size: int = 64, seed: int = 0):
    """``steps`` random minibatches ``(step, x, y)``."""
    rng = np.random.default_rng(seed)
    for step in range(steps):
        index = rng.integers(0, len(x), batch_size)
        yield step, x[index], y[index]


def log(step: int, steps: int, loss) -> None:
    """Print the loss every 100 steps and at the last one."""
    if step % 100 == 0 or step == steps - 1:
        print(f"step {step:4d}  loss {float(loss):.4f}")


def accuracy(logits, labels) -> float:
    """Print and return the fraction of ``labels`` that ``logits`` rank first."""
    value = float(jnp.mean(jnp.argmax(logits, -1) == labels))
    print(f"test accuracy {value:.3f}")
    return value


def cli(main, doc: str) -> None:
    """``main(steps)`` with ``--steps`` from the command line."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    main(parser.parse_args().steps)
