"""The RMS family (scale_by_rms, scale_by_adagrad, scale_by_adadelta) and trace as declared rules.

For each block: a complex64 param is handled as torch's ``view_as_real`` (the same block on
the real view, and the aliases against torch with complex params), a ``None`` gradient
leaf passes through with its state untouched, and bad arguments raise ``ValueError``
naming them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import optxform
from optxform.rules import declaration_of, lift
from optxform.transforms.momentum import TRACE
from optxform.transforms.rms import ADADELTA, ADAGRAD, CENTERED_RMS, RMS
from tests.oracles import assert_trajectories_close

BLOCKS = {
    "rms": lambda: optxform.scale_by_rms(decay=0.9, eps=1e-3, initial_scale=0.1),
    "rms_eps_in_sqrt": lambda: optxform.scale_by_rms(decay=0.9, eps=1e-3, eps_in_sqrt=True),
    "rms_centered": lambda: optxform.scale_by_rms(decay=0.9, eps=1e-3, centered=True),
    "adagrad": lambda: optxform.scale_by_adagrad(initial_accumulator_value=0.1, eps=1e-3),
    "adadelta": lambda: optxform.scale_by_adadelta(rho=0.8, eps=1e-3),
    "trace": lambda: optxform.trace(0.9),
    "trace_dampened": lambda: optxform.trace(0.8, dampening=0.25),
    "trace_nesterov": lambda: optxform.trace(0.9, nesterov=True),
}

SHAPE = (3, 2)


def _complex(rng, shape=SHAPE) -> np.ndarray:
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


def _real_view(x):
    return jnp.stack([jnp.real(x), jnp.imag(x)], axis=-1)


def _run(tx, params, grads):
    """Updates after each gradient and the final state, ``params`` held fixed (jitted)."""
    update = jax.jit(tx.update)
    state = tx.init(params)
    out = []
    for g in grads:
        u, state = update(g, state, params)
        out.append(u)
    return out, state


# --- (a) complex params: torch's view_as_real ----------------------------------------------

@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_complex_param_is_its_real_view(name):
    rng = np.random.default_rng(0)
    params = {"w": jnp.asarray(_complex(rng))}
    grads = [{"w": jnp.asarray(_complex(rng))} for _ in range(6)]
    complex_updates, complex_state = _run(BLOCKS[name](), params, grads)
    real_updates, real_state = _run(BLOCKS[name](), jax.tree.map(_real_view, params),
                                    [jax.tree.map(_real_view, g) for g in grads])
    for c, r in zip(complex_updates, real_updates):
        assert c["w"].dtype == jnp.complex64
        np.testing.assert_array_equal(np.asarray(_real_view(c["w"])), np.asarray(r["w"]))
    # The state of a complex param is stored as its real view: the same arrays.
    for c, r in zip(jax.tree.leaves(complex_state), jax.tree.leaves(real_state)):
        assert c.dtype == r.dtype and c.shape == r.shape
        np.testing.assert_array_equal(np.asarray(c), np.asarray(r))
    # And the real view is not a reinterpretation that ignores the imaginary part.
    assert not np.allclose(np.asarray(real_updates[-1]["w"][..., 1]), 0.0)


TORCH_COMPLEX = [
    ("rmsprop", {"learning_rate": 1e-2}, "RMSprop", {"lr": 1e-2}),
    ("rmsprop", {"learning_rate": 1e-2, "centered": True, "momentum": 0.5,
                 "weight_decay": 0.05}, "RMSprop",
     {"lr": 1e-2, "centered": True, "momentum": 0.5, "weight_decay": 0.05}),
    ("adagrad", {"learning_rate": 0.05, "initial_accumulator_value": 0.1}, "Adagrad",
     {"lr": 0.05, "initial_accumulator_value": 0.1}),
    ("adadelta", {"rho": 0.8, "weight_decay": 0.05}, "Adadelta",
     {"rho": 0.8, "weight_decay": 0.05}),
    ("sgd", {"learning_rate": 0.05, "momentum": 0.9, "dampening": 0.3}, "SGD",
     {"lr": 0.05, "momentum": 0.9, "dampening": 0.3}),
    ("sgd", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True, "maximize": True},
     "SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "maximize": True}),
]


@pytest.mark.parametrize("alias, kwargs, torch_cls, torch_kwargs", TORCH_COMPLEX,
                         ids=[f"{a}-{i}" for i, (a, *_) in enumerate(TORCH_COMPLEX)])
def test_alias_with_complex64_param_matches_torch(alias, kwargs, torch_cls, torch_kwargs):
    rng = np.random.default_rng(1)
    p0 = _complex(rng)
    grads = [_complex(rng) for _ in range(30)]

    tparam = torch.tensor(p0, requires_grad=True)
    opt = getattr(torch.optim, torch_cls)([tparam], **torch_kwargs)
    expected = []
    for g in grads:
        tparam.grad = torch.from_numpy(g.copy())
        opt.step()
        expected.append({"w": tparam.detach().numpy().copy()})

    tx = getattr(optxform, alias)(**kwargs)
    params = {"w": jnp.asarray(p0)}
    state = tx.init(params)
    update = jax.jit(tx.update)
    actual = []
    for g in grads:
        u, state = update({"w": jnp.asarray(g)}, state, params)
        params = optxform.apply_updates(params, u)
        actual.append({"w": np.asarray(params["w"])})
    assert actual[-1]["w"].dtype == np.complex64
    assert_trajectories_close(actual, expected)


# --- (b) None gradient leaves ------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_none_gradient_leaf_passes_through_and_keeps_its_state(name):
    rng = np.random.default_rng(2)
    params = {"a": jnp.asarray(rng.standard_normal(4), jnp.float32),
              "b": jnp.asarray(rng.standard_normal((2, 3)), jnp.float32)}
    tx = BLOCKS[name]()
    update = jax.jit(tx.update)
    full = jax.tree.map(lambda p: p + 1.0, params)
    _, state = update(full, tx.init(params), params)  # a non-trivial state for both leaves
    partial = {"a": full["a"] * 0.5, "b": None}
    u, new_state = update(partial, state, params)
    assert u["b"] is None
    assert u["a"].shape == (4,)
    fields = [f for f in state._fields if f != "count"]
    for field in fields:
        old, new = getattr(state, field), getattr(new_state, field)
        np.testing.assert_array_equal(np.asarray(new["b"]), np.asarray(old["b"]))
        assert not np.array_equal(np.asarray(new["a"]), np.asarray(old["a"])), field


# --- (c) unknown or invalid arguments -----------------------------------------------------

INVALID = [
    (optxform.scale_by_rms, {"decay": 1.5}, "decay"),
    (optxform.scale_by_rms, {"decay": -0.1}, "decay"),
    (optxform.scale_by_rms, {"eps": -1.0}, "eps"),
    (optxform.scale_by_rms, {"eps": float("nan")}, "eps"),
    (optxform.scale_by_rms, {"initial_scale": -1.0}, "initial_scale"),
    (optxform.scale_by_rms, {"decay": "0.9"}, "decay"),
    (optxform.scale_by_rms, {"decay": [0.9, 0.99]}, "decay"),
    (optxform.scale_by_rms, {"centered": "yes"}, "centered"),
    (optxform.scale_by_rms, {"eps_in_sqrt": 1}, "eps_in_sqrt"),
    (optxform.scale_by_adagrad, {"initial_accumulator_value": -0.1},
     "initial_accumulator_value"),
    (optxform.scale_by_adagrad, {"eps": -1e-10}, "eps"),
    (optxform.scale_by_adagrad, {"eps": None}, "eps"),
    (optxform.scale_by_adadelta, {"rho": 1.1}, "rho"),
    (optxform.scale_by_adadelta, {"eps": float("inf")}, "eps"),
    (optxform.trace, {"decay": -0.9}, "decay"),
    (optxform.trace, {"decay": True}, "decay"),
    (optxform.trace, {"dampening": 1.5}, "dampening"),
    (optxform.trace, {"dampening": -0.1}, "dampening"),
    (optxform.trace, {"nesterov": "no"}, "nesterov"),
]


@pytest.mark.parametrize("factory, kwargs, name", INVALID,
                         ids=[f"{f.__name__}-{n}-{i}" for i, (f, _, n) in enumerate(INVALID)])
def test_invalid_argument_raises_naming_it(factory, kwargs, name):
    with pytest.raises(ValueError, match=name):
        factory(**kwargs)


@pytest.mark.parametrize("rule, arguments", [
    (RMS, {"decay": 0.9, "eps": 1e-8, "initial_scale": 0.0, "eps_in_sqrt": False,
           "centered": False}),
    (CENTERED_RMS, {"decay": 0.9, "eps": 1e-8, "initial_scale": 0.0, "eps_in_sqrt": False,
                    "centered": True}),
    (ADAGRAD, {"initial_accumulator_value": 0.0, "eps": 1e-10}),
    (ADADELTA, {"rho": 0.9, "eps": 1e-6}),
    (TRACE, {"decay": 0.9, "dampening": 0.0, "nesterov": False}),
], ids=["rms", "centered_rms", "adagrad", "adadelta", "trace"])
def test_rule_rejects_an_unknown_argument_by_name(rule, arguments):
    lift(rule, **arguments)  # the full declared set is accepted
    with pytest.raises(ValueError, match="'lerning_rate'"):
        lift(rule, lerning_rate=0.1, **arguments)
    missing = dict(arguments)
    first = rule.hyperparameter_names[0]
    del missing[first]
    with pytest.raises(ValueError, match=repr(first)):
        lift(rule, **missing)


@pytest.mark.parametrize("factory", [optxform.rmsprop, optxform.adagrad, optxform.adadelta,
                                     optxform.sgd])
def test_injected_alias_rejects_an_unknown_static_name(factory):
    with pytest.raises(ValueError, match="'lerning_rate'"):
        optxform.inject_hyperparams(factory, static_args=("lerning_rate",))


# --- the declarations ---------------------------------------------------------------------

def test_declarations_name_kind_hyperparameters_and_buffers():
    expected = {
        "rms": ("elementwise", ("decay", "eps", "initial_scale"), ("nu",)),
        "rms_centered": ("elementwise", ("decay", "eps", "initial_scale"), ("mu", "nu")),
        "adagrad": ("elementwise", ("initial_accumulator_value", "eps"), ("sum",)),
        "adadelta": ("elementwise", ("rho", "eps"), ("square_avg", "acc_delta")),
        "trace": ("elementwise", ("decay", "dampening"), ("trace",)),
    }
    for name, (kind, hyperparameters, buffers) in expected.items():
        declaration = declaration_of(BLOCKS[name]())
        assert declaration is not None, name
        assert declaration.rule.kind == kind
        assert declaration.rule.hyperparameter_names == hyperparameters
        assert tuple(b.name for b in declaration.rule.buffers) == buffers


def test_state_classes_and_storage_dtypes():
    params = {"w": jnp.ones(3, jnp.bfloat16)}
    plain = optxform.scale_by_rms().init(params)
    centered = optxform.scale_by_rms(centered=True).init(params)
    assert type(plain) is optxform.ScaleByRmsState
    assert type(centered) is optxform.ScaleByCenteredRmsState
    assert centered._fields == ("mu", "nu")
    for state in (plain, centered, optxform.scale_by_adagrad().init(params),
                  optxform.scale_by_adadelta().init(params)):
        assert {leaf.dtype for leaf in jax.tree.leaves(state)} == {jnp.dtype(jnp.float32)}
    np.testing.assert_array_equal(
        np.asarray(optxform.scale_by_rms(initial_scale=0.5).init(params).nu["w"]), 0.5)
    momentum = optxform.trace(0.9).init(params)
    assert momentum.trace["w"].dtype == jnp.bfloat16  # torch's momentum_buffer: param dtype
    assert momentum.count.dtype == jnp.int32


def test_trace_with_decay_zero_keeps_the_state_structure_and_passes_updates():
    params = {"w": jnp.arange(3.0, dtype=jnp.float32)}
    g = {"w": jnp.asarray([1.0, -2.0, 3.0], jnp.float32)}
    with_momentum, without = optxform.trace(0.9), optxform.trace(0.0)
    assert (jax.tree.structure(with_momentum.init(params))
            == jax.tree.structure(without.init(params)))
    u, state = without.update(g, without.init(params), params)
    np.testing.assert_array_equal(np.asarray(u["w"]), np.asarray(g["w"]))
    assert int(state.count) == 1



def test_float64_params_keep_float64_precision(x64):
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal(50) for _ in range(20)]
    params = jnp.zeros(50, jnp.float64)
    tx = optxform.scale_by_rms(decay=0.99, eps=1e-8, centered=True)
    state = tx.init(params)
    nu, mu = np.zeros(50), np.zeros(50)
    for g in grads:
        u, state = tx.update(jnp.asarray(g), state, params)
        nu = 0.99 * nu + (1.0 - 0.99) * g * g
        mu = mu + (1.0 - 0.99) * (g - mu)
        assert u.dtype == jnp.float64
        # float32 rounding of 1 - decay alone would be off by ~1e-8 relative.
        np.testing.assert_allclose(np.asarray(u), g / (np.sqrt(nu - mu * mu) + 1e-8),
                                   rtol=1e-12)
