"""The packed layout (optxform/fused): same trajectories as the plain layout, state round trips.

Every comparison runs both layouts through the same jitted training loop (``lax.scan`` over
steps), so each case costs two compiles.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optxform
from optxform.fused.layout import PackedLayout

STEPS = 25


def make_params(dtypes=("float32",)) -> dict:
    """A small tree: matrices, vectors, a scalar, a nested dict, a frozen (None) leaf."""
    rng = np.random.default_rng(0)
    dt = lambda i: jnp.dtype(dtypes[i % len(dtypes)])  # noqa: E731
    return {
        "layer1": {"w": jnp.asarray(rng.standard_normal((4, 3)), dt(0)),
                   "b": jnp.asarray(rng.standard_normal(3), dt(1))},
        "layer2": {"w": jnp.asarray(rng.standard_normal((3, 2)), dt(2)),
                   "b": jnp.asarray(rng.standard_normal(2), dt(3))},
        "scale": jnp.asarray(rng.standard_normal(()), dt(0)),
        "frozen": None,
    }


def loss_fn(params, step):
    """A smooth nonconvex loss whose minibatch changes with ``step``; float32 throughout."""
    key = jax.random.fold_in(jax.random.PRNGKey(0), step)
    x = jax.random.normal(key, (5, 4), jnp.float32)
    f32 = lambda a: a.astype(jnp.float32)  # noqa: E731
    h = jnp.tanh(x @ f32(params["layer1"]["w"]) + f32(params["layer1"]["b"])[None, :])
    out = h @ f32(params["layer2"]["w"]) + f32(params["layer2"]["b"])[None, :]
    return jnp.mean(jnp.square(out - f32(params["scale"])))


def grads_at(params, step):
    """Gradients in each param's dtype (as a mixed-precision model would produce them)."""
    def f(p):
        return loss_fn(p, step)
    return jax.grad(f)(params)


def run(tx, params, steps=STEPS):
    """Params after ``steps`` jitted steps, and the final state."""
    @jax.jit
    def train(params):
        def body(carry, step):
            params, state = carry
            updates, state = tx.update(grads_at(params, step), state, params)
            return (optxform.apply_updates(params, updates), state), None

        (params, state), _ = jax.lax.scan(body, (params, tx.init(params)),
                                          jnp.arange(steps, dtype=jnp.int32))
        return params, state

    return train(params)


def assert_trees_equal(a, b, rtol=0.0):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        assert x.dtype == y.dtype and x.shape == y.shape
        x32, y32 = np.asarray(x, np.float32), np.asarray(y, np.float32)
        if rtol == 0.0:
            np.testing.assert_array_equal(x32, y32)
        else:
            np.testing.assert_allclose(x32, y32, rtol=rtol, atol=rtol * 1e-2)


# --- layout -------------------------------------------------------------------------------


def test_pack_unpack_round_trip_mixed_dtypes():
    params = make_params(("float32", "bfloat16", "float16", "float32"))
    layout = optxform.packed_layout(params)
    packed = layout.pack(params)
    assert sorted(packed) == ["bfloat16", "float16", "float32"]
    # float32: layer1/w (12) + layer2/b (2) + scale (1); bfloat16: layer1/b; float16: layer2/w
    assert {k: v.shape for k, v in packed.items()} == {
        "bfloat16": (3,), "float16": (6,), "float32": (15,)}
    assert all(packed[k].dtype == jnp.dtype(k) for k in packed)
    for unpacked in (layout.unpack(packed), layout.unpack(packed, layout.offsets()),
                     jax.jit(layout.unpack)(packed, layout.offsets())):
        assert_trees_equal(unpacked, params)
        assert unpacked["frozen"] is None


def test_large_leaves_keep_their_own_buffer():
    params = make_params(("float32", "bfloat16"))
    layout = optxform.packed_layout(params, solo_size=10)  # layer1/w (12) is "large"
    packed = layout.pack(params)
    assert sorted(packed) == ["bfloat16", "float32", "float32@layer1/w"]
    np.testing.assert_array_equal(packed["float32@layer1/w"], np.ravel(params["layer1"]["w"]))
    assert_trees_equal(layout.unpack(packed, layout.offsets()), params)
    labels = jax.tree.map(lambda _: "decay", params)
    keys = optxform.packed_layout(params, labels, solo_size=10).keys
    assert "decay/float32@layer1/w" in keys
    mask = optxform.label_mask("decay")({k: None for k in keys})
    assert all(mask.values())
    expected, _ = run(optxform.sgd(0.05, momentum=0.9), params)
    got, _ = run(optxform.packed(optxform.sgd(0.05, momentum=0.9), solo_size=10), params)
    assert_trees_equal(got, expected)


def test_pack_order_is_flattening_order():
    params = {"a": jnp.arange(3.0), "b": jnp.arange(3.0, 7.0).reshape(2, 2)}
    packed = optxform.packed_layout(params).pack(params)
    np.testing.assert_array_equal(packed["float32"], np.arange(7.0))


def test_empty_tree():
    layout = optxform.packed_layout({})
    assert layout.pack({}) == {}
    assert layout.unpack({}) == {}
    tx = optxform.packed(optxform.adam(1e-3))
    updates, _ = tx.update({}, tx.init({}), {})
    assert updates == {}


def test_unpack_gradient_is_the_packed_gradient():
    params = make_params(("float32", "bfloat16"))
    layout = optxform.packed_layout(params)
    packed = layout.pack(params)
    expected = layout.pack(jax.grad(lambda p: loss_fn(p, 3))(params))
    for offsets in (None, layout.offsets()):
        got = jax.grad(lambda f: loss_fn(layout.unpack(f, offsets), 3))(packed)
        assert_trees_equal(got, expected)


def test_pack_names_the_first_bad_path():
    layout = optxform.packed_layout(make_params())
    bad = make_params()
    bad["layer2"]["w"] = jnp.zeros((2, 3))
    with pytest.raises(ValueError, match="layer2/w"):
        layout.pack(bad)
    tx = optxform.packed(optxform.adam(1e-3))
    state = tx.init(make_params())
    other = {"layer1": make_params()["layer1"]}
    with pytest.raises(ValueError, match="layer2"):
        tx.update(other, state, other)


def test_labels_split_buffers_and_label_mask_selects_them():
    params = make_params()
    labels = {"layer1": {"w": "decay", "b": "no_decay"}, "layer2": "decay",
              "scale": "no_decay", "frozen": None}
    layout = optxform.packed_layout(params, labels)
    assert layout.keys == ("decay/float32", "no_decay/float32")
    assert optxform.label_mask("decay")(layout.pack(params)) == {
        "decay/float32": True, "no_decay/float32": False}


# --- trajectories: packed(tx) == tx ---------------------------------------------------------


def _chain_clip_adamw_schedule(mask=None):
    clip = getattr(optxform, "clip_by_global_norm", optax.clip_by_global_norm)
    schedule = optxform.warmup_cosine_decay_schedule(0.0, 1e-2, 5, STEPS, 1e-4)
    return optxform.chain(clip(0.5), optxform.adamw(schedule, weight_decay=0.1, mask=mask))


# name -> (factory, rtol). Elementwise chains without scalar divisions are bit-identical.
# Adam divides by scalar bias corrections, which XLA may rewrite as a multiply by the
# reciprocal (x * (1/c), off by one ulp) in one layout and not the other: equal to float32
# rounding there.
CASES = {
    "adam": (lambda: optxform.adam(1e-2), 2e-6),
    "adam_amsgrad_l2": (lambda: optxform.adam(1e-2, weight_decay=0.05, amsgrad=True), 2e-6),
    "adamw_maximize": (lambda: optxform.adamw(1e-2, maximize=True), 2e-6),
    "sgd_momentum": (lambda: optxform.sgd(0.05, momentum=0.9), 0.0),
    "sgd_nesterov_wd": (lambda: optxform.sgd(0.05, momentum=0.9, nesterov=True,
                                             weight_decay=0.01), 0.0),
    "rmsprop_centered": (lambda: optxform.rmsprop(1e-2, momentum=0.5, centered=True), 0.0),
    "adagrad": (lambda: optxform.adagrad(0.05), 0.0),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_packed_trajectory_matches(name):
    make, rtol = CASES[name]
    params = make_params()
    expected, _ = run(make(), params)
    got, _ = run(optxform.packed(make()), params)
    assert_trees_equal(got, expected, rtol=rtol)


def test_optax_transform_inside_packed():
    params = make_params()
    with jax.numpy_dtype_promotion("standard"):  # optax mixes Python floats and int32
        expected, _ = run(optax.adam(1e-2), params)
        got, _ = run(optxform.packed(optax.adam(1e-2)), params)
    assert_trees_equal(got, expected, rtol=2e-6)


@pytest.mark.parametrize("materialize", [False, True])
def test_clip_adamw_schedule_chain_matches(materialize):
    # The global norm sums leaf by leaf vs buffer by buffer: equal up to float32 rounding.
    params = make_params()
    expected, _ = run(_chain_clip_adamw_schedule(), params)
    got, _ = run(optxform.packed(_chain_clip_adamw_schedule(), materialize=materialize), params)
    assert_trees_equal(got, expected, rtol=2e-6 if not materialize else 2e-5)


@pytest.mark.parametrize("name", ["sgd_momentum", "adam"])
def test_mixed_dtypes_trajectory_matches(name):
    make, rtol = CASES[name]
    params = make_params(("float32", "bfloat16"))
    expected, expected_state = run(make(), params)
    got, state = run(optxform.packed(make()), params)
    assert sorted(state.inner["adam"].mu if name == "adam" else state.inner["momentum_buffer"].trace) \
        == ["bfloat16", "float32"]
    assert_trees_equal(got, expected, rtol=rtol)
    assert_trees_equal(optxform.unpack_state(state, params), expected_state, rtol=rtol)


def test_masked_weight_decay_via_labels():
    params = make_params()
    tree_mask = {"layer1": {"w": True, "b": False}, "layer2": {"w": True, "b": False},
                 "scale": False, "frozen": None}
    labels = jax.tree.map(lambda m: "decay" if m else "other", tree_mask)
    expected, _ = run(_chain_clip_adamw_schedule(mask=tree_mask), params)
    got, _ = run(optxform.packed(_chain_clip_adamw_schedule(mask=optxform.label_mask("decay")),
                                 labels=labels), params)
    assert_trees_equal(got, expected, rtol=2e-6)


def test_low_precision_moments_stay_packed_in_their_dtype():
    params = make_params()
    tx = optxform.adam(1e-2, mu_dtype=jnp.bfloat16)
    expected, expected_state = run(tx, params)
    got, state = run(optxform.packed(tx), params)
    assert state.inner["adam"].mu["float32"].dtype == jnp.bfloat16  # {"float32": group} buffer
    inner = optxform.unpack_state(state, params)
    assert_trees_equal(inner, expected_state, rtol=1e-2)
    assert_trees_equal(got, expected, rtol=2e-6)


# --- state round trip ---------------------------------------------------------------------


def test_state_round_trip_between_layouts():
    params = make_params(("float32", "bfloat16"))
    tx = optxform.adamw(1e-2)
    ptx = optxform.packed(optxform.adamw(1e-2))
    # 10 steps packed, then convert and continue 15 plain: equals 25 plain steps.
    mid, packed_state = run(ptx, params, steps=10)
    plain_state = optxform.unpack_state(packed_state, params)
    _, reference_state = run(tx, params, steps=10)
    assert_trees_equal(plain_state, reference_state)
    assert jax.tree.structure(plain_state) == jax.tree.structure(tx.init(params))
    # ... and back: pack_state of the plain state is the packed state.
    assert_trees_equal(optxform.pack_state(plain_state, params), packed_state)
    # state_dict keys of the packed state are readable.
    keys = optxform.state_dict(packed_state)
    assert any(k.endswith("mu/float32") for k in keys)
    assert any(k.endswith("offsets/layer1/w") for k in keys)


def test_continue_after_conversion():
    params = make_params()
    tx, ptx = optxform.adam(1e-2), optxform.packed(optxform.adam(1e-2))
    state = ptx.init(params)
    step = jax.jit(lambda p, s, t: ptx.update(grads_at(p, t), s, p))
    p = params
    for t in range(5):
        u, state = step(p, state, t)
        p = optxform.apply_updates(p, u)
    plain = optxform.unpack_state(state, params)
    expected_u, _ = jax.jit(lambda p, s: tx.update(grads_at(p, 5), s, p))(p, plain)
    got_u, _ = step(p, optxform.pack_state(plain, params), 5)
    assert_trees_equal(got_u, expected_u, rtol=2e-6)


# --- the packed-params workflow and donation ------------------------------------------------


def test_packed_params_training_matches_tree_training():
    """Params kept packed across steps; the model sees layout.unpack(flat, offsets)."""
    params = make_params(("float32", "bfloat16"))
    tx = optxform.sgd(0.05, momentum=0.9)
    layout = optxform.packed_layout(params)

    @jax.jit
    def train(flat, offsets):
        def body(carry, step):
            flat, state = carry
            grads = jax.grad(lambda f: loss_fn(layout.unpack(f, offsets), step))(flat)
            updates, state = tx.update(grads, state, flat)
            return (optxform.apply_updates(flat, updates), state), None

        (flat, _), _ = jax.lax.scan(body, (flat, tx.init(flat)),
                                    jnp.arange(STEPS, dtype=jnp.int32))
        return flat

    expected, _ = run(tx, params)
    got = layout.unpack(train(layout.pack(params), layout.offsets()))
    assert_trees_equal(got, expected)


def test_donated_step_updates_in_place():
    """With donation the compiled step holds no second copy of params or state."""
    n = 100_000
    params = {"a": jnp.ones(n), "b": jnp.ones((n // 100, 100))}
    layout = optxform.packed_layout(params, solo_size=None)  # one buffer of 2n floats
    flat = layout.pack(params)
    tx = optxform.adam(1e-3)
    state = tx.init(flat)

    def step(flat, state, grads):
        updates, state = tx.update(grads, state, flat)
        return optxform.apply_updates(flat, updates), state

    compiled = jax.jit(step, donate_argnums=(0, 1)).lower(flat, state, flat).compile()
    stats = compiled.memory_analysis()
    buffer_bytes = 2 * n * 4
    # params + mu + nu are aliased to the outputs; temporaries are below one buffer.
    assert stats.alias_size_in_bytes >= 3 * buffer_bytes
    assert stats.temp_size_in_bytes < buffer_bytes // 10
    grads = jax.tree.map(jnp.ones_like, flat)
    new_flat, new_state = compiled(flat, state, grads)
    assert flat["float32"].is_deleted()
    assert not new_flat["float32"].is_deleted()


def test_packed_wrapper_donation_aliases_state():
    params = make_params()
    tx = optxform.packed(optxform.adam(1e-3))
    state = tx.init(params)

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optxform.apply_updates(params, updates), state

    grads = jax.tree.map(jnp.ones_like, params)
    structure = jax.tree.structure(state)
    new_params, new_state = jax.jit(step, donate_argnums=(0, 1))(params, state, grads)
    assert state.inner["adam"].mu["float32"].is_deleted()
    assert params["layer1"]["w"].is_deleted()
    assert jax.tree.structure(new_state) == structure


def test_layout_is_hashable_and_static():
    params = make_params()
    a, b = PackedLayout.of(params), PackedLayout.of(jax.tree.map(jnp.zeros_like, params))
    assert a == b and hash(a) == hash(b)
