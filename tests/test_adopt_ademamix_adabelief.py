"""adopt, ademamix and adabelief beyond their reference rows (tests/registry.py).

The rows hold every option against ``pytorch-optimizer`` 4.1.0 on the MLP problem, in
float32 and float64. Here: what the rows cannot reach (complex params against the
reference, the clip bound's step, injected betas through the warm-up and the
rectification, the first ADOPT step), validation, ``packed``, sharded ``jit`` on 8 host
devices and the state_dict round trip.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import optxform
from tests import oracles
from tests.test_parallel import (_assert_state_mirrors_params, _assert_trees_close, _mesh,
                                 sharded_train)

ALIASES = {
    "adopt": lambda: optxform.adopt(1e-2, weight_decay=0.05, weight_decouple=True),
    "ademamix": lambda: optxform.ademamix(1e-2, t_alpha_beta3=5.0, weight_decay=0.05),
    "adabelief": lambda: optxform.adabelief(1e-2, rectify=True, ams_bound=True,
                                            weight_decay=0.05),
}
STEPS = 12


def _params():
    return jax.tree.map(jnp.asarray, oracles.mlp_params())


def _run(tx, params, steps=STEPS):
    """Params and state after ``steps`` jitted steps on the MLP problem (a scan)."""
    grad = oracles.grad_fn("mlp")

    @jax.jit
    def train(params):
        def body(carry, t):
            params, state = carry
            updates, state = tx.update(grad(params, t), state, params)
            return (optxform.apply_updates(params, updates), state), None

        return jax.lax.scan(body, (params, tx.init(params)),
                            jnp.arange(steps, dtype=jnp.int32))[0]

    return train(params)


def _moved(before, after) -> float:
    return max(float(jnp.max(jnp.abs(a - b)))
               for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after)))


# --- what the rows cannot reach ------------------------------------------------------------


def test_adopt_first_step_records_v_and_moves_only_by_decoupled_decay():
    params = {"w": jnp.array([2.0, -1.0])}
    g = {"w": jnp.array([0.5, 3.0])}
    plain = optxform.adopt(0.1)
    u, state = plain.update(g, plain.init(params), params)
    np.testing.assert_array_equal(u["w"], [0.0, 0.0])
    np.testing.assert_array_equal(state["adopt"].nu["w"], [0.25, 9.0])
    np.testing.assert_array_equal(state["adopt"].mu["w"], [0.0, 0.0])
    decayed = optxform.adopt(0.1, weight_decay=0.5, weight_decouple=True)
    u, _ = decayed.update(g, decayed.init(params), params)
    np.testing.assert_allclose(u["w"], [-0.1, 0.05], rtol=1e-6)  # theta * (1 - 0.05) - theta


def test_adopt_clip_lambda_sees_the_step_number_two_at_the_first_update():
    """With ``clip_lambda(t) = t`` the first update is clipped at 2 (the reference's step)."""
    params = {"w": jnp.zeros(2)}
    tx = optxform.adopt(1.0, clip_lambda=lambda t: t)
    update = jax.jit(tx.update)
    state = tx.init(params)
    _, state = update({"w": jnp.array([1.0, 1.0])}, state, params)
    u, state = update({"w": jnp.array([100.0, -0.5])}, state, params)
    # normalised: 100 / 1 clipped to 2, -0.5 unclipped; momentum (1 - 0.9) * that
    np.testing.assert_allclose(u["w"], [-0.2, 0.05], rtol=1e-6)
    u, _ = update({"w": jnp.array([1e4, 0.0])}, state, params)
    # step 3: bound 3; m = 0.9 * 0.2 + 0.1 * 3
    np.testing.assert_allclose(u["w"][0], -(0.9 * 0.2 + 0.1 * 3.0), rtol=1e-6)


@pytest.mark.parametrize("alias,reference,kwargs", [
    ("adopt", "ADOPT", {"weight_decay": 0.05}),
    ("adabelief", "AdaBelief", {"rectify": True, "ams_bound": True, "weight_decay": 0.05}),
    ("adabelief", "AdaBelief", {"weight_decay": 0.05, "weight_decouple": False}),
])
def test_complex_params_match_the_reference(alias, reference, kwargs):
    """Complex params as real and imaginary parts (the reference's ``view_as_real``)."""
    import torch

    rng = np.random.default_rng(0)
    shape = (3, 2)
    start = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    grads = [(rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
             for _ in range(15)]
    tx = getattr(optxform, alias)(1e-2, **kwargs)
    update = jax.jit(tx.update)
    params = {"z": jnp.asarray(start)}
    state = tx.init(params)
    z = torch.tensor(start, requires_grad=True)
    opt = oracles.reference_optimizer(f"pytorch_optimizer:{reference}")([z], lr=1e-2, **kwargs)
    for t, g in enumerate(grads):
        updates, state = update({"z": jnp.asarray(g)}, state, params)
        params = optxform.apply_updates(params, updates)
        z.grad = torch.tensor(g)
        opt.step()
        np.testing.assert_allclose(np.asarray(params["z"]), z.detach().numpy(), rtol=1e-5,
                                   atol=1e-6, err_msg=f"step {t + 1}")
    assert np.max(np.abs(np.asarray(params["z"]) - start)) > 1e-2


def test_ademamix_refuses_complex_params_like_the_reference():
    tx = optxform.ademamix()
    params = {"z": jnp.ones(2, jnp.complex64)}
    with pytest.raises(ValueError, match="complex"):
        tx.update(params, tx.init(params), params)


@pytest.mark.parametrize("alias,kwargs", [
    ("ademamix", {"t_alpha_beta3": 5.0, "b1": 0.8, "b3": 0.99}),
    ("adabelief", {"rectify": True, "b2": 0.99}),
])
def test_injected_betas_take_the_same_warm_up_and_rectification(alias, kwargs):
    """Betas given as (traced) arrays follow the same path as Python numbers."""
    make = getattr(optxform, alias)
    plain, _ = _run(make(1e-2, **kwargs), _params())
    injected = optxform.inject_hyperparams(make)(learning_rate=1e-2, **kwargs)
    got, state = _run(injected, _params())
    _assert_trees_close(got, plain, rtol=1e-5, atol=1e-7)
    assert _moved(_params(), got) > 1e-3
    assert float(optxform.tree_get(state, "b1" if alias == "ademamix" else "b2")) \
        == pytest.approx(kwargs["b1" if alias == "ademamix" else "b2"])


def test_ademamix_warm_up_reaches_alpha_and_beta3():
    """After ``t_alpha_beta3`` steps the warm-up run equals a run of the plain rule fed the
    same state: both schedules have reached their final values."""
    params = _params()
    warm = optxform.scale_by_ademamix(t_alpha_beta3=3.0)
    plain = optxform.scale_by_ademamix()
    grad = oracles.grad_fn("mlp")
    state = warm.init(params)
    for t in range(3):
        _, state = warm.update(grad(params, t), state)
    g = grad(params, 3)
    got, _ = warm.update(g, state)
    want, _ = plain.update(g, state)
    _assert_trees_close(got, want, rtol=1e-6, atol=0.0)
    # at the first step beta3(1) is between b1 and b3: the slow momentum moves faster
    _, early = warm.update(g, warm.init(params))
    _, late = plain.update(g, plain.init(params))
    log_b1, log_b3 = np.log(0.9), np.log(0.9999)
    expected = -np.expm1(log_b1 * log_b3 / (2 / 3 * log_b3 + 1 / 3 * log_b1)) / 1e-4
    ratio = np.asarray(early.mu_slow["w1"]) / np.asarray(late.mu_slow["w1"])
    np.testing.assert_allclose(ratio, expected, rtol=1e-5)
    assert expected > 2.5


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize("make,kwargs,name", [
    (optxform.adopt, {"clip_lambda": 1.0}, "clip_lambda"),
    (optxform.adopt, {"b2": 1.0}, "b2"),
    (optxform.adopt, {"eps": -1e-6}, "eps"),
    (optxform.ademamix, {"b3": 1.0}, "b3"),
    (optxform.ademamix, {"alpha": -1.0}, "alpha"),
    (optxform.ademamix, {"t_alpha_beta3": 0.0}, "t_alpha_beta3"),
    (optxform.ademamix, {"t_alpha_beta3": "10"}, "t_alpha_beta3"),
    (optxform.ademamix, {"t_alpha_beta3": 10.0, "b1": 0.0}, "b1"),
    (optxform.ademamix, {"t_alpha_beta3": 10.0, "b3": 0.0}, "b3"),
    (optxform.adabelief, {"n_sma_threshold": 3}, "n_sma_threshold"),
    (optxform.adabelief, {"rectify": 1}, "rectify"),
    (optxform.adabelief, {"degenerated_to_sgd": None}, "degenerated_to_sgd"),
    (optxform.adabelief, {"ams_bound": "yes"}, "ams_bound"),
    (optxform.adabelief, {"fixed_decay": 0}, "fixed_decay"),
    (optxform.adopt, {"weight_decouple": 1}, "weight_decouple"),
    (optxform.adabelief, {"learning_rate": -1.0}, "learning_rate"),
])
def test_bad_options_are_refused_naming_them(make, kwargs, name):
    with pytest.raises(ValueError, match=rf"Invalid {name}\b"):
        make(**kwargs)


def test_accepted_edge_values_build_and_step():
    params = {"w": jnp.array([1.0, -2.0])}
    grads = {"w": jnp.array([0.5, 0.25])}
    for tx in (optxform.adopt(clip_lambda=None),
               optxform.ademamix(b1=0.0, b3=0.0),  # no warm-up: no logarithms
               optxform.adabelief(n_sma_threshold=4, rectify=True)):
        state = tx.init(params)
        for _ in range(3):
            updates, state = tx.update(grads, state, params)
            params = optxform.apply_updates(params, updates)
        assert bool(jnp.all(jnp.isfinite(params["w"])))
    assert not np.array_equal(np.asarray(params["w"]), [1.0, -2.0])  # they moved


# --- layouts, devices, checkpoints ---------------------------------------------------------


@pytest.mark.parametrize("alias", sorted(ALIASES))
def test_packed_equals_the_alias(alias):
    """Each rule is elementwise: packing the leaves changes nothing but float32 rounding of
    the scalar divisions (XLA may multiply by a reciprocal in one layout only)."""
    tx = ALIASES[alias]()
    assert optxform.rules.kinds_of(tx) == {"elementwise"}
    want, _ = _run(tx, _params())
    got, _ = _run(optxform.packed(ALIASES[alias]()), _params())
    _assert_trees_close(got, want, rtol=2e-6, atol=1e-7)
    assert _moved(_params(), want) > 1e-2


@pytest.mark.skipif(jax.device_count() < 8, reason="needs 8 (host) devices")
@pytest.mark.parametrize("alias", sorted(ALIASES))
def test_sharded_jit_matches_one_device_and_shards_state_like_params(alias):
    tx = ALIASES[alias]()
    mesh = sharded_train.make_mesh((2, 4))
    params, state, _, _ = sharded_train.setup(mesh, tx)
    assert params["w1"].sharding.spec == P(None, "model")
    assert _assert_state_mirrors_params(state, params) >= 8
    got, got_state, losses = sharded_train.train(mesh, tx, 6)
    _assert_state_mirrors_params(got_state, got)
    one = _mesh((1, 1), ("data", "model"), devices=jax.devices()[:1])
    want, _, _ = sharded_train.train(one, tx, 6)
    _assert_trees_close(got, want)
    assert losses[-1] < losses[0]
    assert isinstance(got["w1"].sharding, NamedSharding)


@pytest.mark.parametrize("alias", sorted(ALIASES))
def test_state_dict_round_trip_continues_bit_identically(alias):
    tx = ALIASES[alias]()
    params, state = _run(tx, _params(), steps=5)
    flat = optxform.state_dict(state)
    assert any(k.endswith("nu/w1") for k in flat)
    restored = optxform.load_state_dict(tx.init(params), flat)
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    grad = oracles.grad_fn("mlp")
    step = jax.jit(tx.update)
    g = grad(params, 5)
    u1, s1 = step(g, state, params)
    u2, s2 = step(g, restored, params)
    for a, b in zip(jax.tree.leaves((u1, s1)), jax.tree.leaves((u2, s2))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
