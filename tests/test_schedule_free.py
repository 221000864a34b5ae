"""Schedule-Free AdamW and SGD against the authors' ``schedulefree`` package (1.4.1).

The float32/float64 trajectory rows are in tests/registry.py (REFERENCE_CASES). Here: the
evaluation point against the package's ``eval()``, the options those rows cannot reach (a
learning rate changed between steps, complex params, a zero learning rate, storage
dtypes), validation, the helper inside wrappers, ``packed``, sharded jit, checkpoints.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import optxform
from tests import oracles
from tests.registry import _to_torch

PACKAGE = {"schedule_free_adamw": "schedulefree:AdamWScheduleFree",
           "schedule_free_sgd": "schedulefree:SGDScheduleFree"}
OPTIONS = {
    "schedule_free_adamw": {"learning_rate": 0.01, "b1": 0.8, "weight_decay": 0.05,
                            "warmup_steps": 3, "r": 1.0},
    "schedule_free_sgd": {"learning_rate": 0.1, "momentum": 0.8, "weight_decay": 0.05,
                          "warmup_steps": 3, "r": 1.0},
}


def _package_run(alias, kwargs, steps, dtype=np.float32, lrs=None, evaluate=False):
    """The package's params after ``steps`` steps on the MLP problem (train mode), and
    after ``eval()`` with ``evaluate``; ``lrs[t]`` is set as the group's lr before step t."""
    import torch

    init = oracles.mlp_params(dtype=dtype)
    names = sorted(init)
    tparams = {n: torch.tensor(init[n], requires_grad=True) for n in names}
    opt = oracles.reference_optimizer(PACKAGE[alias])([tparams[n] for n in names],
                                                      **_to_torch(kwargs))
    opt.train()
    grad = oracles.grad_fn("mlp")
    out = []
    for t in range(steps):
        if lrs is not None:
            opt.param_groups[0]["lr"] = lrs[t]
        g = grad({n: jnp.asarray(tparams[n].detach().numpy()) for n in names},
                 jnp.asarray(t, jnp.int32))
        for n in names:
            tparams[n].grad = torch.from_numpy(np.array(g[n]))
        opt.step()
        out.append({n: tparams[n].detach().numpy().copy() for n in names})
    if evaluate:
        opt.eval()
        return {n: tparams[n].detach().numpy().copy() for n in names}
    return out


def _run(tx, steps, params=None, start=0, state=None):
    """``(params, state)`` after ``steps`` jitted updates on the MLP problem."""
    grad = oracles.grad_fn("mlp")
    params = jax.tree.map(jnp.asarray, oracles.mlp_params() if params is None else params)
    state = tx.init(params) if state is None else state

    @jax.jit
    def step(params, state, t):
        updates, state = tx.update(grad(params, t), state, params)
        return optxform.apply_updates(params, updates), state

    for t in range(start, start + steps):
        params, state = step(params, state, jnp.asarray(t, jnp.int32))
    return params, state


def _assert_close(actual, expected, rtol=1e-5, atol=1e-6):
    for name in expected:
        np.testing.assert_allclose(np.asarray(actual[name]), expected[name], rtol=rtol,
                                   atol=atol, err_msg=name)


# ------------------------------------------------------------------ the evaluation point x


@pytest.mark.parametrize("steps", [1, 6, 30])
@pytest.mark.parametrize("alias", sorted(PACKAGE))
def test_eval_params_equal_the_package_eval_in_float32(alias, steps):
    tx = getattr(optxform, alias)(**OPTIONS[alias])
    params, state = _run(tx, steps)
    x = optxform.schedule_free_eval_params(state, params)
    expected = _package_run(alias, OPTIONS[alias], steps, evaluate=True)
    _assert_close(x, expected)
    # After one step y = z = x; later x is not y, and the helper moved the params.
    moved = max(float(np.max(np.abs(np.asarray(x[n]) - np.asarray(params[n]))))
                for n in params)
    assert moved > 1e-3 if steps > 1 else moved == 0.0


@pytest.mark.parametrize("steps", [1, 6, 30])
@pytest.mark.parametrize("alias", sorted(PACKAGE))
def test_eval_params_equal_the_package_eval_in_float64(alias, steps, x64):
    tx = getattr(optxform, alias)(**OPTIONS[alias])
    params, state = _run(tx, steps, params=oracles.mlp_params(dtype=np.float64))
    assert state["schedule_free"].weight_sum.dtype == jnp.float64
    x = optxform.schedule_free_eval_params(state, params)
    assert x["w1"].dtype == jnp.float64
    expected = _package_run(alias, OPTIONS[alias], steps, dtype=np.float64, evaluate=True)
    _assert_close(x, expected, rtol=1e-10, atol=1e-12)


def test_eval_params_before_any_step_are_the_params():
    params = jax.tree.map(jnp.asarray, oracles.mlp_params())
    for tx in (optxform.schedule_free_adamw(), optxform.schedule_free_sgd(momentum=0.5)):
        x = optxform.schedule_free_eval_params(tx.init(params), params)
        for name in params:
            np.testing.assert_array_equal(x[name], params[name])


# ------------------------------------------------- options the registry rows cannot reach


def test_a_learning_rate_changed_between_steps_follows_the_package():
    """inject_hyperparams + tree_set, as the package's ``param_groups[0]['lr'] = ...``: a
    rise moves the largest learning rate (and so the averaging weights), a fall does not."""
    lrs = [0.01] * 8 + [0.03] * 8 + [0.005] * 8
    tx = optxform.inject_hyperparams(optxform.schedule_free_adamw)(learning_rate=lrs[0],
                                                                   warmup_steps=4)
    params, state = _run(tx, 8)
    for start in (8, 16):
        state = optxform.tree_set(state, learning_rate=lrs[start])
        params, state = _run(tx, 8, params=params, start=start, state=state)
    expected = _package_run("schedule_free_adamw", {"learning_rate": 0.01, "warmup_steps": 4},
                            24, lrs=lrs)
    _assert_close(params, expected[-1])
    inner = state.inner_state["schedule_free"]
    np.testing.assert_allclose(inner.lr_max, 0.03, rtol=1e-7)


def test_a_learning_rate_schedule_follows_the_package():
    def schedule(count):
        return 0.2 * jnp.power(0.95, count.astype(jnp.float32))

    tx = optxform.schedule_free_sgd(schedule, warmup_steps=5)
    params, _ = _run(tx, 20)
    lrs = [0.2 * 0.95 ** t for t in range(20)]
    expected = _package_run("schedule_free_sgd", {"learning_rate": 0.2, "warmup_steps": 5},
                            20, lrs=lrs)
    _assert_close(params, expected[-1])


def test_complex_params_follow_the_package():
    """Schedule-Free SGD is complex-linear: the package's complex tensors and our real
    views agree (AdamW differs: the package squares a complex gradient, g*g, not |g|^2)."""
    import torch

    rng = np.random.default_rng(0)
    start = (rng.standard_normal((3, 2)) + 1j * rng.standard_normal((3, 2))).astype(np.complex64)
    grads = [(rng.standard_normal((3, 2)) + 1j * rng.standard_normal((3, 2)))
             .astype(np.complex64) for _ in range(10)]
    kwargs = {"learning_rate": 0.1, "weight_decay": 0.05, "warmup_steps": 2}
    tx = optxform.schedule_free_sgd(**kwargs)
    params = {"z": jnp.asarray(start)}
    state = tx.init(params)
    z = torch.tensor(start, requires_grad=True)
    opt = oracles.reference_optimizer(PACKAGE["schedule_free_sgd"])([z],
                                                                    **_to_torch(kwargs))
    opt.train()
    for g in grads:
        updates, state = tx.update({"z": jnp.asarray(g)}, state, params)
        params = optxform.apply_updates(params, updates)
        z.grad = torch.tensor(g)
        opt.step()
        np.testing.assert_allclose(params["z"], z.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert params["z"].dtype == jnp.complex64
    x = optxform.schedule_free_eval_params(state, params)
    opt.eval()
    assert x["z"].dtype == jnp.complex64
    np.testing.assert_allclose(x["z"], z.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("alias", sorted(PACKAGE))
def test_a_zero_learning_rate_leaves_the_params_as_they_are(alias):
    """The package's weight sum stays 0 and its ``ZeroDivisionError`` gives c = 0."""
    params = oracles.mlp_params()
    out, state = _run(getattr(optxform, alias)(learning_rate=0.0), 3)
    expected = _package_run(alias, {"learning_rate": 0.0}, 3)[-1]
    for name in params:
        np.testing.assert_array_equal(out[name], params[name])
        np.testing.assert_array_equal(out[name], expected[name])
    assert float(state["schedule_free"].weight_sum) == 0.0


def test_nu_dtype_sets_the_second_moment_storage():
    params = jax.tree.map(jnp.asarray, oracles.mlp_params())
    plain, _ = _run(optxform.schedule_free_adamw(1e-2), 10)
    low, state = _run(optxform.schedule_free_adamw(1e-2, nu_dtype=jnp.bfloat16), 10)
    assert all(v.dtype == jnp.bfloat16 for v in jax.tree.leaves(state["rms"].nu))
    assert all(v.dtype == jnp.float32 for v in jax.tree.leaves(state["schedule_free"].z))
    for name in params:
        np.testing.assert_allclose(low[name], plain[name], atol=2e-3)


# ------------------------------------------------------------------------- validation


BAD = [
    ("schedule_free_adamw", "learning_rate", -0.1), ("schedule_free_adamw", "b1", 0.0),
    ("schedule_free_adamw", "b1", 1.0), ("schedule_free_adamw", "b2", 1.0),
    ("schedule_free_adamw", "eps", -1e-8), ("schedule_free_adamw", "weight_decay", -0.1),
    ("schedule_free_adamw", "warmup_steps", -1), ("schedule_free_adamw", "warmup_steps", 2.5),
    ("schedule_free_adamw", "warmup_steps", True), ("schedule_free_adamw", "r", -1.0),
    ("schedule_free_adamw", "weight_lr_power", -2.0),
    ("schedule_free_sgd", "learning_rate", -1.0), ("schedule_free_sgd", "momentum", 0.0),
    ("schedule_free_sgd", "momentum", 1.0), ("schedule_free_sgd", "weight_decay", -0.1),
    ("schedule_free_sgd", "warmup_steps", None), ("schedule_free_sgd", "r", -0.5),
    ("schedule_free_sgd", "weight_lr_power", float("nan")),
]


@pytest.mark.parametrize("alias,name,value", BAD, ids=[f"{a}-{n}-{v}" for a, n, v in BAD])
def test_a_bad_option_is_refused_naming_it(alias, name, value):
    with pytest.raises(ValueError, match=rf"Invalid {name}\b"):
        getattr(optxform, alias)(**{name: value})


def test_good_edge_values_are_accepted():
    for tx in (optxform.schedule_free_adamw(learning_rate=0.0, b2=0.0, eps=0.0,
                                            warmup_steps=1, r=0.0, weight_lr_power=0.0),
               optxform.schedule_free_sgd(momentum=0.999, warmup_steps=np.int64(5))):
        assert isinstance(tx, optxform.GradientTransformation)
    with pytest.raises(ValueError, match="nu_dtype"):
        optxform.schedule_free_adamw(nu_dtype=jnp.int32)


def test_the_update_needs_the_params():
    tx = optxform.schedule_free_sgd()
    params = {"w": jnp.ones(2)}
    with pytest.raises(ValueError, match="params"):
        tx.update({"w": jnp.ones(2)}, tx.init(params))


# --------------------------------------------------------------- finding the state


def _sgd(**kwargs):
    return optxform.schedule_free_sgd(learning_rate=0.1, **kwargs)


WRAPPED = {
    "inject_hyperparams": lambda: optxform.inject_hyperparams(optxform.schedule_free_sgd)(
        learning_rate=0.1),
    "chain": lambda: optxform.chain(optxform.clip_by_global_norm(10.0), _sgd()),
    "masked": lambda: optxform.masked(_sgd(), {"w1": True, "b1": True, "w2": True,
                                               "k": True}),
    "apply_if_finite": lambda: optxform.apply_if_finite(_sgd(), 3),
    "block": lambda: optxform.scale_by_schedule_free(learning_rate=0.1),
}


@pytest.mark.parametrize("name", sorted(WRAPPED))
def test_eval_params_find_the_state_inside_wrappers(name):
    plain_params, plain_state = _run(_sgd(), 5)
    want = optxform.schedule_free_eval_params(plain_state, plain_params)
    params, state = _run(WRAPPED[name](), 5)
    got = optxform.schedule_free_eval_params(state, params)
    _assert_close(got, jax.tree.map(np.asarray, want), rtol=1e-6, atol=1e-7)


def test_eval_params_of_param_groups_take_each_group_from_its_own_state():
    labels = {"w1": "adamw", "w2": "adamw", "b1": "sgd", "k": "frozen"}
    adamw = optxform.schedule_free_adamw(**OPTIONS["schedule_free_adamw"])
    sgd = optxform.schedule_free_sgd(**OPTIONS["schedule_free_sgd"])
    tx = optxform.multi_transform({"adamw": adamw, "sgd": sgd, "frozen": optxform.freeze()},
                                  labels)
    params, state = _run(tx, 6)
    x = optxform.schedule_free_eval_params(state, params)
    groups = [node for node in jax.tree.leaves(
        state, is_leaf=lambda n: isinstance(n, optxform.ScaleByScheduleFreeState))
        if isinstance(node, optxform.ScaleByScheduleFreeState)]
    held = {}
    for sf in groups:  # x = (y - (1 - b1) z) / b1 with the group's own z and b1 = 0.8
        np.testing.assert_allclose(sf.b1, 0.8, rtol=1e-7)
        for name, z in sf.z.items():
            if hasattr(z, "dtype"):
                held[name] = True
                want = (np.asarray(params[name]) - 0.2 * np.asarray(z)) / 0.8
                np.testing.assert_allclose(x[name], want, rtol=1e-5, atol=1e-6, err_msg=name)
                assert not np.allclose(x[name], params[name])
    assert sorted(held) == ["b1", "w1", "w2"]
    np.testing.assert_array_equal(x["k"], params["k"])  # in no Schedule-Free group
    only_w = optxform.masked(sgd, {"w1": True, "w2": False, "b1": False, "k": False})
    params, state = _run(only_w, 3)
    x = optxform.schedule_free_eval_params(state, params)
    assert not np.allclose(x["w1"], params["w1"])
    np.testing.assert_array_equal(x["w2"], params["w2"])


def test_eval_params_refuse_a_state_without_one_or_with_two():
    params = jax.tree.map(jnp.asarray, oracles.mlp_params())
    with pytest.raises(ValueError, match="no Schedule-Free state"):
        optxform.schedule_free_eval_params(optxform.adam().init(params), params)
    two = optxform.chain(_sgd(), _sgd())
    with pytest.raises(ValueError, match="2 Schedule-Free states"):
        optxform.schedule_free_eval_params(two.init(params), params)
    state = _sgd().init(params)
    with pytest.raises(ValueError, match="does not match"):
        optxform.schedule_free_eval_params(state, {"w1": params["w1"]})


# ------------------------------------------------------------- packed, sharded, resume


@pytest.mark.parametrize("alias", sorted(PACKAGE))
def test_packed_equals_the_plain_optimizer(alias):
    make = lambda: getattr(optxform, alias)(**OPTIONS[alias])  # noqa: E731
    plain_params, plain_state = _run(make(), 12)
    tx = optxform.packed(make())
    params, state = _run(tx, 12)
    _assert_close(params, jax.tree.map(np.asarray, plain_params), rtol=2e-6, atol=1e-7)
    with pytest.raises(ValueError, match="unpack_state"):
        optxform.schedule_free_eval_params(state, params)
    unpacked = optxform.unpack_state(state, params)
    _assert_close(optxform.schedule_free_eval_params(unpacked, params),
                  jax.tree.map(np.asarray, optxform.schedule_free_eval_params(plain_state,
                                                                           plain_params)),
                  rtol=2e-6, atol=1e-7)


def _sharded_loss(params, t):
    x = jax.random.normal(jax.random.fold_in(jax.random.PRNGKey(3), t), (16, 8))
    return jnp.mean(jnp.tanh(x @ params["w"] + params["b"][None, :]) ** 2)


@pytest.mark.parametrize("alias", sorted(PACKAGE))
def test_sharded_jit_keeps_the_params_layout_and_the_trajectory(alias):
    assert jax.device_count() == 8
    mesh = jax.make_mesh((2, 4), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
    specs = {"w": P("data", "model"), "b": P("model")}
    rng = np.random.default_rng(0)
    host = {"w": rng.standard_normal((8, 16)).astype(np.float32),
            "b": rng.standard_normal(16).astype(np.float32)}
    tx = getattr(optxform, alias)(**OPTIONS[alias])
    grad = jax.grad(_sharded_loss)

    @jax.jit
    def step(params, state, t):
        updates, state = tx.update(grad(params, t), state, params)
        return optxform.apply_updates(params, updates), state

    def train(params, state):
        for t in range(6):
            params, state = step(params, state, jnp.asarray(t, jnp.int32))
        return params, state

    params = jax.device_put(host, {k: NamedSharding(mesh, s) for k, s in specs.items()})
    state = optxform.sharded_init(tx, params)
    z = state["schedule_free"].z
    for name in specs:
        assert z[name].sharding.is_equivalent_to(params[name].sharding, z[name].ndim), name
    params, state = train(params, state)
    for name in specs:
        assert params[name].sharding.is_equivalent_to(
            NamedSharding(mesh, specs[name]), params[name].ndim), name
        assert state["schedule_free"].z[name].sharding.is_equivalent_to(
            params[name].sharding, params[name].ndim), name
    want_params, want_state = train(jax.tree.map(jnp.asarray, host),
                                    tx.init(jax.tree.map(jnp.asarray, host)))
    _assert_close(params, jax.tree.map(np.asarray, want_params), rtol=1e-6, atol=1e-7)
    _assert_close(optxform.schedule_free_eval_params(state, params),
                  jax.tree.map(np.asarray,
                               optxform.schedule_free_eval_params(want_state, want_params)),
                  rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("alias", sorted(PACKAGE))
def test_state_dict_round_trip_resumes_bit_identically(alias, tmp_path):
    make = lambda: getattr(optxform, alias)(**OPTIONS[alias])  # noqa: E731
    straight, straight_state = _run(make(), 8)
    params, state = _run(make(), 4)
    saved = optxform.state_dict(state)
    assert any(key.endswith("weight_sum") for key in saved)
    tx = make()
    loaded = optxform.load_state_dict(tx.init(params), saved)
    optxform.save_state(tmp_path / "sf.ckpt", state)
    from_file = optxform.load_state(tmp_path / "sf.ckpt", tx.init(params))
    for resumed_state in (loaded, from_file):
        resumed, resumed_state = _run(tx, 4, params=params, start=4, state=resumed_state)
        for name in straight:
            np.testing.assert_array_equal(resumed[name], straight[name], err_msg=name)
        for a, b in zip(jax.tree.leaves(resumed_state), jax.tree.leaves(straight_state)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_state_scalars_are_float32_or_float64_under_x64(x64):
    params = {"w": jnp.ones(3, jnp.float32)}
    state = optxform.schedule_free_adamw().init(params)
    sf = state["schedule_free"]
    assert (sf.b1.dtype, sf.lr_max.dtype, sf.weight_sum.dtype) == (jnp.float64,) * 3
    assert float(sf.b1) == 0.9 and float(sf.lr_max) == -1.0
    assert sf.z["w"].dtype == jnp.float32
    jax.config.update("jax_enable_x64", False)
    sf = optxform.schedule_free_sgd(momentum=0.5).init(params)["schedule_free"]
    assert (sf.b1.dtype, sf.weight_sum.dtype) == (jnp.float32, jnp.float32)
    assert float(sf.b1) == 0.5
