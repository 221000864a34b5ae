"""The learning-rate range test (Smith 2017): sweep the rate up, watch the loss, pick one.

Train once while the learning rate grows exponentially from ``min_lr`` to ``max_lr``, one
step per value; record the loss after each step against the rate used for it; smooth it
with a bias-corrected exponential moving average; stop once the smoothed loss exceeds
``stop_factor`` times its best so far (or is not finite). The loss first barely moves
(rate too small), then falls fast, then blows up. The suggestion is the rate where the
smoothed loss falls fastest per decade of learning rate (steepest descent of the curve,
searched below the rate of the minimum);
``min_loss_lr / 10`` is the other common rule of thumb and is reported too.

Reference: L. N. Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017
(section 3.3, "How can one estimate reasonable minimum and maximum boundary values?").
The whole sweep runs as one compiled ``lax.scan``; the rate comes from a schedule passed as
the optimizer's ``learning_rate``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from optxform.core import Params
from optxform.explore.chooser import _batching, check_start_loss
from optxform.explore.specs import OptimizerSpec, parse_optimizer
from optxform.explore.trajectory import as_start, run_optimizer

__all__ = ["LRRangeResult", "lr_range_test"]


@dataclasses.dataclass
class LRRangeResult:
    """What :func:`lr_range_test` measured, truncated where the loss blew up.

    Attributes:
      learning_rates: the rate used at each step.
      losses: the loss after each step.
      smoothed: the bias-corrected moving average of ``losses``.
      suggestion: the rate where ``smoothed`` falls fastest per decade of rate.
      min_loss_lr: the rate at the minimum of ``smoothed``.
      stopped_early: whether the sweep was cut before ``max_lr`` because the loss blew up.
      optimizer: the optimizer's label.

    All arrays are float64 numpy arrays of the same length, one entry per step kept.
    ``str(result)`` summarizes it in one line.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> loss_fn = lambda p: jnp.sum((p - 1.0) ** 2)
        >>> result = optxform.lr_range_test(loss_fn, jnp.zeros(3), min_lr=1e-3, max_lr=1.0,
        ...                                 steps=20)
        >>> result.learning_rates[[0, -1]], result.losses.shape, result.stopped_early
        (array([0.001, 1.   ]), (20,), False)
        >>> print(result)
        lr range test (sgd, 20 steps, 0.001 .. 1): suggested learning rate 0.162 (steepest
        descent); min loss at 1 (/10 = 0.1)
    """

    learning_rates: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggestion: float
    min_loss_lr: float
    stopped_early: bool
    optimizer: str

    def __str__(self) -> str:
        return (f"lr range test ({self.optimizer}, {len(self.learning_rates)} steps, "
                f"{self.learning_rates[0]:.3g} .. {self.learning_rates[-1]:.3g}): "
                f"suggested learning rate {self.suggestion:.3g} (steepest descent); "
                f"min loss at {self.min_loss_lr:.3g} (/10 = {self.min_loss_lr / 10:.3g})")


def _smooth(losses: np.ndarray, beta: float) -> np.ndarray:
    out, avg = np.empty_like(losses), 0.0
    for i, loss in enumerate(losses):
        avg = beta * avg + (1.0 - beta) * loss
        out[i] = avg / (1.0 - beta ** (i + 1))
    return out


def analyze_sweep(learning_rates: np.ndarray, losses: np.ndarray, *, smoothing: float = 0.9,
                  stop_factor: float = 4.0, optimizer: str = "") -> LRRangeResult:
    """Smooth, cut at the blow-up and pick the suggestion from a recorded sweep."""
    learning_rates = np.asarray(learning_rates, np.float64)
    losses = np.asarray(losses, np.float64)
    finite = np.isfinite(losses)
    end = len(losses) if finite.all() else int(np.argmin(finite))
    smoothed = _smooth(losses[:end], smoothing)
    for i in range(1, end):
        best = smoothed[:i].min()  # "above stop_factor x best", for losses of either sign
        if smoothed[i] - best > (stop_factor - 1.0) * abs(best):
            end = i
            break
    if end < 2:
        raise ValueError("the loss blew up at the first step: lower min_lr")
    lrs, losses, smoothed = learning_rates[:end], losses[:end], smoothed[:end]
    slope = np.gradient(smoothed, np.log10(lrs))
    lowest = int(np.argmin(smoothed))
    # The steepest descent on the way down to the minimum (not in the noise past it).
    steepest = int(np.argmin(slope[:lowest + 1]))
    return LRRangeResult(lrs, losses, smoothed, float(lrs[steepest]), float(lrs[lowest]),
                         end < len(learning_rates), optimizer)


def lr_range_test(loss_fn: Callable, params: Params, data: Any = None,
                  optimizer: str | OptimizerSpec = "sgd", *, min_lr: float = 1e-6,
                  max_lr: float = 10.0, steps: int = 100, smoothing: float = 0.9,
                  stop_factor: float = 4.0, batch_size: int | None = None,
                  seed: int = 0) -> LRRangeResult:
    """Sweep the learning rate of ``optimizer`` from ``min_lr`` to ``max_lr`` (Smith 2017).

    Args:
      loss_fn: ``loss_fn(params, data) -> scalar`` (``loss_fn(params)`` if data is None).
      params: the start point.
      data: a pytree of arrays (full batch), or None.
      optimizer: a name or spec; its own learning rate, if any, is replaced by the sweep.
      min_lr, max_lr: the ends of the exponential sweep.
      steps: the number of steps (rates) in the sweep.
      smoothing: the moving-average factor of the loss (0 = no smoothing).
      stop_factor: stop once the smoothed loss exceeds this times its best.
      batch_size: random minibatches of this many rows (default: full batch).
      seed: the minibatch seed.

    Returns:
      An :class:`LRRangeResult`; ``result.suggestion`` is the suggested rate and
        ``optxform.viz.plot_lr_range(result, "lr.png")`` draws the curve.

    Raises:
      ValueError: for bad arguments, a loss that is not finite at the start point, or a
        loss that blew up at the first step (then ``min_lr`` is too large).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> loss_fn = lambda p: jnp.sum((p - 1.0) ** 2)
        >>> result = optxform.lr_range_test(loss_fn, jnp.zeros(3), min_lr=1e-3, max_lr=10.0,
        ...                                 steps=40)
        >>> result.stopped_early, len(result.learning_rates)  # SGD diverges above lr = 1
        (True, 37)
        >>> round(result.suggestion, 3)
        0.089
    """
    if not (math.isfinite(min_lr) and math.isfinite(max_lr) and 0.0 < min_lr < max_lr):
        raise ValueError(f"Invalid min_lr/max_lr: {min_lr!r}, {max_lr!r} "
                         "(need 0 < min_lr < max_lr)")
    if int(steps) < 3:
        raise ValueError(f"Invalid steps: {steps!r} (steps must be >= 3)")
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"Invalid smoothing: {smoothing!r} (must be in [0, 1))")
    if not stop_factor > 1.0:
        raise ValueError(f"Invalid stop_factor: {stop_factor!r} (must be > 1)")
    spec = parse_optimizer(optimizer)
    steps = int(steps)
    log_ratio = math.log(max_lr / min_lr)

    def schedule(count):
        fraction = jnp.asarray(count, jnp.float32) / float(steps - 1)
        return min_lr * jnp.exp(log_ratio * fraction)

    step_loss, batch_fn, full_loss = _batching(loss_fn, data, batch_size, seed)
    tx = spec.build(learning_rate=schedule)
    params = as_start(params)

    @jax.jit
    def sweep():
        _, losses = run_optimizer(tx, step_loss, params, steps, record_params=False,
                                  batch_fn=batch_fn, final_loss_fn=full_loss)
        return losses

    losses = np.asarray(sweep(), np.float64)
    check_start_loss(float(losses[0]))  # a broken start is not the learning rate's fault
    lrs = min_lr * np.exp(log_ratio * np.arange(steps) / (steps - 1))
    # losses[t + 1] is the loss after the step taken with lrs[t].
    return analyze_sweep(lrs, losses[1:], smoothing=smoothing, stop_factor=stop_factor,
                         optimizer=spec.label)
