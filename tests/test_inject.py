"""inject_hyperparams, tree_get and tree_set: hyperparameters that live in the state."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optxform as ox
from tests import oracles
from tests.registry import DEFAULT_CASES


def _alias(name):
    factory = getattr(ox, name)
    assert callable(factory), name
    return factory


def decayed_sgd(learning_rate=0.1, weight_decay=0.0, flip: bool = True, mask=None):
    """A small alias built from blocks (always available)."""
    return ox.chain(ox.add_decayed_weights(weight_decay, mask=mask),
                    ox.scale_by_learning_rate(learning_rate, flip_sign=flip))


def _initial_params() -> dict:
    rng = np.random.default_rng(0)
    return {"w": rng.standard_normal((4, 3)).astype(np.float32),
            "b": (0.1 * rng.standard_normal(3)).astype(np.float32)}


def _loss(params, t):
    """A tiny regression whose minibatch changes with ``t`` (cheap to compile)."""
    x = jax.random.normal(jax.random.fold_in(jax.random.PRNGKey(0), t), (5, 4))
    err = jnp.tanh(x @ params["w"] + params["b"][None, :]) - 0.5
    return jnp.mean(jnp.abs(err) + jnp.log1p(jnp.exp(-2.0 * jnp.abs(err))))


_grad = jax.jit(jax.grad(_loss))


def _params():
    return jax.tree.map(jnp.asarray, _initial_params())


@functools.lru_cache(maxsize=None)
def _runner(tx, steps):
    """A jitted ``lax.scan`` of ``steps`` updates of ``tx`` (compiled once per tx/steps)."""

    @jax.jit
    def run(params, state, start):
        def step(carry, t):
            params, state = carry
            updates, state = tx.update(_grad(params, t), state, params)
            return (ox.apply_updates(params, updates), state), None
        (params, state), _ = jax.lax.scan(step, (params, state),
                                          start + jnp.arange(steps, dtype=jnp.int32))
        return params, state

    return run


def _trajectory(tx, steps, params=None, state=None, start=0):
    """Params and state after ``steps`` jitted updates of ``tx`` on the tiny problem."""
    params = _params() if params is None else params
    state = tx.init(params) if state is None else state
    return _runner(tx, steps)(params, state, jnp.asarray(start, jnp.int32))


def _assert_trees_close(a, b, rtol=1e-6, atol=1e-7):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64),
                                   rtol=rtol, atol=atol)


# ------------------------------------------------------------------------------ the state

def test_numeric_hyperparams_are_float32_arrays_in_the_state():
    tx = ox.inject_hyperparams(decayed_sgd)(learning_rate=0.1, weight_decay=1e-2,
                                            mask=lambda p: jax.tree.map(lambda _: True, p))
    state = tx.init(_params())
    assert isinstance(state, ox.InjectHyperparamsState)
    assert set(state.hyperparams) == {"learning_rate", "weight_decay"}  # flip, mask: static
    for value in state.hyperparams.values():
        assert value.dtype == jnp.float32 and value.shape == () and not value.weak_type
    assert float(ox.tree_get(state, "weight_decay")) == pytest.approx(1e-2)
    assert int(ox.tree_get(state, "count")) == 0


def test_state_structure_does_not_depend_on_number_or_schedule():
    as_number = ox.inject_hyperparams(decayed_sgd)(learning_rate=0.1)
    as_schedule = ox.inject_hyperparams(decayed_sgd)(
        learning_rate=ox.cosine_decay_schedule(0.1, 10))
    a, b = as_number.init(_params()), as_schedule.init(_params())
    assert jax.tree.structure(a) == jax.tree.structure(b)
    assert [x.dtype for x in jax.tree.leaves(a)] == [x.dtype for x in jax.tree.leaves(b)]


def test_static_args_and_integer_options_stay_static():
    tx = ox.inject_hyperparams(decayed_sgd, static_args="weight_decay")(learning_rate=1,
                                                                        weight_decay=0.5)
    state = tx.init(_params())
    assert set(state.hyperparams) == {"learning_rate"}  # an int for a float argument counts
    assert state.hyperparams["learning_rate"].dtype == jnp.float32

    def every(learning_rate=0.1, period=3):
        return ox.chain(ox.scale_by_schedule(lambda t: (t % period == 0).astype(jnp.float32)),
                        ox.scale_by_learning_rate(learning_rate))

    assert set(ox.inject_hyperparams(every)().init(_params()).hyperparams) == {"learning_rate"}


def test_invalid_values_are_rejected_at_construction():
    with pytest.raises(ValueError, match="learning_rate"):
        ox.inject_hyperparams(decayed_sgd)(learning_rate=-0.1)
    with pytest.raises(ValueError, match="weight_decay"):
        ox.inject_hyperparams(decayed_sgd)(weight_decay=-1.0)


# ------------------------------------------------------------------------------ schedules

def test_schedule_hyperparams_follow_the_schedule_and_can_be_overridden_once():
    schedule = ox.exponential_decay(0.1, 1, 0.5)
    tx = ox.inject_hyperparams(decayed_sgd)(learning_rate=schedule, weight_decay=1e-3)
    reference = decayed_sgd(schedule, 1e-3)
    params, state = _trajectory(tx, 5)
    ref_params, _ = _trajectory(reference, 5)
    _assert_trees_close(params, ref_params, rtol=0, atol=0)
    # The state holds the value the next update uses (torch's param group after
    # scheduler.step()): schedule(5).
    assert int(state.count) == 5
    assert float(ox.tree_get(state, "learning_rate")) == float(schedule(5))
    # A manual value is used for one step, then the schedule resumes.
    overridden = ox.tree_set(state, learning_rate=0.0)
    params2, state2 = _trajectory(tx, 1, params, overridden, start=5)
    _assert_trees_close(params2, params, rtol=0, atol=0)  # lr 0: nothing moved
    assert float(ox.tree_get(state2, "learning_rate")) == float(schedule(6))


# ------------------------------------------------------------------------------ no retrace

def _sgd_or_blocks():
    """sgd with momentum when the alias exists, else the block-built stand-in."""
    sgd = getattr(ox, "sgd", None)
    if callable(sgd):
        return sgd, dict(momentum=0.9, weight_decay=1e-3)
    return decayed_sgd, dict(weight_decay=1e-3)


def test_tree_set_under_jit_changes_the_trajectory_without_retracing():
    factory, options = _sgd_or_blocks()
    tx = ox.inject_hyperparams(factory)(learning_rate=0.05, **options)
    grad = _grad
    traces = []

    @jax.jit
    def step(params, state, t):
        traces.append(1)
        updates, state = tx.update(grad(params, t), state, params)
        return ox.apply_updates(params, updates), state

    params = _params()
    state = tx.init(params)
    for t in range(3):
        params, state = step(params, state, jnp.asarray(t, jnp.int32))
    state = ox.tree_set(state, learning_rate=0.02)
    for t in range(3, 6):
        params, state = step(params, state, jnp.asarray(t, jnp.int32))
    assert len(traces) == 1
    assert float(ox.tree_get(state, "learning_rate")) == pytest.approx(0.02)

    # Exactly what rebuilding the alias with the new value does (state carried over).
    first = factory(learning_rate=0.05, **options)
    second = factory(learning_rate=0.02, **options)
    ref_params, ref_state = _trajectory(first, 3)
    ref_params, _ = _trajectory(second, 3, ref_params, ref_state, start=3)
    _assert_trees_close(params, ref_params)


def test_vmap_over_learning_rates_equals_separate_runs():
    factory, options = _sgd_or_blocks()
    tx = ox.inject_hyperparams(factory)(learning_rate=0.05, **options)
    lrs = jnp.asarray([0.0, 0.01, 0.05, 0.2], jnp.float32)
    params = _params()
    state = tx.init(params)
    batched_state = jax.vmap(lambda lr: ox.tree_set(state, learning_rate=lr))(lrs)
    batched_params = jax.tree.map(lambda x: jnp.broadcast_to(x, (4,) + x.shape), params)
    grad = _grad

    @jax.jit
    def run(params, state):
        def step(carry, t):
            params, state = carry
            updates, state = jax.vmap(lambda p, s: tx.update(grad(p, t), s, p))(params, state)
            return (ox.apply_updates(params, updates), state), None
        return jax.lax.scan(step, (params, state), jnp.arange(6, dtype=jnp.int32))[0]

    out, out_state = run(batched_params, batched_state)
    np.testing.assert_array_equal(np.asarray(ox.tree_get(out_state, "learning_rate")), lrs)
    for i, lr in enumerate(np.asarray(lrs)):
        single, _ = _trajectory(tx, 6, state=ox.tree_set(state, learning_rate=lr))
        _assert_trees_close(jax.tree.map(lambda x: x[i], out), single)
    _assert_trees_close(jax.tree.map(lambda x: x[0], out), params, rtol=0, atol=0)


def test_factory_called_with_traced_values_inside_vmap():
    # As explore/chooser does: build the transform inside the vmapped function.
    def final_w(lr):
        tx = ox.inject_hyperparams(decayed_sgd)(learning_rate=lr)
        params = {"w": jnp.ones(3)}
        updates, _ = tx.update({"w": jnp.ones(3)}, tx.init(params), params)
        return updates["w"]

    out = jax.jit(jax.vmap(final_w))(jnp.asarray([0.1, 0.2], jnp.float32))
    np.testing.assert_allclose(np.asarray(out), [[-0.1] * 3, [-0.2] * 3], rtol=1e-7)


# ------------------------------------------------------------------------------ every alias

@pytest.mark.parametrize("case", DEFAULT_CASES, ids=lambda c: c.alias)
def test_every_alias_can_be_injected(case):
    """Injected (hyperparams traced under jit) == the plain alias, on 3 small steps."""
    factory = _alias(case.alias)
    plain = case.build()
    injected = ox.inject_hyperparams(factory)(**case.kwargs)
    params = _params()
    if case.problem == "matrices":  # a matrix-only optimizer (muon)
        params = jax.tree.map(jnp.asarray, oracles.matrix_params())
    if case.problem == "embedding":  # a gradient row of zeros means "row absent"
        params = {"embed": jnp.asarray(oracles.embedding_params()["embed"][:6])}
    plain_params, plain_state = params, plain.init(params)
    inj_params, inj_state = params, injected.init(params)
    update = jax.jit(injected.update)
    for t in range(3):
        grads = jax.tree.map(lambda p: jnp.sin(p * (t + 1.0)), plain_params)
        if case.problem == "embedding":
            grads = {"embed": grads["embed"].at[t].set(0.0)}
        updates, plain_state = plain.update(grads, plain_state, plain_params)
        plain_params = ox.apply_updates(plain_params, updates)
        grads = jax.tree.map(lambda p: jnp.sin(p * (t + 1.0)), inj_params)
        if case.problem == "embedding":
            grads = {"embed": grads["embed"].at[t].set(0.0)}
        updates, inj_state = update(grads, inj_state, inj_params)
        inj_params = ox.apply_updates(inj_params, updates)
    _assert_trees_close(inj_params, plain_params, rtol=2e-6, atol=1e-7)
    hyperparams = inj_state.hyperparams
    assert hyperparams and all(v.dtype == jnp.float32 for v in hyperparams.values())
    if case.alias != "lookahead":
        assert "learning_rate" in hyperparams
    assert int(inj_state.count) == 3


# ------------------------------------------------------------------------------ momentum cycles

def _torch_scheduled_trajectory(optimizer, opt_kwargs, make_scheduler, steps):
    import torch

    init = _initial_params()
    names = sorted(init)
    tparams = {n: torch.tensor(init[n], requires_grad=True) for n in names}
    opt = getattr(torch.optim, optimizer)([tparams[n] for n in names], **opt_kwargs)
    scheduler = make_scheduler(opt)
    grad = _grad
    for t in range(steps):
        current = {n: jnp.asarray(tparams[n].detach().numpy()) for n in names}
        g = grad(current, jnp.asarray(t, jnp.int32))
        for n in names:
            tparams[n].grad = torch.from_numpy(np.array(g[n]))
        opt.step()
        scheduler.step()
    return {n: tparams[n].detach().numpy() for n in names}


def test_one_cycle_with_momentum_through_inject_matches_torch_sgd():
    sgd = _alias("sgd")
    steps = 60
    expected = _torch_scheduled_trajectory(
        "SGD", dict(lr=0.1, momentum=0.9),
        lambda opt: __import__("torch").optim.lr_scheduler.OneCycleLR(
            opt, max_lr=0.2, total_steps=steps, base_momentum=0.8, max_momentum=0.95),
        steps)
    tx = ox.inject_hyperparams(sgd)(
        learning_rate=ox.one_cycle(steps, 0.2),
        momentum=ox.one_cycle_momentum(steps, base_momentum=0.8, max_momentum=0.95))
    params, state = _trajectory(tx, steps)
    for name, value in expected.items():
        np.testing.assert_allclose(np.asarray(params[name]), value, rtol=1e-5, atol=1e-6)
    assert float(ox.tree_get(state, "momentum")) == pytest.approx(0.95)


def test_cyclic_beta1_through_inject_matches_torch_adam():
    adam = _alias("adam")
    steps = 50
    expected = _torch_scheduled_trajectory(
        "Adam", dict(lr=0.01),
        lambda opt: __import__("torch").optim.lr_scheduler.CyclicLR(
            opt, 0.001, 0.01, 10, base_momentum=0.8, max_momentum=0.9),
        steps)
    tx = ox.inject_hyperparams(adam)(learning_rate=ox.cyclic(0.001, 0.01, 10),
                                     b1=ox.cyclic_momentum(0.8, 0.9, 10))
    params, _ = _trajectory(tx, steps)
    for name, value in expected.items():
        np.testing.assert_allclose(np.asarray(params[name]), value, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------ tree_get/set

def test_tree_get_and_tree_set_on_nested_states():
    tx = ox.chain(ox.inject_hyperparams(decayed_sgd)(learning_rate=0.1),
                  ox.scale_by_schedule(ox.constant_schedule(1.0)))
    state = tx.init(_params())
    assert float(ox.tree_get(state, "hyperparams/learning_rate")) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="ambiguous"):
        ox.tree_get(state, "count")  # three counts, two at the shallowest depth
    assert int(ox.tree_get(state, "1/count")) == 0
    with pytest.raises(KeyError, match="momentum"):
        ox.tree_get(state, "momentum")
    assert ox.tree_get(state, "momentum", default=None) is None
    with pytest.raises(KeyError, match="b3"):
        ox.tree_set(state, b3=0.5)

    new = ox.tree_set(state, count=7.9, learning_rate=np.float64(0.5))
    assert [int(c) for c in jax.tree.leaves(new) if c.dtype == jnp.int32] == [7, 7, 7]
    lr = ox.tree_get(new, "learning_rate")
    assert lr.dtype == jnp.float32 and float(lr) == 0.5
    assert jax.tree.structure(new) == jax.tree.structure(state)
    with pytest.raises(ValueError, match="shape"):
        ox.tree_set(state, learning_rate=jnp.ones(3))

    # A whole subtree, matched by key.
    hp = ox.tree_set(state, hyperparams={"weight_decay": 0.0, "learning_rate": 0.3})
    assert float(ox.tree_get(hp, "learning_rate")) == pytest.approx(0.3)


def test_tree_get_reads_optax_states():
    import optax

    tx = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1, momentum=0.9)
    state = tx.init({"w": jnp.ones(2)})
    assert float(ox.tree_get(state, "learning_rate")) == pytest.approx(0.1)
    state = ox.tree_set(state, momentum=0.5)
    assert float(state.hyperparams["momentum"]) == pytest.approx(0.5)
