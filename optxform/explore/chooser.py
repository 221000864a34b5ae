"""Race every (optimizer, learning rate) pair on your problem in one compiled run each.

:func:`choose` answers "which optimizer, which learning rate?" by measurement. For each
optimizer it compiles ONE function: ``vmap`` over the learning-rate grid of a ``lax.scan``
training loop, with the optimizer wrapped in ``inject_hyperparams`` so the learning rate is
an array living in the optimizer state (the vmapped axis). All learning rates of an
optimizer therefore train side by side, in lock-step, from the same start point on the same
batches. The result is a ranked table::

    >>> result = optxform.choose(loss_fn, params, data,
    ...                          optimizers=["sgd", "momentum", "adam"],
    ...                          learning_rates=[1e-3, 1e-2, 1e-1], steps=200)
    >>> print(result)              # ranked: best final loss first, diverged runs last
    >>> result.best.optimizer, result.best.learning_rate

``optxform.viz.plot_choice(result, "choice.png")`` draws final loss against learning rate
for each optimizer, and the loss curves of the best runs.

Ranking: runs that did not diverge come first, by final loss; a run *diverged* when some
loss was not finite or the final loss ended above the starting loss. When every run
diverged, ``result.converged`` is False and ``result.best`` is merely the least bad run.
:func:`iter_choose` is the same race one optimizer at a time: it yields the ranked result
so far after each optimizer, so an interrupted race still has its finished rows.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable, Iterable, Iterator, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from optxform.core import Params
from optxform.explore.progress import progress_bar
from optxform.explore.specs import OptimizerSpec, parse_optimizers
from optxform.explore.trajectory import as_start, run_optimizer
from optxform import wrappers as _wrappers

__all__ = ["ChoiceResult", "ChoiceRow", "choose", "check_learning_rates", "check_start_loss",
           "iter_choose"]

DEFAULT_OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw",
                      "lion")
DEFAULT_LEARNING_RATES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)


def check_learning_rates(learning_rates: Iterable[Any],
                         name: str = "learning_rates") -> tuple[float, ...]:
    """A non-empty sequence of distinct, finite, positive numbers -> a tuple of floats.

    Args:
      learning_rates: the values to check, any iterable of Python or numpy numbers (not a
        string).
      name: what to call them in the error message.

    Returns:
      The values as a tuple of Python floats, in the order given.

    Raises:
      ValueError: naming ``name`` and the bad value, when the sequence is empty, has a
        value that is not a number, not finite or not positive, or repeats a value.

    Example::

        >>> import optxform
        >>> optxform.check_learning_rates([1e-3, 0.1, 1])
        (0.001, 0.1, 1.0)
        >>> optxform.check_learning_rates([0.1, -1])
        Traceback (most recent call last):
        ...
        ValueError: Invalid learning_rates: -1 (learning_rates must be finite and > 0)
    """
    if isinstance(learning_rates, (str, bytes)) or not isinstance(learning_rates, Iterable):
        raise ValueError(f"Invalid {name}: {learning_rates!r} ({name} must be a list of "
                         "positive numbers)")
    values = list(learning_rates)
    if not values:
        raise ValueError(f"Invalid {name}: empty ({name} must list at least one value)")
    out = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating,
                                                             np.integer)):
            raise ValueError(f"Invalid {name}: {value!r} is not a number")
        if not (math.isfinite(float(value)) and float(value) > 0.0):
            raise ValueError(f"Invalid {name}: {value!r} ({name} must be finite and > 0)")
        out.append(float(value))
    if len(set(out)) != len(out):
        raise ValueError(f"Invalid {name}: {values!r} has repeated values")
    return tuple(out)


class ChoiceRow(NamedTuple):
    """One (optimizer, learning rate) run of :func:`choose`.

    ``time_s`` is the wall time of the compiled run that trained all of this optimizer's
    learning rates together (compilation excluded; ``compile_s`` is that).

    Attributes:
      rank: the 1-based place in the ranking (runs that did not diverge first, then by
        final loss).
      optimizer: the optimizer's label (``"adam"``, ``"sgd(momentum=0.9)"``).
      learning_rate: the learning rate of this run, a Python float.
      final_loss: the loss at the final params, on all the data (may be nan or inf).
      best_loss: the lowest finite loss seen during the run (nan if none was finite).
      diverged: whether some loss was not finite or the final loss ended above the
        starting loss; :attr:`fate` says which.
      time_s: seconds of the compiled run shared by the optimizer's learning rates.
      compile_s: seconds spent compiling that run.
    """

    rank: int
    optimizer: str
    learning_rate: float
    final_loss: float
    best_loss: float
    diverged: bool
    time_s: float
    compile_s: float

    @property
    def fate(self) -> str:
        """``"converged"`` (ended at or below the start loss), ``"non-finite"`` (the loss
        became nan or inf) or ``"rose"`` (finite, but ended above the start loss)."""
        if not self.diverged:
            return "converged"
        return "rose" if math.isfinite(self.final_loss) else "non-finite"


@dataclasses.dataclass
class ChoiceResult:
    """The ranked table of :func:`choose` and the loss curve of every run.

    Attributes:
      rows: ranked :class:`ChoiceRow` s, best first.
      curves: ``(optimizer label, learning rate) -> losses`` (``steps + 1`` values; the
        last is the loss at the final params, on all the data).
      initial_loss: the loss at the start point.
      steps: the number of updates each run made.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> loss_fn = lambda p: jnp.sum((p - 1.0) ** 2)
        >>> result = optxform.choose(loss_fn, jnp.zeros(3), optimizers=["sgd"],
        ...                          learning_rates=[0.1, 1.5], steps=20)
        >>> [(row.learning_rate, row.fate) for row in result.rows]
        [(0.1, 'converged'), (1.5, 'rose')]
        >>> result.converged, result.initial_loss, result.curves[("sgd", 0.1)].shape
        (True, 3.0, (21,))
        >>> print(result.table("csv").splitlines()[0])
        rank,optimizer,lr,final loss,best loss,diverged,time (s)
    """

    rows: list[ChoiceRow]
    curves: dict[tuple[str, float], np.ndarray]
    initial_loss: float
    steps: int

    @property
    def best(self) -> ChoiceRow:
        """The first row; when nothing converged (see :attr:`converged`) it diverged too."""
        return self.rows[0]

    @property
    def converged(self) -> bool:
        """Whether at least one run did not diverge."""
        return any(not row.diverged for row in self.rows)

    def optimizers(self) -> list[str]:
        """Optimizer labels in the order they were given."""
        return list(dict.fromkeys(label for label, _ in self.curves))

    def best_per_optimizer(self) -> list[ChoiceRow]:
        """Each optimizer's best row, ranked."""
        seen, out = set(), []
        for row in self.rows:
            if row.optimizer not in seen:
                seen.add(row.optimizer)
                out.append(row)
        return out

    def notes(self) -> list[str]:
        """Warnings worth reading: a best rate at the edge of its grid, all runs diverged."""
        notes = []
        for label in self.optimizers():
            grid = sorted(lr for name, lr in self.curves if name == label)
            rows = [r for r in self.rows if r.optimizer == label]
            best = rows[0]
            if all(r.diverged for r in rows):
                notes.append(f"{label}: every learning rate diverged; try smaller ones")
            elif len(grid) > 1 and best.learning_rate == grid[-1]:
                notes.append(f"{label}: the best rate {best.learning_rate:g} is the largest "
                             "tried; larger ones may do better")
            elif len(grid) > 1 and best.learning_rate == grid[0]:
                notes.append(f"{label}: the best rate {best.learning_rate:g} is the smallest "
                             "tried; smaller ones may do better")
        return notes

    def table(self, fmt: str = "text", limit: int | None = None) -> str:
        """The ranked table as aligned ``"text"``, ``"markdown"`` or ``"csv"``."""
        header = ["rank", "optimizer", "lr", "final loss", "best loss", "diverged", "time (s)"]
        rows = [[str(r.rank), r.optimizer, f"{r.learning_rate:g}", f"{r.final_loss:.4g}",
                 f"{r.best_loss:.4g}", "yes" if r.diverged else "no", f"{r.time_s:.3f}"]
                for r in self.rows[:limit]]
        return format_table(header, rows, fmt)

    def __str__(self) -> str:
        return self.table()


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]], fmt: str = "text") -> str:
    """Format string cells as aligned text, a markdown table, or csv."""
    if fmt == "csv":
        return "\n".join(",".join(cells) for cells in [list(header), *rows])
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    if fmt == "markdown":
        def line(cells):
            return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
        return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                          *map(line, rows)])
    if fmt != "text":
        raise ValueError(f"Invalid fmt: {fmt!r} (fmt must be 'text', 'markdown' or 'csv')")
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
                     for cells in [header, *rows])


def _batching(loss_fn, data, batch_size, seed):
    """``(loss of params on the step's data, batch_fn or None, loss on all the data)``."""
    if data is None:
        return loss_fn, None, loss_fn
    full = lambda p: loss_fn(p, data)  # noqa: E731
    if batch_size is None:
        return full, None, full
    sizes = {np.shape(x)[0] for x in jax.tree.leaves(data)}
    if len(sizes) != 1:
        raise ValueError("batch_size needs every data array to share its first dimension")
    n = sizes.pop()
    if not 1 <= int(batch_size) <= n:
        raise ValueError(f"Invalid batch_size: {batch_size!r} (must be in [1, {n}])")
    key = jax.random.PRNGKey(seed)

    def batch_fn(t):
        idx = jax.random.randint(jax.random.fold_in(key, t), (int(batch_size),), 0, n)
        return jax.tree.map(lambda x: x[idx], data)

    return loss_fn, batch_fn, full


def _rank(rows: list[ChoiceRow]) -> list[ChoiceRow]:
    def key(row):
        loss = row.final_loss if math.isfinite(row.final_loss) else math.inf
        return (row.diverged, loss, row.optimizer, row.learning_rate)
    return [row._replace(rank=i + 1) for i, row in enumerate(sorted(rows, key=key))]


def check_start_loss(loss: float) -> float:
    """``loss`` if finite; else a ValueError saying the start point itself is broken."""
    if not math.isfinite(loss):
        raise ValueError(f"the loss is {loss} at the start point, before any step: check the "
                         "params, the data and the loss function (no learning rate can fix "
                         "this)")
    return loss


def choose(loss_fn: Callable, params: Params, data: Any = None,
           optimizers: Iterable[str | OptimizerSpec] = DEFAULT_OPTIMIZERS,
           learning_rates: Sequence[float] | Mapping[str, Sequence[float]] =
           DEFAULT_LEARNING_RATES, steps: int = 200, *, batch_size: int | None = None,
           seed: int = 0, progress: bool = False) -> ChoiceResult:
    """Train every (optimizer, learning rate) pair and rank them by final loss.

    Args:
      loss_fn: ``loss_fn(params, data) -> scalar`` (or ``loss_fn(params)`` if ``data`` is
        None).
      params: the start point, shared by every run.
      data: a pytree of arrays passed to ``loss_fn`` (full batch), or None.
      optimizers: names or specs (``"adam"``, ``"sgd:momentum=0.9"``). A spec that sets
        its own learning rate runs at that rate only; the others run the whole grid.
      learning_rates: the grid: a list of positive numbers, or a dict from optimizer label
        (or name) to its own list.
      steps: updates per run.
      batch_size: if set, each step uses a random minibatch (same for every run) of this
        many rows of ``data``; the final loss is still measured on all of ``data``.
      seed: the minibatch seed.
      progress: show a progress bar over the optimizers (needs tqdm).

    Returns:
      A :class:`ChoiceResult`; ``print(result)`` shows the ranked table.

    Raises:
      ValueError: for bad arguments, or a loss that is not finite at the start point.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> loss_fn = lambda p: jnp.sum((p - 1.0) ** 2)
        >>> result = optxform.choose(loss_fn, jnp.zeros(3), optimizers=["sgd", "adam"],
        ...                          learning_rates=[0.01, 0.1, 1.5], steps=20)
        >>> result.best.optimizer, result.best.learning_rate
        ('sgd', 0.1)
        >>> [(row.optimizer, row.learning_rate) for row in result.rows if row.diverged]
        [('sgd', 1.5)]
    """
    result = None
    for result in iter_choose(loss_fn, params, data, optimizers, learning_rates, steps,
                              batch_size=batch_size, seed=seed, progress=progress):
        pass
    assert result is not None  # parse_optimizers rejects an empty list
    return result


def iter_choose(loss_fn: Callable, params, data: Any = None,
                optimizers: Iterable[str | OptimizerSpec] = DEFAULT_OPTIMIZERS,
                learning_rates: Sequence[float] | Mapping[str, Sequence[float]] =
                DEFAULT_LEARNING_RATES, steps: int = 200, *, batch_size: int | None = None,
                seed: int = 0, progress: bool = False) -> Iterator[ChoiceResult]:
    """:func:`choose`, yielding the ranked result so far after each optimizer's race.

    Takes the arguments of :func:`choose`. The last result yielded is what :func:`choose`
    returns; stopping early (Ctrl-C, a time budget) keeps the optimizers that finished::

        for result in optxform.explore.iter_choose(loss_fn, params, data, ["sgd", "adam"]):
            print(len(result.optimizers()), "optimizers done; best so far:", result.best)
    """
    if int(steps) < 1:
        raise ValueError(f"Invalid steps: {steps!r} (steps must be >= 1)")
    specs = parse_optimizers(optimizers)
    if isinstance(learning_rates, Mapping):
        grids = {}
        for spec in specs:
            grid = learning_rates.get(spec.label, learning_rates.get(spec.name))
            if grid is None and spec.learning_rate is None:
                raise ValueError(f"learning_rates has no entry for optimizer {spec.label!r}")
            grids[spec.label] = grid
    else:
        grids = {spec.label: learning_rates for spec in specs}
    params = as_start(params)
    step_loss, batch_fn, full_loss = _batching(loss_fn, data, batch_size, seed)
    initial_loss = check_start_loss(float(jax.jit(full_loss)(params)))

    rows, curves = [], {}
    for spec in progress_bar(specs, total=len(specs), desc="optimizers", enabled=progress):
        if spec.learning_rate is not None:
            lrs = check_learning_rates([spec.learning_rate], f"learning rate of {spec.label}")
        else:
            lrs = check_learning_rates(grids[spec.label])
        losses, run_s, compile_s = _race(spec, lrs, step_loss, params, int(steps), batch_fn,
                                         full_loss)
        for lr, curve in zip(lrs, losses):
            finite = curve[np.isfinite(curve)]
            diverged = bool(finite.size < curve.size or curve[-1] > initial_loss)
            rows.append(ChoiceRow(0, spec.label, lr, float(curve[-1]),
                                  float(finite.min()) if finite.size else math.nan,
                                  diverged, run_s, compile_s))
            curves[(spec.label, lr)] = curve
        yield ChoiceResult(_rank(rows), dict(curves), initial_loss, int(steps))


def _race(spec: OptimizerSpec, lrs: tuple[float, ...], step_loss, params, steps, batch_fn,
          full_loss) -> tuple[np.ndarray, float, float]:
    """One compile: the scan over steps, vmapped over ``lrs`` via inject_hyperparams."""
    options = spec.kwargs()
    options.pop("learning_rate", None)
    factory = _wrappers.inject_hyperparams(spec.factory)

    def train(lr):
        tx = factory(learning_rate=lr, **options)
        _, losses = run_optimizer(tx, step_loss, params, steps, record_params=False,
                                  batch_fn=batch_fn, final_loss_fn=full_loss)
        return losses

    grid = jnp.asarray(lrs, jnp.float32)
    start = time.perf_counter()
    compiled = jax.jit(jax.vmap(train)).lower(grid).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    losses = jax.block_until_ready(compiled(grid))
    run_s = time.perf_counter() - start
    return np.asarray(losses, np.float64), run_s, compile_s
