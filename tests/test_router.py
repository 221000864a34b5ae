"""The parameter router and muon_with_adamw, on flax linen, flax nnx and equinox models."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen, nnx

import optxform


def _step(tx, params, state, grads):
    updates, state = tx.update(grads, state, params)
    return optxform.apply_updates(params, updates), state


def _grads(params, t=1.0):
    return jax.tree.map(lambda p: jnp.sin(p * t + 0.3), params)


class _Linen(linen.Module):
    @linen.compact
    def __call__(self, tokens):
        x = linen.Embed(11, 8, name="embed")(tokens)
        x = linen.LayerNorm(name="norm")(x)
        x = linen.Dense(8, name="block")(x)
        return linen.Dense(11, name="lm_head")(x)


class _Nnx(nnx.Module):
    def __init__(self, rngs):
        self.embed = nnx.Embed(11, 8, rngs=rngs)
        self.block = nnx.Linear(8, 8, rngs=rngs)
        self.norm = nnx.LayerNorm(8, rngs=rngs)
        self.lm_head = nnx.Linear(8, 11, rngs=rngs)


class _Eqx(eqx.Module):
    embed: eqx.nn.Embedding
    block: eqx.nn.Linear
    lm_head: eqx.nn.Linear

    def __init__(self, key):
        k1, k2, k3 = jax.random.split(key, 3)
        self.embed = eqx.nn.Embedding(11, 8, key=k1)
        self.block = eqx.nn.Linear(8, 8, key=k2)
        self.lm_head = eqx.nn.Linear(8, 11, key=k3)


def _linen_params():
    return _Linen().init(jax.random.PRNGKey(0), jnp.zeros((2,), jnp.int32))["params"]


def _nnx_params():
    return nnx.state(_Nnx(nnx.Rngs(0)), nnx.Param)


def _eqx_params():
    return eqx.filter(_Eqx(jax.random.PRNGKey(0)), eqx.is_array)


EXPECTED = {  # path -> label, per framework
    "linen": {"embed/embedding": "embedding", "norm/scale": "adamw", "norm/bias": "adamw",
              "block/kernel": "muon", "block/bias": "adamw", "lm_head/kernel": "head",
              "lm_head/bias": "head"},
    "nnx": {"embed/embedding": "embedding", "norm/scale": "adamw", "norm/bias": "adamw",
            "block/kernel": "muon", "block/bias": "adamw", "lm_head/kernel": "head",
            "lm_head/bias": "head"},
    "eqx": {"embed/weight": "embedding", "block/weight": "muon", "block/bias": "adamw",
            "lm_head/weight": "head", "lm_head/bias": "head"},
}
MODELS = {"linen": _linen_params, "nnx": _nnx_params, "eqx": _eqx_params}
GROUPS = [optxform.ParamGroup("embedding", path=r"(^|/)embed"),
          optxform.ParamGroup("head", path="head"),
          optxform.ParamGroup("muon", min_ndim=2)]


def _labels_by_path(params, labels) -> dict:
    flat = jax.tree_util.tree_flatten_with_path(labels)[0]
    out = {}
    for path, label in flat:
        name = "/".join(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k))))
                        for k in path)
        out[name.removesuffix("/value")] = label
    return out


@pytest.mark.parametrize("framework", sorted(MODELS))
def test_router_labels_every_framework_by_path_and_rank(framework):
    params = MODELS[framework]()
    labels = optxform.param_labels(GROUPS, "adamw")(params)
    assert jax.tree.structure(labels) == jax.tree.structure(params)
    assert _labels_by_path(params, labels) == EXPECTED[framework]


@pytest.mark.parametrize("framework", sorted(MODELS))
def test_muon_with_adamw_equals_each_optimizer_on_its_group(framework):
    params = MODELS[framework]()
    tx = optxform.muon_with_adamw(0.02, learning_rate_multipliers={"embedding": 2.0},
                                  weight_decay_multipliers={"muon": 0.5},
                                  adamw_weight_decay=0.01, ns_dtype=jnp.float32)
    state = tx.init(params)
    new, state = jax.jit(lambda p, s, g: _step(tx, p, s, g))(params, state, _grads(params))
    labels = _labels_by_path(params, optxform.param_labels(GROUPS, "adamw")(params))
    flat_params = dict(zip(labels, jax.tree.leaves(params)))
    flat_new = dict(zip(labels, jax.tree.leaves(new)))
    flat_grads = dict(zip(labels, jax.tree.leaves(_grads(params))))
    alone = {"muon": optxform.muon(0.02, 0.05, ns_dtype=jnp.float32),
             "embedding": optxform.adamw(6e-4, 0.9, 0.95, 1e-8, 0.01),
             "head": optxform.adamw(3e-4, 0.9, 0.95, 1e-8, 0.01),
             "adamw": optxform.adamw(3e-4, 0.9, 0.95, 1e-8, 0.01)}
    for path, label in labels.items():
        p = {"x": flat_params[path]}
        want, _ = _step(alone[label], p, alone[label].init(p), {"x": flat_grads[path]})
        np.testing.assert_allclose(flat_new[path], want["x"], rtol=1e-6, atol=1e-7,
                                   err_msg=f"{framework} {path} ({label})")
    # Every group moved its params.
    assert all(not np.array_equal(flat_new[p], flat_params[p]) for p in labels)


def test_stacked_layers_route_to_muon_with_batch_dims():
    params = {"layers": {"kernel": jnp.ones((3, 4, 4)), "bias": jnp.ones((3, 4))},
              "embed": jnp.ones((9, 4))}
    tx = optxform.muon_with_adamw(batch_dims=1, ns_dtype=jnp.float32)
    state = tx.init(params)
    labels = optxform.param_labels([optxform.ParamGroup("embedding", path="embed"),
                                    optxform.ParamGroup("muon", min_ndim=3)], "adamw")(params)
    assert labels == {"embed": "embedding", "layers": {"bias": "adamw", "kernel": "muon"}}
    new, _ = _step(tx, params, state, _grads(params))
    assert new["layers"]["kernel"].shape == (3, 4, 4)


def test_router_state_round_trips_and_resumes(tmp_path):
    params = _linen_params()
    tx = optxform.muon_with_adamw(ns_dtype=jnp.float32)
    step = jax.jit(lambda p, s, g: _step(tx, p, s, g))
    state = tx.init(params)
    params, state = step(params, state, _grads(params))
    optxform.save_state(tmp_path / "s.state", state)
    restored = optxform.load_state(tmp_path / "s.state", tx.init(params))
    a, _ = step(params, state, _grads(params, 2.0))
    b, _ = step(params, restored, _grads(params, 2.0))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    keys = optxform.state_dict(state)
    assert any(k.startswith("inner_states/muon") and "muon.mu/block/kernel" in k for k in keys)


def test_bad_router_input_raises_naming_it():
    with pytest.raises(ValueError, match="path"):
        optxform.ParamGroup("x", path="(")
    with pytest.raises(ValueError, match="groups"):
        optxform.param_labels(["muon"], "adamw")
    with pytest.raises(ValueError, match=r"no transform for label\(s\) \['adamw'\]"):
        optxform.route({"muon": optxform.muon()}, [optxform.ParamGroup("muon", min_ndim=2)],
                       default="adamw")
    with pytest.raises(ValueError, match="learning_rate_multipliers.*'mlp'"):
        optxform.muon_with_adamw(learning_rate_multipliers={"mlp": 2.0})
    with pytest.raises(ValueError, match="weight_decay_multipliers"):
        optxform.muon_with_adamw(weight_decay_multipliers={"muon": -1.0})
    # Without the router, Muon names the non-matrix param.
    with pytest.raises(ValueError, match="'block/bias'.*muon_with_adamw"):
        optxform.muon().init(_linen_params())
