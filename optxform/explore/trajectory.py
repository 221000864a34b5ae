"""Run several optimizers from one start point; get every path and loss curve back.

:func:`trajectories` runs ``steps`` updates of each optimizer inside one ``jax.lax.scan``.
Optimizers that differ only in float hyperparameters (``adam:lr=0.1`` and ``adam:lr=0.01``,
or ``sgd:momentum=0.5`` and ``sgd:momentum=0.9``) share a state shape and the same update
code, so they run together: their hyperparameters are stacked and the scan is ``vmap``-ed
over them, one compile for the whole group. Anything else (another alias, a different
boolean or integer option, a float that is exactly 0 in one and not in another, which can
change the state's structure) runs in a group of its own.

Each update receives ``value=``, ``grad=`` and ``value_fn=`` (the loss, its gradient and the
loss function), so line-search optimizers such as ``lbfgs`` work too.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from optxform.core import GradientTransformation, Params, apply_updates, call_update
from optxform.transforms.schedule_free import (ScaleByScheduleFreeState,
                                               schedule_free_eval_params)
from optxform.explore.progress import progress_bar
from optxform.explore.specs import OptimizerSpec, parse_optimizers

__all__ = ["Trajectory", "run_optimizer", "trajectories"]


class Trajectory(NamedTuple):
    """One optimizer's run: ``params[t]`` and ``losses[t]`` for ``t = 0 .. steps``.

    ``params`` has the structure of the start point with a leading axis of ``steps + 1``
    (row 0 is the start); ``losses[t]`` is the loss at ``params[t]``. numpy arrays.

    Attributes:
      label: the optimizer's label (``"adam(lr=0.1)"``).
      spec: the :class:`OptimizerSpec` that was run.
      params: the path: the start point's structure, each leaf with a leading axis of
        ``steps + 1`` (numpy arrays in the start point's dtype).
      losses: ``(steps + 1,)`` numpy array, the loss at each point of the path.
    """

    label: str
    spec: OptimizerSpec
    params: Any
    losses: np.ndarray

    @property
    def final_params(self) -> Params:
        """The params after the last step (the path's last row)."""
        return jax.tree.map(lambda p: p[-1], self.params)

    @property
    def final_loss(self) -> float:
        """The loss after the last step (may be nan or inf)."""
        return float(self.losses[-1])

    @property
    def best_loss(self) -> float:
        """The lowest finite loss along the path (nan if none was finite)."""
        finite = self.losses[np.isfinite(self.losses)]
        return float(finite.min()) if finite.size else float("nan")

    @property
    def diverged(self) -> bool:
        """A non-finite loss at some step, or a final loss above the starting loss."""
        return bool(not np.all(np.isfinite(self.losses)) or self.losses[-1] > self.losses[0])


def run_optimizer(tx: GradientTransformation, loss_fn: Callable, params: Params, steps: int, *,
                  record_params: bool = True, batch_fn: Callable | None = None,
                  final_loss_fn: Callable | None = None) -> tuple[Params | None, jax.Array]:
    """``steps`` updates of ``tx`` on ``loss_fn(params)`` in one ``lax.scan`` (traceable).

    Args:
      tx: a GradientTransformation.
      loss_fn: ``params -> loss`` when ``batch_fn`` is None, else ``(params, batch) -> loss``.
      params: the start point.
      steps: the number of updates.
      record_params: also return params at every step (else ``None`` for the path).
      batch_fn: ``step -> batch`` giving the data of each step (minibatches).
      final_loss_fn: ``params -> loss`` for the loss after the last step (default:
        ``loss_fn`` on the last step's batch, or ``loss_fn`` itself without batches).

    Returns:
      ``(path, losses)``: ``path`` stacks params ``0..steps`` (``None`` unless
        ``record_params``); ``losses[t]`` is the loss at step ``t`` for ``t < steps`` (on that
        step's batch) and ``losses[steps]`` is ``final_loss_fn`` at the final params. For
        Schedule-Free the final params are its evaluation point ``x``
        (:func:`schedule_free_eval_params`), as its package's ``optimizer.eval()`` gives.

    Each update gets the extra arguments ``value=``, ``grad=`` and ``value_fn=``, so line
    searches and ``lbfgs`` run too. Call it inside ``jax.jit`` to compile the whole run.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> loss_fn = lambda p: jnp.sum((p - 1.0) ** 2)
        >>> path, losses = optxform.run_optimizer(optxform.sgd(0.25), loss_fn, jnp.zeros(2),
        ...                                       steps=3)
        >>> print(path)
        [[0.    0.   ]
         [0.5   0.5  ]
         [0.75  0.75 ]
         [0.875 0.875]]
        >>> print(losses)
        [2.      0.5     0.125   0.03125]
    """
    state = tx.init(params)

    def objective(t):
        if batch_fn is None:
            return loss_fn
        batch = batch_fn(t)
        return lambda p: loss_fn(p, batch)

    def step(carry, t):
        params, state = carry
        value_fn = objective(t)
        loss, grads = jax.value_and_grad(value_fn)(params)
        extra = {"value": loss, "grad": grads, "value_fn": value_fn}
        updates, state = call_update(tx, grads, state, params, extra)
        return (apply_updates(params, updates), state), (params if record_params else None,
                                                         loss)

    (final, state), (path, losses) = jax.lax.scan(step, (params, state),
                                                  jnp.arange(steps, dtype=jnp.int32))
    final = evaluation_point(state, final)
    last = final_loss_fn if final_loss_fn is not None else objective(
        jnp.asarray(max(steps - 1, 0), jnp.int32))
    losses = jnp.concatenate([losses, jnp.asarray(last(final), losses.dtype)[None]])
    if record_params:
        path = jax.tree.map(lambda xs, x: jnp.concatenate([xs, x[None]]), path, final)
    return path, losses


def evaluation_point(state: Any, params: Params) -> Params:
    """The params a run is judged at: Schedule-Free's averaged point ``x`` (what the
    package's ``optimizer.eval()`` gives), the params themselves for every other optimizer."""
    has_schedule_free = any(
        isinstance(node, ScaleByScheduleFreeState) for node in jax.tree_util.tree_leaves(
            state, is_leaf=lambda x: isinstance(x, ScaleByScheduleFreeState)))
    return schedule_free_eval_params(state, params) if has_schedule_free else params


def _is_float_option(value) -> bool:
    return isinstance(value, float)


def group_key(spec: OptimizerSpec) -> tuple:
    """Specs with equal keys share a state shape and update code: one vmapped run."""
    kwargs = spec.kwargs()
    floats = tuple(sorted((k, v == 0.0) for k, v in kwargs.items() if _is_float_option(v)))
    others = tuple(sorted((k, repr(v)) for k, v in kwargs.items() if not _is_float_option(v)))
    return spec.alias, floats, others


def group_specs(specs: Sequence[OptimizerSpec]) -> list[list[int]]:
    """Indices of ``specs`` grouped by :func:`group_key`, in order of first appearance."""
    groups: dict[tuple, list[int]] = {}
    for i, spec in enumerate(specs):
        groups.setdefault(group_key(spec), []).append(i)
    return list(groups.values())


def varying_options(specs: Sequence[OptimizerSpec]) -> tuple[dict, dict]:
    """Split a group's options into ``(constant, varying)``; varying float32-stacked."""
    all_kwargs = [s.kwargs() for s in specs]
    constant, varying = {}, {}
    for key, value in all_kwargs[0].items():
        values = [kw[key] for kw in all_kwargs]
        if _is_float_option(value) and any(v != value for v in values):
            varying[key] = jnp.asarray(values, jnp.float32)
        else:
            constant[key] = value
    return constant, varying


def run_group(specs: Sequence[OptimizerSpec], run: Callable, *, vectorize: bool = True):
    """``run(tx)`` for each spec, ``vmap``-ed over the varying options when possible.

    ``run`` maps a transform to a pytree of arrays. Returns a list with one result per
    spec (leading axes split back). If an alias cannot take a traced hyperparameter, the
    specs run one at a time instead.
    """
    constant, varying = varying_options(specs)
    if varying and vectorize:
        def one(hparams):
            return run(specs[0].factory(**constant, **hparams))
        try:
            stacked = jax.jit(jax.vmap(one))(varying)
        except (jax.errors.ConcretizationTypeError, jax.errors.TracerBoolConversionError,
                jax.errors.TracerIntegerConversionError, TypeError):
            stacked = None
        if stacked is not None:
            return [jax.tree.map(lambda x, i=i: x[i], stacked) for i in range(len(specs))]
    results = []
    for spec in specs:
        tx = spec.build()
        results.append(jax.jit(lambda: run(tx))())
    return results


def as_start(start):
    """A start point as float arrays; a flat list of numbers becomes one array ``(n,)``."""
    if isinstance(start, (list, tuple)) and all(isinstance(v, (int, float)) for v in start):
        start = np.asarray(start, np.float64)
    return jax.tree.map(lambda x: jnp.asarray(x, jnp.result_type(float)), start)


def trajectories(loss_fn: Callable, start: Params, optimizers: Iterable[str | OptimizerSpec],
                 steps: int = 100, *, vectorize: bool = True,
                 progress: bool = False) -> dict[str, Trajectory]:
    """Run every optimizer for ``steps`` updates from ``start`` on ``loss_fn(params)``.

    Args:
      loss_fn: ``params -> scalar``, e.g. ``optxform.rosenbrock``.
      start: the start point (any pytree of float arrays).
      optimizers: names/specs such as ``"adam:lr=0.1"`` (see ``parse_optimizer``).
      steps: the number of updates.
      vectorize: ``vmap`` optimizers that share a state shape (else run one by one).
      progress: show a progress bar over the compiled groups (needs tqdm).

    Returns:
      A dict ``label -> Trajectory`` in the order given.

    Example::

        >>> import optxform
        >>> runs = optxform.trajectories(optxform.rosenbrock, [-1.5, 2.0],
        ...                              ["sgd:lr=1e-3", "adam:lr=0.1"], steps=50)
        >>> sorted(runs)
        ['adam(lr=0.1)', 'sgd(lr=0.001)']
    """
    if int(steps) < 1:
        raise ValueError(f"Invalid steps: {steps!r} (steps must be >= 1)")
    specs = parse_optimizers(optimizers)
    start = as_start(start)

    def run(tx):
        return run_optimizer(tx, loss_fn, start, int(steps))

    results: list[Any] = [None] * len(specs)
    groups = group_specs(specs)
    for group in progress_bar(groups, total=len(groups), desc="optimizers", enabled=progress):
        outs = run_group([specs[i] for i in group], run, vectorize=vectorize)
        for i, out in zip(group, outs):
            results[i] = out
    return {spec.label: Trajectory(spec.label, spec, jax.tree.map(np.asarray, path),
                                   np.asarray(losses))
            for spec, (path, losses) in zip(specs, results)}
