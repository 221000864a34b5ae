"""scale_by_factored_rms (torch's Adafactor direction) as a declared "matrix" rule.

Complex params are rejected, as torch's Adafactor rejects them; a ``None`` gradient leaf
passes through with its state untouched; bad arguments raise ``ValueError`` naming them.
Also the pieces of the rule machinery this block needs: buffers shaped from the param's
shape (``Buffer.shape``), hyperparameters that may be ``None`` (``optional``), and the
incoming dtype (``Leaf.dtype``) for the default ``eps1``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import optxform
from optxform.rules import Buffer, Hyperparameter, Rule, declaration_of, lift
from optxform.transforms.factored import FACTORED_RMS, ScaleByFactoredRmsState

SHAPES = {"s": (), "v": (5,), "m": (4, 3), "t": (2, 3, 4)}


def _tree(rng, shapes=SHAPES, dtype=np.float32) -> dict:
    return {k: jnp.asarray(rng.standard_normal(s), dtype) for k, s in shapes.items()}


def _complex(rng, shape=(3, 2)) -> np.ndarray:
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


# --- (a) complex params: rejected, as torch rejects them -----------------------------------

def test_torch_adafactor_rejects_complex_params():
    param = torch.tensor(_complex(np.random.default_rng(0)), requires_grad=True)
    opt = torch.optim.Adafactor([param])
    param.grad = torch.ones_like(param)
    with pytest.raises(RuntimeError, match="complex"):
        opt.step()


@pytest.mark.parametrize("make", [optxform.scale_by_factored_rms,
                                  lambda: optxform.adafactor(1e-2, weight_decay=0.1)],
                         ids=["scale_by_factored_rms", "adafactor"])
def test_complex_param_raises_naming_it(make):
    rng = np.random.default_rng(0)
    params = {"real": jnp.ones((4, 3)), "z": jnp.asarray(_complex(rng))}
    grads = {"real": jnp.ones((4, 3)), "z": jnp.asarray(_complex(rng))}
    tx = make()
    state = tx.init(params)
    with pytest.raises(ValueError, match=r"complex.*'z'"):
        tx.update(grads, state, params)
    with pytest.raises(ValueError, match=r"complex.*'z'"):
        jax.jit(tx.update)(grads, state, params)
    # The same tree with real params only is fine.
    u, _ = tx.update({"real": grads["real"]}, tx.init({"real": params["real"]}),
                     {"real": params["real"]})
    assert np.all(np.isfinite(np.asarray(u["real"])))


# --- (b) None gradient leaves --------------------------------------------------------------

@pytest.mark.parametrize("none_leaf", ["v", "m", "t"])
def test_none_gradient_leaf_passes_through_and_keeps_its_state(none_leaf):
    rng = np.random.default_rng(1)
    params = _tree(rng)
    tx = optxform.scale_by_factored_rms(eps=(1e-3, 1e-3), learning_rate=0.5)
    update = jax.jit(tx.update)
    _, state = update(_tree(rng), tx.init(params), params)   # a non-trivial state everywhere
    grads = _tree(rng)
    partial = dict(grads, **{none_leaf: None})
    u, new_state = update(partial, state, params)
    assert u[none_leaf] is None
    assert int(new_state.count) == 2
    for field in ("row", "col", "v"):
        old, new = getattr(state, field), getattr(new_state, field)
        np.testing.assert_array_equal(np.asarray(new[none_leaf]), np.asarray(old[none_leaf]))
        for k in SHAPES:
            if k != none_leaf and old[k].size:
                assert not np.array_equal(np.asarray(new[k]), np.asarray(old[k])), (field, k)
    # A matrix rule works leaf by leaf: the other leaves' updates are those of the same
    # step without the None leaf in the tree at all.
    others = [k for k in SHAPES if k != none_leaf]
    drop = lambda tree: {k: tree[k] for k in others}  # noqa: E731
    alone_state = ScaleByFactoredRmsState(state.count, drop(state.row), drop(state.col),
                                          drop(state.v))
    alone, _ = update(drop(grads), alone_state, drop(params))
    for k in others:
        np.testing.assert_array_equal(np.asarray(u[k]), np.asarray(alone[k]))


def test_adafactor_alias_passes_a_none_leaf_and_leaves_its_param():
    rng = np.random.default_rng(2)
    params = _tree(rng)
    tx = optxform.adafactor(0.1, weight_decay=0.1)
    u, _ = jax.jit(tx.update)(dict(_tree(rng), m=None), tx.init(params), params)
    assert u["m"] is None
    new = optxform.apply_updates(params, u)
    np.testing.assert_array_equal(np.asarray(new["m"]), np.asarray(params["m"]))
    assert not np.array_equal(np.asarray(new["t"]), np.asarray(params["t"]))


@pytest.mark.parametrize("make", [lambda: optxform.adamw(0.1, weight_decay=0.1),
                                  lambda: optxform.sgd(0.1, momentum=0.9, weight_decay=0.1),
                                  lambda: optxform.add_decayed_weights(0.1)],
                         ids=["adamw", "sgd", "add_decayed_weights"])
def test_transforms_that_read_params_pass_a_none_leaf(make):
    # Chains and rules that read params check the updates against them: a None update leaf
    # matches its param; a missing leaf or a wrong shape is still an error.
    params = {"a": jnp.ones((2,)), "b": jnp.ones((3,))}
    tx = make()
    u, _ = tx.update({"a": None, "b": jnp.ones((3,))}, tx.init(params), params)
    assert u["a"] is None and u["b"].shape == (3,)
    with pytest.raises(ValueError, match="params has path 'a'"):
        tx.update({"b": jnp.ones((3,))}, tx.init(params), params)
    with pytest.raises(ValueError, match="at 'b': shape"):
        tx.update({"a": None, "b": jnp.ones((4,))}, tx.init(params), params)


# --- (c) unknown or invalid arguments ------------------------------------------------------

INVALID = [
    ({"beta2_decay": 0.1}, "beta2_decay"),
    ({"beta2_decay": "-0.8"}, "beta2_decay"),
    ({"beta2_decay": None}, "beta2_decay"),
    ({"eps": 1e-3}, "eps"),
    ({"eps": (None, 1e-3, 1.0)}, "eps"),
    ({"eps": (-1e-30, 1e-3)}, r"eps\[0\]"),
    ({"eps": (float("nan"), 1e-3)}, "eps"),
    ({"eps": (None, -1e-3)}, r"eps\[1\]"),
    ({"eps": (None, None)}, "eps"),
    ({"d": 0.5}, "d"),
    ({"d": float("inf")}, "d"),
    ({"learning_rate": -1.0}, "learning_rate"),
    ({"learning_rate": [0.1, 0.2]}, "learning_rate"),
    ({"nu_dtype": jnp.int32}, "nu_dtype"),
]


@pytest.mark.parametrize("kwargs, name", INVALID,
                         ids=[f"{n}-{i}" for i, (_, n) in enumerate(INVALID)])
def test_invalid_argument_raises_naming_it(kwargs, name):
    with pytest.raises(ValueError, match=name):
        optxform.scale_by_factored_rms(**kwargs)
    with pytest.raises(ValueError, match=name):
        optxform.adafactor(**kwargs)


ARGUMENTS = {"beta2_decay": -0.8, "eps1": None, "eps2": 1e-3, "d": 1.0,
             "learning_rate": None}


def test_rule_rejects_an_unknown_or_missing_argument_by_name():
    assert declaration_of(lift(FACTORED_RMS, **ARGUMENTS)).rule.kind == "matrix"
    with pytest.raises(ValueError, match="'lerning_rate'"):
        lift(FACTORED_RMS, lerning_rate=0.1, **ARGUMENTS)
    for name in ARGUMENTS:
        missing = {k: v for k, v in ARGUMENTS.items() if k != name}
        with pytest.raises(ValueError, match=repr(name)):
            lift(FACTORED_RMS, **missing)


def test_none_is_accepted_only_for_optional_hyperparameters():
    assert [h.name for h in FACTORED_RMS.hyperparameters if h.optional] == ["eps1",
                                                                           "learning_rate"]
    for name in ("beta2_decay", "eps2", "d"):
        with pytest.raises(ValueError, match=name):
            lift(FACTORED_RMS, **dict(ARGUMENTS, **{name: None}))


# --- storage, shapes and the default eps1 --------------------------------------------------

def test_factors_are_stored_in_float32_for_float16_params_unless_nu_dtype_says():
    params = _tree(np.random.default_rng(3), dtype=np.float16)
    grads = jax.tree.map(lambda p: jnp.full(p.shape, 6e4, jnp.float16), params)
    default = optxform.scale_by_factored_rms()
    u, state = default.update(grads, default.init(params), params)
    for field, k in (("row", "m"), ("col", "t"), ("v", "v"), ("v", "s")):
        leaf = getattr(state, field)[k]
        assert leaf.dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(leaf), 3.6e9, rtol=1e-6)  # (6e4)^2: no inf
    for k in SHAPES:
        assert u[k].dtype == jnp.float16 and np.all(np.isfinite(np.asarray(u[k])))
    # torch's storage (the param dtype) on request: a float16 square of 6e4 overflows.
    half = optxform.scale_by_factored_rms(nu_dtype=jnp.float16)
    _, half_state = half.update(grads, half.init(params), params)
    assert half_state.row["m"].dtype == jnp.float16
    assert np.all(np.isinf(np.asarray(half_state.row["m"])))


def test_nu_dtype_keeps_the_derived_shapes():
    params = _tree(np.random.default_rng(4))
    state = optxform.adafactor(nu_dtype=jnp.bfloat16).init(params)["factored_rms"]
    assert state.row["t"].shape == (2, 3, 1) and state.row["t"].dtype == jnp.bfloat16
    assert state.col["m"].shape == (1, 3) and state.col["m"].dtype == jnp.bfloat16
    assert state.v["v"].shape == (5,) and state.v["m"].shape == (0,)


def test_default_eps1_is_the_machine_epsilon_of_the_incoming_dtype():
    # g^2 = 1e-8 is below float16's eps1^2 (~9.5e-7) but far above float32's (~1.4e-14):
    # the clamp decides the update, so the two epsilons give different results.
    eps16 = float(jnp.finfo(jnp.float16).eps)
    p = {"w": jnp.ones((3,), jnp.float16)}
    g = {"w": jnp.full((3,), 1e-4, jnp.float16)}

    def direction(eps1):
        tx = optxform.scale_by_factored_rms(eps=(eps1, 1e-3), d=1e9)
        return np.asarray(tx.update(g, tx.init(p), p)[0]["w"])

    np.testing.assert_array_equal(direction(None), direction(eps16))
    np.testing.assert_allclose(direction(None), float(g["w"][0]) / eps16, rtol=1e-3)
    assert not np.allclose(direction(None), direction(float(jnp.finfo(jnp.float32).eps)))


def test_state_structure_does_not_depend_on_the_learning_rate_or_eps1():
    params = _tree(np.random.default_rng(5))
    schedule = lambda count: 0.1 * jnp.power(0.9, count.astype(jnp.float32))  # noqa: E731
    structures = {jax.tree.structure(tx.init(params)) for tx in (
        optxform.scale_by_factored_rms(),
        optxform.scale_by_factored_rms(eps=(1e-30, 1e-3), learning_rate=0.5),
        optxform.scale_by_factored_rms(learning_rate=schedule))}
    assert len(structures) == 1
    structures = {jax.tree.structure(tx.init(params)) for tx in (
        optxform.adafactor(), optxform.adafactor(schedule, weight_decay=0.1,
                                                 maximize=True))}
    assert len(structures) == 1


class _ProbeState(NamedTuple):
    count: jax.Array
    last: dict


def test_buffer_shape_sees_the_real_view_of_a_complex_param():
    rule = Rule(name="probe", kind="matrix", state=_ProbeState,
                hyperparameters=(Hyperparameter("scale", optional=True),),
                buffers=(Buffer("last", "accumulator", shape=lambda s: s[-1:]),),
                leaf=lambda x: (x.g, {"last": jnp.sum(x.g, axis=tuple(range(x.g.ndim - 1)))}))
    params = {"r": jnp.ones((4, 3), jnp.float16), "z": jnp.ones((3,), jnp.complex64)}
    tx = lift(rule, scale=None)
    state = tx.init(params)
    assert state.last["r"].shape == (3,) and state.last["r"].dtype == jnp.float32
    assert state.last["z"].shape == (2,) and state.last["z"].dtype == jnp.float32
    grads = {"r": jnp.ones((4, 3), jnp.float16), "z": jnp.full((3,), 1 + 2j, jnp.complex64)}
    u, state = tx.update(grads, state, params)
    np.testing.assert_array_equal(np.asarray(state.last["z"]), [3.0, 6.0])
    np.testing.assert_array_equal(np.asarray(state.last["r"]), [4.0, 4.0, 4.0])
    assert u["z"].dtype == jnp.complex64 and u["r"].dtype == jnp.float16
