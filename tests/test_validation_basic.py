"""Construction-time validation of sgd, asgd, adagrad, adadelta, rmsprop, rprop, lion and
their blocks: a bad hyperparameter raises ValueError naming optxform's own argument."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import pytest

import optxform

BAD = [
    # (factory, kwargs, option named in the message)
    ("sgd", {"learning_rate": -0.1}, "learning_rate"),
    ("sgd", {"momentum": -0.5}, "momentum"),
    ("sgd", {"dampening": -0.1}, "dampening"),
    ("sgd", {"dampening": 1.5}, "dampening"),
    ("sgd", {"weight_decay": -1e-4}, "weight_decay"),
    ("sgd", {"nesterov": True}, "nesterov"),  # without momentum
    ("sgd", {"nesterov": True, "momentum": 0.9, "dampening": 0.1}, "nesterov"),
    ("asgd", {"learning_rate": -1.0}, "learning_rate"),
    ("asgd", {"lambd": -1e-4}, "lambd"),
    ("asgd", {"alpha": -0.75}, "alpha"),
    ("asgd", {"t0": -1.0}, "t0"),
    ("asgd", {"weight_decay": -0.1}, "weight_decay"),
    ("adagrad", {"learning_rate": -1e-2}, "learning_rate"),
    ("adagrad", {"lr_decay": -0.1}, "lr_decay"),
    ("adagrad", {"weight_decay": -0.1}, "weight_decay"),
    ("adagrad", {"initial_accumulator_value": -0.1}, "initial_accumulator_value"),
    ("adagrad", {"eps": -1e-10}, "eps"),
    ("adadelta", {"learning_rate": -1.0}, "learning_rate"),
    ("adadelta", {"rho": -0.1}, "rho"),
    ("adadelta", {"rho": 1.1}, "rho"),
    ("adadelta", {"eps": -1e-6}, "eps"),
    ("adadelta", {"weight_decay": -0.1}, "weight_decay"),
    ("rmsprop", {"learning_rate": -1e-2}, "learning_rate"),
    ("rmsprop", {"alpha": -0.1}, "alpha"),
    ("rmsprop", {"alpha": 1.5}, "alpha"),
    ("rmsprop", {"eps": -1e-8}, "eps"),
    ("rmsprop", {"weight_decay": -0.1}, "weight_decay"),
    ("rmsprop", {"momentum": -0.9}, "momentum"),
    ("rprop", {"learning_rate": -1e-2}, "learning_rate"),
    ("rprop", {"etas": (1.2, 0.5)}, "etas"),
    ("rprop", {"etas": (0.0, 1.2)}, "etas"),
    ("rprop", {"etas": (0.5, 1.0)}, "etas"),
    ("rprop", {"etas": (0.5,)}, "etas"),
    ("rprop", {"step_sizes": (50.0, 1e-6)}, "step_sizes"),
    ("rprop", {"step_sizes": (-1e-6, 50.0)}, "step_sizes"),
    ("rprop", {"step_sizes": 1e-6}, "step_sizes"),
    ("lion", {"learning_rate": -1e-4}, "learning_rate"),
    ("lion", {"b1": 1.0}, "b1"),
    ("lion", {"b1": -0.1}, "b1"),
    ("lion", {"b2": 1.5}, "b2"),
    ("lion", {"weight_decay": -0.1}, "weight_decay"),
    # blocks
    ("trace", {"decay": -0.9}, "decay"),
    ("scale_by_rms", {"decay": 1.5}, "decay"),
    ("scale_by_rms", {"eps": -1.0}, "eps"),
    ("scale_by_rms", {"initial_scale": -1.0}, "initial_scale"),
    ("scale_by_adagrad", {"initial_accumulator_value": -1.0}, "initial_accumulator_value"),
    ("scale_by_adadelta", {"rho": 2.0}, "rho"),
    ("scale_by_rprop", {"learning_rate": 0.1, "eta_minus": 1.5}, "eta_minus"),
    ("scale_by_rprop", {"learning_rate": 0.1, "eta_plus": 0.9}, "eta_plus"),
    ("scale_by_rprop", {"learning_rate": 0.1, "min_step_size": 2.0, "max_step_size": 1.0},
     "min_step_size"),
    ("scale_by_lion", {"b2": 1.0}, "b2"),
    ("clip", {"max_delta": -1.0}, "max_delta"),
    ("clip_by_global_norm", {"max_norm": -1.0}, "max_norm"),
    ("clip_by_block_rms", {"threshold": 0.0}, "threshold"),
    ("asgd_learning_rate", {"lambd": -1.0}, "lambd"),
    ("asgd_averaging", {"t0": -1.0}, "t0"),
]


@pytest.mark.parametrize("name, kwargs, option", BAD,
                         ids=[f"{n}-{'-'.join(map(str, k.items()))}" for n, k, _ in BAD])
def test_bad_hyperparameter_raises_naming_the_option(name, kwargs, option):
    with pytest.raises(ValueError, match=rf"\b{re.escape(option)}\b"):
        getattr(optxform, name)(**kwargs)


@pytest.mark.parametrize("name, kwargs", [
    ("sgd", {"learning_rate": 0.0}),
    ("sgd", {"momentum": 0.9, "nesterov": True}),
    ("adagrad", {"eps": 0.0}),
    ("adadelta", {"eps": 0.0}),
    ("adadelta", {"rho": 1.0}),
    ("rmsprop", {"eps": 0.0, "alpha": 0.0, "learning_rate": 0.0}),
    ("rprop", {"step_sizes": (0.0, 0.0)}),
    ("asgd", {"lambd": 0.0, "t0": 0.0, "alpha": 0.0}),
    ("lion", {"b1": 0.0, "b2": 0.0}),
])
def test_edge_values_torch_accepts_are_accepted(name, kwargs):
    tx = getattr(optxform, name)(**kwargs)
    params = {"w": jnp.ones(2)}
    updates, _ = tx.update({"w": jnp.ones(2)}, tx.init(params), params)
    assert updates["w"].shape == (2,) and bool(jnp.all(jnp.isfinite(updates["w"])))


def test_schedules_and_traced_hyperparameters_are_accepted():
    schedule = lambda count: 0.1 / (1.0 + count.astype(jnp.float32))  # noqa: E731
    for name in ("sgd", "asgd", "adagrad", "adadelta", "rmsprop", "rprop", "lion"):
        tx = getattr(optxform, name)(schedule)
        params = {"w": jnp.ones(2)}
        tx.update({"w": jnp.ones(2)}, tx.init(params), params)

    @jax.jit
    def run(momentum, lr):  # values only known inside jit cannot be checked: let through
        tx = optxform.sgd(lr, momentum=momentum, nesterov=True)
        params = {"w": jnp.ones(2)}
        return tx.update({"w": jnp.ones(2)}, tx.init(params), params)[0]

    # nesterov: g + m * buf with buf = g on the first step.
    assert float(run(jnp.float32(0.5), jnp.float32(0.1))["w"][0]) == pytest.approx(-0.15)
