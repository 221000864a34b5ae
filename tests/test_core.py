"""The protocol: chain, named_chain, identity, apply_updates, errors, optax/flax interop."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optxform
from optxform.core import counters, validation


def _params():
    return {"a": jnp.arange(3.0), "b": {"c": jnp.ones((2, 2))}}


def test_chain_applies_members_in_order_and_keeps_their_states():
    tx = optxform.chain(optxform.scale(2.0), optxform.scale_by_learning_rate(0.5))
    params = _params()
    state = tx.init(params)
    assert isinstance(state, tuple) and len(state) == 2
    updates, state = tx.update(params, state, params)
    np.testing.assert_allclose(updates["a"], -np.arange(3.0))
    assert int(state[1].count) == 1


def test_named_chain_keys_state_by_name():
    tx = optxform.named_chain(("decay", optxform.add_decayed_weights(0.5)),
                              ("lr", optxform.scale_by_learning_rate(1.0)))
    params = _params()
    state = tx.init(params)
    assert set(state) == {"decay", "lr"}
    updates, _ = tx.update(jax.tree.map(jnp.zeros_like, params), state, params)
    np.testing.assert_allclose(updates["a"], -0.5 * np.arange(3.0))
    with pytest.raises(ValueError, match="unique"):
        optxform.named_chain(("x", optxform.identity()), ("x", optxform.identity()))


def test_identity_passes_updates_through():
    tx = optxform.identity()
    updates, _ = tx.update(_params(), tx.init(_params()))
    np.testing.assert_array_equal(updates["b"]["c"], np.ones((2, 2)))


def test_apply_updates_keeps_param_dtype_and_none_leaves():
    params = {"w": jnp.ones(3, jnp.bfloat16), "frozen": None, "x": jnp.ones(2)}
    updates = {"w": jnp.full(3, 0.5, jnp.float32), "frozen": None, "x": jnp.ones(2)}
    new = optxform.apply_updates(params, updates)
    assert new["w"].dtype == jnp.bfloat16 and new["frozen"] is None
    np.testing.assert_allclose(np.asarray(new["w"], np.float32), 1.5)


def test_mismatched_trees_name_the_first_bad_path():
    params = _params()
    with pytest.raises(ValueError, match="'b/c'"):
        optxform.apply_updates(params, {"a": jnp.ones(3), "b": {"d": jnp.ones((2, 2))}})
    with pytest.raises(ValueError, match="'b/c'.*shape"):
        optxform.apply_updates(params, {"a": jnp.ones(3), "b": {"c": jnp.ones(3)}})
    tx = optxform.chain(optxform.scale_by_learning_rate(0.1))
    with pytest.raises(ValueError, match="'a'"):
        tx.update({"z": jnp.ones(3), "b": {"c": jnp.ones((2, 2))}}, tx.init(params), params)


def test_chain_rejects_a_state_of_another_length():
    tx = optxform.chain(optxform.scale(1.0), optxform.scale(2.0))
    with pytest.raises(ValueError, match="2 transforms"):
        tx.update(_params(), (optxform.EmptyState(),), _params())


def test_extra_args_reach_members_that_accept_them_only():
    seen = {}

    def init(params):
        return optxform.EmptyState()

    def update_with_extra(updates, state, params=None, **extra):
        seen.update(extra)
        return updates, state

    def update_plain(updates, state, params=None):  # an optax-style update
        return updates, state

    tx = optxform.chain(optxform.GradientTransformation(init, update_with_extra),
                        optxform.GradientTransformation(init, update_plain))
    tx.update(_params(), tx.init(_params()), _params(), loss=jnp.asarray(3.0))
    assert float(seen["loss"]) == 3.0


def test_counter_saturates_at_int32_max():
    top = jnp.asarray(counters.INT32_MAX - 1, jnp.int32)
    once = counters.increment(top)
    twice = counters.increment(once)
    assert int(once) == counters.INT32_MAX and int(twice) == counters.INT32_MAX
    assert twice.dtype == jnp.int32


def test_validation_names_the_option():
    with pytest.raises(ValueError, match="learning_rate"):
        optxform.scale_by_learning_rate(-1.0)
    with pytest.raises(ValueError, match="weight_decay"):
        optxform.add_decayed_weights(-0.1)
    with pytest.raises(ValueError, match="b1"):
        validation.check_range("b1", 1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="mode"):
        validation.check_one_of("mode", "sideways", ("min", "max"))
    optxform.scale_by_learning_rate(0.0)  # zero is allowed, as in torch
    optxform.scale_by_learning_rate(lambda step: 0.1)  # schedules are not checked


def test_schedule_and_float_give_the_same_state_structure():
    params = _params()
    a = optxform.scale_by_learning_rate(0.1).init(params)
    b = optxform.scale_by_learning_rate(lambda t: 0.1 / (1 + t)).init(params)
    assert jax.tree.structure(a) == jax.tree.structure(b)


def test_learning_rate_schedule_is_evaluated_at_the_update_count():
    tx = optxform.scale_by_learning_rate(lambda t: 1.0 / (1.0 + t.astype(jnp.float32)))
    params = {"x": jnp.ones(())}
    state = tx.init(params)
    got = []
    for _ in range(3):
        updates, state = jax.jit(tx.update)(params, state)
        got.append(float(updates["x"]))
    np.testing.assert_allclose(got, [-1.0, -0.5, -1.0 / 3.0], rtol=1e-6)


def test_mask_skips_decay_where_false():
    params = {"w": jnp.ones(2), "b": jnp.ones(2)}
    tx = optxform.add_decayed_weights(0.5, mask={"w": True, "b": False})
    updates, _ = tx.update(jax.tree.map(jnp.zeros_like, params), tx.init(params), params)
    np.testing.assert_allclose(updates["w"], 0.5)
    np.testing.assert_allclose(updates["b"], 0.0)
    masked_fn = optxform.add_decayed_weights(0.5, mask=lambda p: {"w": False, "b": True})
    updates, _ = masked_fn.update(jax.tree.map(jnp.zeros_like, params), masked_fn.init(params),
                                  params)
    np.testing.assert_allclose(updates["w"], 0.0)


def _train(tx, steps=20):
    params = {"w": jnp.array([1.0, -2.0, 3.0])}
    state = tx.init(params)

    @jax.jit
    def step(params, state):
        grads = jax.grad(lambda p: jnp.sum(jnp.sin(p["w"]) * p["w"]))(params)
        updates, state = tx.update(grads, state, params)
        return optxform.apply_updates(params, updates), state

    for _ in range(steps):
        params, state = step(params, state)
    return params


def test_optxform_transform_inside_optax_chain():
    ours = optax.chain(optxform.add_decayed_weights(0.1), optax.scale(-0.05))
    reference = optax.chain(optax.add_decayed_weights(0.1), optax.scale(-0.05))
    np.testing.assert_allclose(_train(ours)["w"], _train(reference)["w"], rtol=1e-6)


def test_optax_transform_inside_optxform_chain():
    # optax mixes Python floats with int32 counters, which strict promotion rejects.
    with jax.numpy_dtype_promotion("standard"):
        _check_optax_adam_inside_chain()


def _check_optax_adam_inside_chain():
    ours = optxform.chain(optax.scale_by_adam(), optxform.scale_by_learning_rate(0.05))
    reference = optax.adam(0.05)
    np.testing.assert_allclose(_train(ours)["w"], _train(reference)["w"], rtol=1e-6)


def test_flax_train_state_accepts_an_optxform_optimizer():
    from flax.training import train_state

    params = {"w": jnp.array([1.0, -2.0, 3.0])}
    with jax.numpy_dtype_promotion("standard"):  # flax and optax are not strict-promotion clean
        _check_train_state(train_state, params)


def _check_train_state(train_state, params):
    state = train_state.TrainState.create(apply_fn=None, params=params,
                                          tx=optxform.adamw(learning_rate=0.05))
    grads = {"w": jnp.array([0.5, 0.5, -0.5])}
    state = state.apply_gradients(grads=grads)
    reference = optax.adamw(0.05, weight_decay=1e-2)
    updates, _ = reference.update(grads, reference.init(params), params)
    np.testing.assert_allclose(state.params["w"], params["w"] + updates["w"], rtol=1e-6)
    assert int(state.step) == 1
