"""The public API used the way users write it, for a type checker (not collected by pytest).

tests/test_typing.py runs mypy with strict settings on this file: every call below must
type-check against optxform's annotations, so a wrong or missing hint fails the test. The
code is also valid at runtime; ``main`` runs a few steps so it stays honest.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import optxform
from optxform import GradientTransformation
from optxform.core import OptState, Params, Schedule

Tree = dict[str, jax.Array]


def loss(params: Tree) -> jax.Array:
    return jnp.sum(params["w"] ** 2) + jnp.sum(params["b"] ** 2)


def aliases(schedule: Schedule) -> list[GradientTransformation]:
    """Every alias, with floats, arrays, schedules, dtypes and flags where it takes them."""
    return [
        optxform.sgd(0.1, momentum=0.9, nesterov=True, weight_decay=1e-4),
        optxform.sgd(schedule),
        optxform.adam(1e-3, b1=0.9, b2=0.999, eps=1e-8, amsgrad=True, mu_dtype=jnp.bfloat16),
        optxform.adamw(schedule, weight_decay=jnp.asarray(0.01), nu_dtype="float32"),
        optxform.adamax(2e-3), optxform.nadam(decoupled_weight_decay=True),
        optxform.radam(weight_decay=0.1), optxform.sparse_adam(),
        optxform.adagrad(0.01, lr_decay=0.0), optxform.adadelta(rho=0.95),
        optxform.rmsprop(alpha=0.9, momentum=0.5, centered=True),
        optxform.rprop(etas=(0.5, 1.2), step_sizes=(1e-6, 50.0)),
        optxform.asgd(t0=100.0), optxform.lion(b2=0.98), optxform.adafactor(eps=(None, 1e-3)),
        optxform.lbfgs(max_iter=5, max_eval=None, history_size=10),
    ]


def schedules() -> list[Schedule]:
    return [
        optxform.constant_schedule(0.1),
        optxform.linear_schedule(1.0, 0.0, transition_steps=100),
        optxform.exponential_decay(1.0, 10, 0.5, end_value=None),
        optxform.cosine_decay_schedule(1.0, decay_steps=100, alpha=0.1),
        optxform.warmup_cosine_decay_schedule(0.0, 1.0, 10, 100),
        optxform.piecewise_constant_schedule(1.0, {10: 0.1}),
        optxform.step_decay(1.0, step_size=10, gamma=0.5),
        optxform.multistep_decay(1.0, [10, 20]),
        optxform.one_cycle(100, max_value=1.0),
        optxform.cyclic(0.1, 1.0, step_size_up=10, scale_fn=None),
        optxform.cosine_annealing(1.0, t_max=50),
    ]


def custom_chain(schedule: Schedule) -> GradientTransformation:
    return optxform.chain(
        optxform.clip_by_global_norm(1.0),
        optxform.scale_by_adam(b1=0.9, eps_root=0.0),
        optxform.add_decayed_weights(1e-4),
        optxform.scale_by_learning_rate(schedule),
    )


def train(tx: GradientTransformation, params: Tree, steps: int) -> tuple[Tree, OptState]:
    state = tx.init(params)
    for _ in range(steps):
        grads = jax.grad(loss)(params)
        updates, state = tx.update(grads, state, params)
        params = optxform.apply_updates(params, updates)
    return params, state


def checkpoint(state: OptState, template: OptState) -> OptState:
    flat: dict[str, np.ndarray] = optxform.state_dict(state)
    state = optxform.load_state_dict(template, flat)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "opt.state"
        optxform.save_state(path, state)
        return optxform.load_state(str(path), template)


def main() -> float:
    params: Params = {"w": jnp.ones((4, 3)), "b": jnp.zeros((3,))}
    schedule = optxform.cosine_decay_schedule(0.1, decay_steps=10)
    txs = aliases(schedule)[:-1] + [custom_chain(schedule)]
    values = [float(s(jnp.asarray(3))) for s in schedules()]

    injected = optxform.inject_hyperparams(optxform.adamw)(learning_rate=schedule, b1=0.9)
    wrapped = [
        injected,
        optxform.packed(optxform.adam(1e-2)),
        optxform.masked(optxform.sgd(0.1), {"w": True, "b": False}),
        optxform.apply_if_finite(optxform.adam(1e-2), max_consecutive_errors=3),
        optxform.lookahead(optxform.sgd(0.1), sync_period=5, alpha=0.5),
        optxform.MultiSteps(optxform.sgd(0.1), every_k_schedule=2).gradient_transformation(),
    ]
    final = 0.0
    for tx in txs + wrapped:
        new_params, state = train(tx, params, steps=2)
        state = checkpoint(state, tx.init(params))
        final += float(loss(new_params))
    lr = optxform.tree_get(optxform.inject_hyperparams(optxform.sgd)(0.1).init(params),
                           "learning_rate")
    surface = optxform.rosenbrock(jnp.asarray([1.0, 1.0]))
    return final + sum(values) + float(lr) + float(surface)


if __name__ == "__main__":
    print(main())
