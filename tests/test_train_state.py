"""optxform.TrainState: params packed across steps give the plain path's trajectories.

Each framework's loop runs as its users write it (jit with the state donated), once with
the tree (flax's own TrainState, or equinox's (model, opt_state) loop) and once with
``optxform.TrainState``; the params must agree after a few steps. SGD is bit-identical;
Adam agrees to float32 rounding (XLA rewrites a division by a scalar as a multiplication by
its reciprocal in one layout and not in the other: one ulp per step).
"""

from __future__ import annotations

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from flax.training.train_state import TrainState as FlaxTrainState

import optxform

STEPS = 4
X = jax.random.normal(jax.random.PRNGKey(1), (8, 5), jnp.float32)
Y = jax.random.normal(jax.random.PRNGKey(2), (8, 3), jnp.float32)


def max_rel_diff(a, b) -> float:
    out = 0.0
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        out = max(out, float(np.max(np.abs(x - y) / (np.abs(y) + 1e-30))))
    return out


def assert_close(a, b, exact: bool) -> None:
    diff = max_rel_diff(a, b)
    if exact:
        assert diff == 0.0
    else:
        assert diff < 2e-6, diff


TXS = {"sgd": (lambda: optxform.sgd(0.1, momentum=0.9), True),
       "adamw": (lambda: optxform.adamw(1e-2, weight_decay=0.1), False)}


class LinenMLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = jnp.tanh(nn.Dense(4)(x))
        x = jnp.tanh(nn.Dense(4)(x))
        return nn.Dense(3)(x)


def linen_run(state_cls, tx):
    model = LinenMLP()
    params = model.init(jax.random.PRNGKey(0), X)["params"]
    state = state_cls.create(apply_fn=model.apply, params=params, tx=tx)

    def train_step(state, x, y):
        def loss_fn(params):
            return jnp.mean((state.apply_fn({"params": params}, x) - y) ** 2)
        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        return state.apply_gradients(grads=grads), loss

    train_step = jax.jit(train_step, donate_argnums=0)
    for i in range(STEPS):
        state, loss = train_step(state, X * (1 + i), Y)
    return state


@pytest.mark.parametrize("name", sorted(TXS))
def test_linen_train_state_follows_flax(name):
    make, exact = TXS[name]
    ours = linen_run(optxform.TrainState, make())
    theirs = linen_run(FlaxTrainState, make())
    assert isinstance(ours.flat, dict) and list(ours.flat) == ["float32"]
    assert int(ours.step) == int(theirs.step) == STEPS
    assert_close(ours.params, theirs.params, exact)


class NnxMLP(nnx.Module):
    def __init__(self, rngs):
        self.l1 = nnx.Linear(5, 4, rngs=rngs)
        self.l2 = nnx.Linear(4, 3, rngs=rngs)

    def __call__(self, x):
        return self.l2(jnp.tanh(self.l1(x)))


def nnx_run(state_cls):
    graphdef, params = nnx.split(NnxMLP(nnx.Rngs(0)))
    state = state_cls.create(apply_fn=None, params=params, tx=optxform.adam(1e-2))

    def train_step(state, x, y):
        def loss_fn(params):
            return jnp.mean((nnx.merge(graphdef, params)(x) - y) ** 2)
        grads = jax.grad(loss_fn)(state.params)
        return state.apply_gradients(grads=grads)

    train_step = jax.jit(train_step, donate_argnums=0)
    for i in range(STEPS):
        state = train_step(state, X * (1 + i), Y)
    return state


def test_nnx_functional_train_state_follows_flax():
    ours, theirs = nnx_run(optxform.TrainState), nnx_run(FlaxTrainState)
    assert_close(ours.params, theirs.params, exact=False)
    model = nnx.merge(nnx.graphdef(NnxMLP(nnx.Rngs(0))), ours.params)
    assert model(X).shape == (8, 3)


class EqxMLP(eqx.Module):
    layers: list
    activation: callable

    def __init__(self, key):
        k1, k2 = jax.random.split(key)
        self.layers = [eqx.nn.Linear(5, 4, key=k1), eqx.nn.Linear(4, 3, key=k2)]
        self.activation = jnp.tanh

    def __call__(self, x):
        return jax.vmap(lambda v: self.layers[1](self.activation(self.layers[0](v))))(x)


def eqx_loss(model, x, y):
    return jnp.mean((model(x) - y) ** 2)


def test_equinox_train_state_follows_the_filter_jit_loop():
    tx = optxform.adam(1e-2)
    model = EqxMLP(jax.random.PRNGKey(0))
    opt_state = tx.init(eqx.filter(model, eqx.is_array))

    @eqx.filter_jit(donate="all")
    def plain_step(model, opt_state, x, y):
        grads = eqx.filter_grad(eqx_loss)(model, x, y)
        updates, opt_state = tx.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state

    state = optxform.TrainState.create(params=EqxMLP(jax.random.PRNGKey(0)), tx=tx)

    @eqx.filter_jit(donate="all")
    def packed_step(state, x, y):
        grads = eqx.filter_grad(eqx_loss)(state.params, x, y)
        return state.apply_gradients(grads=grads)

    for i in range(STEPS):
        model, opt_state = plain_step(model, opt_state, X * (1 + i), Y)
        state = packed_step(state, X * (1 + i), Y)
    assert state.params.activation is jnp.tanh
    assert_close(eqx.filter(state.params, eqx.is_array), eqx.filter(model, eqx.is_array),
                 exact=False)


def test_state_dict_speaks_the_tree_and_round_trips():
    params = {"w": jnp.arange(6.0).reshape(2, 3), "b": jnp.ones(3), "count": jnp.array(7)}
    tx = optxform.adam(0.1)
    grads = {"w": jnp.full((2, 3), 0.5), "b": jnp.full(3, -1.0), "count": None}
    step = jax.jit(lambda s, g: s.apply_gradients(grads=g))  # params reused: no donation
    packed = step(optxform.TrainState.create(params=params, tx=tx), grads)
    plain = step(optxform.TrainState.create(params=params, tx=tx, packed=False), grads)
    d = packed.state_dict()
    assert "params/w" in d and "opt_state/adam.mu/b" in d and "step" in d
    assert int(d["params/count"]) == 7
    plain_d = plain.state_dict()
    assert sorted(d) == sorted(plain_d)
    for key in d:  # the same values, Adam's step to float32 rounding (see the top)
        if key != "<structure>":
            assert d[key].dtype == plain_d[key].dtype, key
            assert max_rel_diff(d[key], plain_d[key]) < 2e-6, key
    # load into a fresh state of either layout; continuing gives the same next step
    zeros = jax.tree.map(jnp.zeros_like, params)
    restored = optxform.TrainState.create(params=zeros, tx=tx).load_state_dict(d)
    assert int(restored.step) == 1
    np.testing.assert_array_equal(restored.flat["float32"], packed.flat["float32"])
    np.testing.assert_array_equal(step(restored, grads).flat["float32"],
                                  step(packed, grads).flat["float32"])
    as_tree = optxform.TrainState.create(params=zeros, tx=tx, packed=False).load_state_dict(d)
    np.testing.assert_array_equal(as_tree.params["w"], packed.params["w"])
    np.testing.assert_array_equal(as_tree.opt_state["adam"].nu["b"],
                                  packed.tree_state()["opt_state"]["adam"].nu["b"])


def test_extras_replace_and_shape_reading_optimizers():
    params = {"w": jnp.ones((4, 3)), "b": jnp.zeros(3)}
    state = optxform.TrainState.create(params=params, tx=optxform.sgd(0.1),
                                       batch_stats={"mean": jnp.zeros(3)})
    state = state.replace(batch_stats={"mean": jnp.ones(3)})
    np.testing.assert_array_equal(state.batch_stats["mean"], jnp.ones(3))
    with pytest.raises(AttributeError, match="no field 'nope'"):
        state.replace(nope=1)
    # a rule that reads each leaf's shape keeps every leaf as its own buffer
    factored = optxform.TrainState.create(params=params, tx=optxform.adafactor(1e-2))
    assert {v.shape for v in factored.flat.values()} == {(4, 3), (3,)}


def clusters(seed: int = 0):
    """Ten separable Gaussian clusters in 64 dimensions (the examples' digits, stand-in)."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((10, 64)).astype(np.float32)
    y = rng.integers(0, 10, 400).astype(np.int32)
    x = centers[y] + 0.3 * rng.standard_normal((400, 64)).astype(np.float32)
    return (x[:300], y[:300]), (x[300:], y[300:])


@pytest.mark.parametrize("framework", ["nnx", "equinox"])  # linen's loop: the tests above
def test_two_line_examples_train(framework, capsys, monkeypatch):
    import importlib.util
    import pathlib

    folder = pathlib.Path(__file__).parents[1] / "examples"
    monkeypatch.syspath_prepend(str(folder))  # the examples' shared data module
    path = folder / f"two_line_{framework}.py"
    spec = importlib.util.spec_from_file_location(f"two_line_{framework}", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    monkeypatch.setattr(example, "digits", clusters)
    assert example.main(steps=30) > 0.7  # 10 classes: chance is 0.1
    assert "test accuracy" in capsys.readouterr().out


@pytest.mark.parametrize("layers", [150, 10])
def test_state_leaves_do_not_grow_with_the_params_and_donation_traces_once(layers):
    """The state's pytree holds the packed buffers, the optimizer state on them and the
    step: no per-leaf offsets (they are made inside the step), so a 300-leaf model passes
    as many arrays through ``jit`` as a 20-leaf one. Beyond 32 leaves the slices take
    run-time offsets (one ``conditional`` in the step), up to it fixed ones."""
    params = {f"layer{i:03d}": {"w": jnp.full((4, 4), 0.1), "b": jnp.zeros(4)}
              for i in range(layers)}
    state = optxform.TrainState.create(params=params, tx=optxform.adam(1e-2))
    leaves = jax.tree.leaves(state)
    # step; flat["float32"]; adam's count, mu and nu (one buffer each); the lr's count
    assert len(leaves) == 6
    assert len(jax.tree.leaves(state.opt_state)) == 4
    assert all(leaf.ndim == 1 for leaf in jax.tree.leaves((state.flat, state.opt_state))
               if jnp.size(leaf) > 1)

    traces: list = []

    def loss(params, x):
        return sum(jnp.sum(jnp.tanh(x @ v["w"] + v["b"][None])) for v in params.values())

    def train_step(state, x):
        traces.append(None)
        return state.apply_gradients(grads=jax.grad(loss)(state.params, x))

    step = jax.jit(train_step, donate_argnums=0)
    x = jnp.ones((2, 4))
    plain = jax.tree.map(jnp.copy, params)
    tx = optxform.adam(1e-2)
    opt_state = tx.init(plain)
    hlo = step.lower(state, x).compile().as_text()
    assert hlo.count("conditional(") == int(2 * layers > optxform.fused.split.STATIC_SLICES)
    for _ in range(3):
        buffer = state.flat["float32"]
        state = step(state, x)
        assert buffer.is_deleted()  # donated: the step reused the buffer
        updates, opt_state = tx.update(jax.grad(loss)(plain, x), opt_state, plain)
        plain = optxform.apply_updates(plain, updates)
    assert len(traces) == 1  # the state out of a step has the structure it came in with
    assert int(state.step) == 3
    assert_close(state.params, plain, exact=False)
