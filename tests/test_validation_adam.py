"""Construction-time validation of the Adam family and Adafactor (API.md section 8).

Every invalid value raises ``ValueError`` naming optxform's own argument; where torch has
the same option, torch rejects the same value (so we reject at least what torch rejects).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import optxform

ADAM_LIKE = {"adam": "Adam", "adamw": "AdamW", "adamax": "Adamax", "nadam": "NAdam",
             "radam": "RAdam"}


def _torch_kwargs(kw: dict) -> dict:
    out = {{"learning_rate": "lr"}.get(k, k): v for k, v in kw.items() if k not in ("b1", "b2")}
    if "b1" in kw or "b2" in kw:
        out["betas"] = (kw.get("b1", 0.9), kw.get("b2", 0.999))
    return out


INVALID = [
    *[(alias, kw, name) for alias in ADAM_LIKE for kw, name in [
        ({"learning_rate": -1e-3}, "learning_rate"),
        ({"eps": -1e-8}, "eps"),
        ({"b1": 1.0}, "b1"),
        ({"b1": -0.1}, "b1"),
        ({"b2": 1.0}, "b2"),
        ({"b2": 1.5}, "b2"),
        ({"weight_decay": -0.1}, "weight_decay"),
    ]],
    ("nadam", {"momentum_decay": -1e-3}, "momentum_decay"),
    ("sparse_adam", {"learning_rate": 0.0}, "learning_rate"),   # torch: lr must be > 0
    ("sparse_adam", {"learning_rate": -1.0}, "learning_rate"),
    ("sparse_adam", {"eps": 0.0}, "eps"),                       # torch: eps must be > 0
    ("sparse_adam", {"b1": 1.0}, "b1"),
    ("sparse_adam", {"b2": -0.5}, "b2"),
    ("adafactor", {"learning_rate": -1e-2}, "learning_rate"),
    ("adafactor", {"beta2_decay": 0.5}, "beta2_decay"),
    ("adafactor", {"eps": (-1e-30, 1e-3)}, "eps"),
    ("adafactor", {"eps": (None, -1e-3)}, "eps"),
    ("adafactor", {"d": 0.5}, "d"),
    ("adafactor", {"weight_decay": -0.1}, "weight_decay"),
]

TORCH_CLASSES = dict(ADAM_LIKE, sparse_adam="SparseAdam", adafactor="Adafactor")


@pytest.mark.parametrize("alias,kw,name", INVALID,
                         ids=[f"{a}-{next(iter(k))}={next(iter(k.values()))}"
                              for a, k, _ in INVALID])
def test_invalid_hyperparameter_names_the_argument_and_torch_rejects_it_too(alias, kw, name):
    with pytest.raises(ValueError, match=name):
        getattr(optxform, alias)(**kw)
    with pytest.raises(ValueError):
        getattr(torch.optim, TORCH_CLASSES[alias])([torch.zeros(2, requires_grad=True)],
                                                   **_torch_kwargs(kw))


def test_adafactor_eps_must_be_a_pair():
    with pytest.raises(ValueError, match="eps"):
        optxform.adafactor(eps=1e-3)
    with pytest.raises(ValueError, match="eps"):
        optxform.adafactor(eps=(None, 1e-3, 1.0))


@pytest.mark.parametrize("alias", [*ADAM_LIKE, "adafactor"])
def test_zero_learning_rate_and_eps_are_allowed_as_in_torch(alias):
    kw = {"learning_rate": 0.0, "eps": (0.0, 0.0) if alias == "adafactor" else 0.0}
    tx = getattr(optxform, alias)(**kw)
    params = {"w": jnp.ones((2, 3))}
    updates, _ = tx.update({"w": jnp.full((2, 3), 0.5)}, tx.init(params), params)
    assert np.all(np.asarray(updates["w"]) == 0.0)  # a zero learning rate moves nothing
    getattr(torch.optim, TORCH_CLASSES[alias])([torch.zeros(2, requires_grad=True)],
                                               **_torch_kwargs(kw))
    if alias != "adafactor":
        getattr(optxform, alias)(b1=0.0, b2=0.0)


@pytest.mark.parametrize("alias", [*ADAM_LIKE, "sparse_adam", "adafactor"])
def test_schedules_arrays_and_traced_values_are_accepted(alias):
    make = getattr(optxform, alias)
    make(learning_rate=lambda count: 1e-3 / (1.0 + count.astype(jnp.float32)))
    make(learning_rate=jnp.asarray(1e-3))
    with pytest.raises(ValueError, match="learning_rate"):
        make(learning_rate=jnp.asarray(-1e-3))
    params = {"w": jnp.ones((2, 3))}

    @jax.jit
    def traced(lr):  # what inject_hyperparams does: values are tracers, checks step aside
        tx = make(learning_rate=lr)
        return tx.update(params, tx.init(params), params)[0]

    assert traced(jnp.asarray(1e-3))["w"].shape == (2, 3)


@pytest.mark.parametrize("factory,kw,name", [
    (optxform.scale_by_adam, {"b1": 1.0}, "b1"),
    (optxform.scale_by_adam, {"b2": -0.1}, "b2"),
    (optxform.scale_by_adam, {"eps": -1.0}, "eps"),
    (optxform.scale_by_adam, {"eps_root": -1e-8}, "eps_root"),
    (optxform.scale_by_adamax, {"eps": -1.0}, "eps"),
    (optxform.scale_by_nadam, {"momentum_decay": -1.0}, "momentum_decay"),
    (optxform.scale_by_radam, {"b2": 1.0}, "b2"),
    (optxform.scale_by_sparse_adam, {"b1": -0.5}, "b1"),
    (optxform.scale_by_factored_rms, {"d": 0.9}, "d"),
    (optxform.scale_by_factored_rms, {"beta2_decay": 0.1}, "beta2_decay"),
    (optxform.scale_by_factored_rms, {"learning_rate": -1.0}, "learning_rate"),
    (optxform.add_decoupled_weight_decay, {"weight_decay": -1.0}, "weight_decay"),
    (optxform.add_decoupled_weight_decay, {"weight_decay": 0.1, "learning_rate": -1.0},
     "learning_rate"),
], ids=lambda v: getattr(v, "__name__", None))
def test_blocks_validate_their_arguments(factory, kw, name):
    with pytest.raises(ValueError, match=name):
        factory(**kw)


@pytest.mark.parametrize("tx", [optxform.scale_by_factored_rms(),
                                optxform.add_decoupled_weight_decay(0.1, 1e-2)],
                         ids=["scale_by_factored_rms", "add_decoupled_weight_decay"])
def test_blocks_that_read_params_say_so_when_they_are_missing(tx):
    params = {"w": jnp.ones((2, 3))}
    with pytest.raises(ValueError, match="needs params"):
        tx.update(params, tx.init(params))
