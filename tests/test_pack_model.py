"""optxform.pack_model: equinox's usual training loop, unchanged, on packed buffers.

The loop is equinox's own (``eqx.filter_jit(donate="all")``, ``filter_value_and_grad``,
``optim.update`` on ``eqx.filter(model, eqx.is_array)``, ``eqx.apply_updates``); the only
change is ``model = optxform.pack_model(model)``. It must follow the plain loop: SGD
bit-identically, Adam to rounding (measured after 20 steps: at most 3e-7 of a leaf's
largest magnitude in float32, 6e-16 in float64; XLA rounds a division by a scalar
differently in the two layouts).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optxform

STEPS = 10
X = jax.random.normal(jax.random.PRNGKey(1), (8, 5), jnp.float32)
Y = jax.random.normal(jax.random.PRNGKey(2), (8, 3), jnp.float32)


def mlp(dtype=jnp.float32) -> eqx.nn.MLP:
    return eqx.nn.MLP(5, 3, 16, 2, activation=jax.nn.relu, key=jax.random.PRNGKey(0),
                      dtype=dtype)


def loss_fn(model, x, y):
    return jnp.mean((jax.vmap(model)(x) - y) ** 2)


def train(model, optim, steps: int = STEPS, jit=None, params=eqx.is_array, traces=None,
          dtype=jnp.float32):
    """equinox's usual loop (as its docs write it), ``steps`` steps."""
    opt_state = optim.init(eqx.filter(model, params))

    def make_step(model, opt_state, x, y):
        if traces is not None:
            traces.append(1)
        loss, grads = eqx.filter_value_and_grad(loss_fn)(model, x, y)
        updates, opt_state = optim.update(grads, opt_state, eqx.filter(model, params))
        return eqx.apply_updates(model, updates), opt_state, loss

    make_step = (jit or eqx.filter_jit(donate="all"))(make_step)
    for i in range(steps):
        x, y = (X * (1 + 0.1 * i)).astype(dtype), Y.astype(dtype)
        model, opt_state, _ = make_step(model, opt_state, x, y)
    return model


def max_scaled_diff(a, b) -> float:
    """Largest |a - b| of each leaf, relative to the leaf's largest |b|."""
    out = 0.0
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        out = max(out, float(np.max(np.abs(x - y)) / np.max(np.abs(y))))
    return out


def arrays(model):
    model = model.unpack() if isinstance(model, optxform.PackedModel) else model
    return eqx.filter(model, eqx.is_array)


OPTIMS = {"optxform.adamw": (lambda: optxform.adamw(1e-2, weight_decay=0.1), 1e-6),
          "optax.adam": (lambda: optax.adam(1e-2), 1e-6),
          "optxform.sgd": (lambda: optxform.sgd(0.1, momentum=0.9), 0.0)}


@pytest.mark.parametrize("name", sorted(OPTIMS))
def test_the_usual_loop_on_the_packed_model_follows_the_plain_loop(name):
    make, tol = OPTIMS[name]
    # optax mixes a Python float with the int32 step count (not allowed by strict promotion)
    with jax.numpy_dtype_promotion("standard" if name.startswith("optax") else "strict"):
        plain = train(mlp(), make())
        packed = train(optxform.pack_model(mlp()), make())  # <- the one added line
    assert isinstance(packed, optxform.PackedModel)
    assert list(packed.buffers) == ["float32"] and packed.buffers["float32"].ndim == 1
    assert packed.activation is jax.nn.relu
    diff = max_scaled_diff(arrays(packed), arrays(plain))
    assert diff <= tol, diff
    assert max_scaled_diff(arrays(packed), arrays(mlp())) > 1e-3


def test_float64_follows_the_plain_loop_to_float64_rounding(x64):
    adamw = optxform.adamw(1e-2, weight_decay=0.1)
    plain = train(mlp(jnp.float64), adamw, dtype=jnp.float64)
    packed = train(optxform.pack_model(mlp(jnp.float64)), adamw, dtype=jnp.float64)
    assert list(packed.buffers) == ["float64"]
    assert max_scaled_diff(arrays(packed), arrays(plain)) <= 1e-14  # measured 6e-16


@pytest.mark.parametrize("layers", [30, 10])
def test_many_leaves_take_their_offsets_at_run_time(layers):
    """Slices at constant offsets make XLA compile each layer's kernels anew (compile time
    growing by tens of ms per leaf): beyond STATIC_SLICES leaves the offsets come out of a
    ``lax.cond`` that XLA keeps, so every leaf is a dynamic slice and kernels of one shape
    are shared; up to it, the slices are static (the fastest to run)."""
    params = {f"layer{i:02d}": {"w": jnp.full((8, 8), 0.1), "b": jnp.zeros(8)}
              for i in range(layers)}
    packed = optxform.pack_model(params)
    double = jax.jit(lambda m: jax.tree.map(lambda a: 2 * a, m.unpack()))
    hlo = double.lower(packed).compile().as_text()
    run_time = 2 * layers > optxform.fused.split.STATIC_SLICES
    assert run_time == (layers == 30)
    assert hlo.count("conditional(") == int(run_time)
    assert hlo.count("dynamic-slice(") == (2 * layers if run_time else 0)
    np.testing.assert_array_equal(double(packed)["layer07"]["w"], jnp.full((8, 8), 0.2))


def test_donation_and_a_plain_jax_jit_step():
    model = optxform.pack_model(mlp())
    buffer = model.buffers["float32"]
    traces: list = []
    after = train(model, optxform.adam(1e-2), steps=3, traces=traces)
    assert buffer.is_deleted()  # eqx.filter_jit(donate="all") reused the buffer
    assert not after.buffers["float32"].is_deleted()
    assert len(traces) == 1  # the model that comes out of a step keeps its structure
    # the packed model's leaves are all arrays: jax.jit takes it (the plain model, with its
    # activation function as a leaf, it does not)
    jitted = train(optxform.pack_model(mlp()), optxform.adam(1e-2),
                   jit=lambda f: jax.jit(f, donate_argnums=(0, 1)))
    filtered = train(optxform.pack_model(mlp()), optxform.adam(1e-2))
    np.testing.assert_array_equal(jitted.buffers["float32"], filtered.buffers["float32"])
    with pytest.raises(TypeError):
        jax.jit(lambda m: m)(mlp())


def test_the_gradient_is_the_packed_gradient():
    model = mlp()
    packed = optxform.pack_model(model)
    grads = jax.grad(loss_fn)(packed, X, Y)
    assert isinstance(grads, optxform.PackedModel)
    tree_grads = eqx.filter_grad(loss_fn)(model, X, Y)
    layout = optxform.packed_layout(eqx.filter(model, eqx.is_inexact_array))
    np.testing.assert_array_equal(grads.buffers["float32"],
                                  layout.pack(tree_grads)["float32"])


class Counted(eqx.Module):
    """Float leaves to train, integer and boolean arrays to keep, non-array fields."""

    linear: eqx.nn.Linear
    scale: jax.Array
    counts: jax.Array
    mask: jax.Array
    activation: callable
    offset: float

    def __init__(self, key):
        self.linear = eqx.nn.Linear(5, 3, key=key)
        self.scale = jnp.ones(3)
        self.counts = jnp.arange(4, dtype=jnp.int32)
        self.mask = jnp.array([True, False, True])
        self.activation = jnp.tanh
        self.offset = 0.5

    def __call__(self, x):
        out = self.activation(self.linear(x)) * self.scale + self.offset
        return jnp.where(self.mask, out, 0.0) + jnp.sum(self.counts).astype(jnp.float32)


def test_integer_boolean_and_static_leaves_are_kept():
    plain = train(Counted(jax.random.PRNGKey(0)), optxform.adamw(1e-2, weight_decay=0.1))
    packed = optxform.pack_model(Counted(jax.random.PRNGKey(0)))
    assert {k: v.shape for k, v in packed.buffers.items()} == {"float32": (3 * 5 + 3 + 3,)}
    assert [x.dtype for x in packed.frozen] == [jnp.int32, jnp.bool_]
    packed = train(packed, optxform.adamw(1e-2, weight_decay=0.1))
    model = packed.unpack()
    assert isinstance(model, Counted)
    np.testing.assert_array_equal(model.counts, np.arange(4))
    assert model.counts.dtype == jnp.int32 and model.mask.dtype == jnp.bool_
    assert model.activation is jnp.tanh and model.offset == 0.5
    assert max_scaled_diff(arrays(model), arrays(plain)) <= 1e-6
    assert max_scaled_diff(model.scale, jnp.ones(3)) > 1e-3  # a float field is trained


def test_unpack_round_trip_forwarding_and_checkpoints(tmp_path):
    key1, key2 = jax.random.split(jax.random.PRNGKey(3))
    model = eqx.nn.Sequential([eqx.nn.Linear(300, 300, key=key1),  # 90,000: its own buffer
                               eqx.nn.Lambda(jax.nn.relu),
                               eqx.nn.Linear(300, 2, key=key2)])
    model = eqx.tree_at(lambda m: m.layers[2].bias, model, jnp.zeros(2, jnp.bfloat16))
    packed = optxform.pack_model(model)
    assert optxform.pack_model(packed) is packed
    assert sorted(packed.buffers) == ["bfloat16", "float32", "float32@layers/0/weight"]
    assert packed.buffers["float32@layers/0/weight"].shape == (90_000,)
    back = packed.unpack()
    assert jax.tree.structure(back) == jax.tree.structure(model)
    for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(model), strict=True):
        assert a is b if not eqx.is_array(b) else (a.dtype == b.dtype
                                                   and np.array_equal(a, b))
    # it behaves like the model: calls, attributes, indexing
    x = jnp.ones(300)
    with jax.numpy_dtype_promotion("standard"):  # the model adds a bfloat16 bias
        np.testing.assert_array_equal(packed(x), model(x))
    assert packed.layers[0].weight.shape == (300, 300)
    np.testing.assert_array_equal(packed[2].weight, model[2].weight)
    with pytest.raises(AttributeError):
        packed.buffers = {}
    # checkpoints speak the model: save the unpacked model, load it, pack it again
    path = tmp_path / "model.eqx"
    eqx.tree_serialise_leaves(path, packed.unpack())
    like = eqx.nn.Sequential([eqx.nn.Linear(300, 300, key=key2), eqx.nn.Lambda(jax.nn.relu),
                              eqx.nn.Linear(300, 2, key=key1)])
    like = eqx.tree_at(lambda m: m.layers[2].bias, like, jnp.ones(2, jnp.bfloat16))
    loaded = optxform.pack_model(eqx.tree_deserialise_leaves(path, like))
    for key in packed.buffers:
        np.testing.assert_array_equal(loaded.buffers[key], packed.buffers[key])
