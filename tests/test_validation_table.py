"""Every option of every alias and wrapper, against every kind of bad value.

A declared hyperparameter (``factory.hyperparameters``) must be a real, finite scalar (a
Python or numpy number, a 0-d array or a traced value; a schedule for learning rates);
a flag (an option whose default is a bool) must be a bool. Anything else raises
``ValueError`` at construction, naming the option and the value.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optxform
from tests.registry import DEFAULT_CASES

FACTORIES = {case.alias: (case.make, dict(case.kwargs)) for case in DEFAULT_CASES}
FACTORIES["lbfgs"] = (optxform.lbfgs, {})
FACTORIES["ema"] = (optxform.ema, {})

BAD_NUMBERS = {
    "bool": True, "None": None, "str": "0.1", "list": [0.9], "vector": np.ones(2),
    "jax_vector": jnp.ones(2), "complex": 0.5 + 1j, "nan": float("nan"), "inf": float("inf"),
    "-inf": -float("inf"),
}
BAD_FLAGS = {"float": 1.0, "int": 1, "None": None, "str": "yes", "array": jnp.asarray(True)}
GOOD_NUMBERS = {"numpy": np.float32(0.5), "jax": jnp.asarray(0.5), "int": 1}

BAD_CASES = [(alias, name, value)
             for alias, (make, _) in sorted(FACTORIES.items())
             for name in make.hyperparameters for value in BAD_NUMBERS] + [
    (alias, name, value)
    for alias, (make, _) in sorted(FACTORIES.items())
    for name, p in inspect.signature(make).parameters.items()
    if isinstance(p.default, bool) for value in BAD_FLAGS]


def test_every_alias_declares_its_hyperparameters():
    for alias, (make, _) in FACTORIES.items():
        assert make.hyperparameters, alias


@pytest.mark.parametrize("alias,name,kind", BAD_CASES,
                         ids=[f"{a}-{n}-{k}" for a, n, k in BAD_CASES])
def test_a_bad_option_is_refused_naming_it(alias, name, kind):
    """A hyperparameter given a non-number, or a flag given a non-bool."""
    make, kwargs = FACTORIES[alias]
    is_flag = isinstance(inspect.signature(make).parameters[name].default, bool)
    value = (BAD_FLAGS if is_flag else BAD_NUMBERS)[kind]
    with pytest.raises(ValueError, match=rf"Invalid {name}\b"):
        make(**dict(kwargs, **{name: value}))


@pytest.mark.parametrize("alias", sorted(FACTORIES))
def test_numpy_scalars_jax_scalars_and_traced_values_are_accepted(alias):
    make, kwargs = FACTORIES[alias]
    for name in make.hyperparameters:
        value = kwargs.get(name, inspect.signature(make).parameters[name].default)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        for given in (np.float32(value), jnp.asarray(value, jnp.float32)):
            assert isinstance(make(**dict(kwargs, **{name: given})),
                              optxform.GradientTransformation)

        @jax.jit
        def build_traced(v, name=name):
            assert isinstance(make(**dict(kwargs, **{name: v})),
                              optxform.GradientTransformation)
            return v

        build_traced(jnp.asarray(value, jnp.float32))


def test_negative_values_are_refused_where_torch_refuses_them():
    for make, name in [(optxform.adam, "learning_rate"), (optxform.adam, "eps"),
                       (optxform.adamw, "weight_decay"), (optxform.sgd, "momentum"),
                       (optxform.rmsprop, "alpha"), (optxform.asgd, "lambd"),
                       (optxform.lion, "b1"), (optxform.ema, "decay")]:
        with pytest.raises(ValueError, match=rf"Invalid {name}\b"):
            make(**{name: -0.5})


INTEGER_OPTIONS = [
    (lambda v: optxform.lookahead(optxform.sgd(), sync_period=v), "sync_period"),
    (lambda v: optxform.apply_if_finite(optxform.sgd(), v), "max_consecutive_errors"),
    (lambda v: optxform.MultiSteps(optxform.sgd(), v), "every_k_schedule"),
    (lambda v: optxform.lbfgs(max_iter=v), "max_iter"),
    (lambda v: optxform.lbfgs(history_size=v), "history_size"),
]


@pytest.mark.parametrize("value", [True, None, "5", [5], 2.5, 0, -1, np.ones(2)])
@pytest.mark.parametrize("build,name", INTEGER_OPTIONS, ids=[n for _, n in INTEGER_OPTIONS])
def test_integer_options_are_positive_integers(build, name, value):
    if name == "max_consecutive_errors" and isinstance(value, int) and value == 0:
        assert isinstance(build(value), optxform.GradientTransformation)  # 0: skip no step
        return
    with pytest.raises(ValueError, match=name):
        build(value)


@pytest.mark.parametrize("value", [True, "float33", jnp.int32, 0.5])
@pytest.mark.parametrize("name", ["mu_dtype", "nu_dtype"])
@pytest.mark.parametrize("alias", ["adam", "adamw", "adamax", "nadam", "radam"])
def test_storage_dtypes_are_floating_dtypes(alias, name, value):
    with pytest.raises(ValueError, match=name):
        getattr(optxform, alias)(**{name: value})
