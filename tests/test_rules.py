"""Declared update rules: what the one lifting guarantees for every alias.

* a state keeps its structure when a scalar hyperparameter changes, so a checkpoint saved
  with one setting loads into another (torch's state_dict does not change either);
* complex params follow torch's convention (real and imaginary parts as separate elements);
* float16 params keep second-moment-like state in float32: one large gradient does not
  freeze the param;
* ``None`` gradient leaves pass through every alias and wrapper, state untouched;
* masks: callable pytrees are mask trees, functions are functions;
* the declaration is validated (unknown arguments, bad values) and can be read back.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import optxform
from optxform.rules import declaration_of
from tests import oracles
from tests.registry import DEFAULT_CASES


def _schedule(count):
    return 0.01 * jnp.power(0.9, count.astype(jnp.float32))


# For each alias: two settings that differ in every scalar hyperparameter (a schedule for a
# number, weight decay 0 for non-zero, maximize, betas, eps) but in no buffer-adding option.
SETTINGS = {
    "muon": ({"ns_dtype": "float32"},
             {"learning_rate": _schedule, "weight_decay": 0.0, "momentum": 0.5, "eps": 1e-5,
              "ns_dtype": "float32"}),
    "sgd": ({"momentum": 0.9}, {"learning_rate": _schedule, "momentum": 0.5,
                                "dampening": 0.1, "weight_decay": 0.1, "maximize": True}),
    "asgd": ({}, {"learning_rate": 0.05, "lambd": 0.0, "alpha": 0.5, "t0": 3.0,
                  "weight_decay": 0.1, "maximize": True}),
    "adagrad": ({}, {"lr_decay": 0.1, "weight_decay": 0.1, "eps": 1e-6, "maximize": True}),
    "adadelta": ({}, {"rho": 0.5, "eps": 1e-4, "weight_decay": 0.1, "maximize": True}),
    "rmsprop": ({"momentum": 0.9}, {"learning_rate": _schedule, "alpha": 0.9, "momentum": 0.5,
                                    "weight_decay": 0.1, "maximize": True}),
    "adam": ({}, {"learning_rate": _schedule, "b1": 0.5, "b2": 0.9, "eps": 1e-6,
                  "weight_decay": 0.1, "maximize": True}),
    "adamw": ({}, {"learning_rate": _schedule, "weight_decay": 0.0, "maximize": True,
                   "eps_root": 1e-8, "nesterov": True}),
    "adamax": ({}, {"weight_decay": 0.1, "b1": 0.5, "maximize": True}),
    "nadam": ({}, {"weight_decay": 0.1, "momentum_decay": 0.01, "maximize": True}),
    "radam": ({}, {"weight_decay": 0.1, "eps": 1e-6, "maximize": True}),
    "rprop": ({}, {"learning_rate": 0.1, "etas": (0.3, 1.5), "step_sizes": (1e-3, 1.0),
                   "maximize": True}),
    "sparse_adam": ({}, {"learning_rate": 0.1, "b1": 0.5, "maximize": True}),
    "adafactor": ({}, {"learning_rate": _schedule, "weight_decay": 0.1, "beta2_decay": -0.5,
                       "maximize": True}),
    "lion": ({}, {"learning_rate": _schedule, "b1": 0.5, "weight_decay": 0.1}),
    "schedule_free_adamw": ({}, {"learning_rate": _schedule, "b1": 0.5, "b2": 0.9, "eps": 1e-6,
                                 "weight_decay": 0.1, "warmup_steps": 5, "r": 1.0,
                                 "weight_lr_power": 1.0}),
    "schedule_free_sgd": ({}, {"learning_rate": 0.5, "momentum": 0.5, "weight_decay": 0.1,
                               "warmup_steps": 3, "r": 1.0, "weight_lr_power": 0.0}),
    "adopt": ({}, {"learning_rate": _schedule, "b1": 0.5, "b2": 0.99, "eps": 1e-4,
                   "clip_lambda": None, "weight_decay": 0.1, "maximize": True}),
    "ademamix": ({}, {"learning_rate": _schedule, "b3": 0.99, "alpha": 2.0,
                      "t_alpha_beta3": 10.0, "weight_decay": 0.1, "maximize": True}),
    "adabelief": ({}, {"learning_rate": _schedule, "b1": 0.5, "weight_decay": 0.1,
                       "rectify": True, "degenerated_to_sgd": False, "maximize": True}),
    "cautious_adamw": ({}, {"learning_rate": _schedule, "b1": 0.5, "eps": 1e-8,
                            "weight_decay": 0.1, "correct_bias": False}),
    "prodigy": ({}, {"learning_rate": _schedule, "b1": 0.5, "b2": 0.9, "b3": 0.8, "eps": 1e-6,
                     "weight_decay": 0.1, "d0": 1e-4, "d_coef": 0.5, "growth_rate": 1.02}),
    "dadapt_adam": ({}, {"learning_rate": _schedule, "b1": 0.5, "b2": 0.9, "eps": 1e-6,
                         "weight_decay": 0.1, "d0": 1e-4, "growth_rate": 1.02}),
    "dadapt_sgd": ({}, {"learning_rate": _schedule, "momentum": 0.9, "weight_decay": 0.1,
                        "d0": 1e-4, "growth_rate": 1.02}),
    "adan": ({}, {"learning_rate": _schedule, "b1": 0.5, "b3": 0.9, "weight_decay": 0.1,
                  "max_grad_norm": 0.5, "eps": 1e-6, "maximize": True}),
    "mars": ({}, {"learning_rate": _schedule, "b1": 0.5, "gamma": 0.1, "lr_1d": 1e-3,
                  "weight_decay": 0.1, "weight_decay_1d": 0.0, "mars_type": "lion",
                  "cautious": True, "maximize": True}),
    "kron": ({}, {"learning_rate": _schedule, "b1": 0.5, "weight_decay": 0.1,
                  "precond_lr": 0.2, "preconditioner_update_probability": 0.5}),
    "soap": ({}, {"learning_rate": _schedule, "b1": 0.5, "b2": 0.9, "shampoo_beta": 0.8,
                  "weight_decay": 0.1, "eps": 1e-6, "maximize": True}),
    "shampoo": ({"momentum": 0.9}, {"learning_rate": _schedule, "momentum": 0.5,
                                    "weight_decay": 0.1, "matrix_eps": 1e-4,
                                    "maximize": True}),
}


def _params(problem: str = "mlp"):
    make, _ = oracles.PROBLEMS[problem]
    return jax.tree.map(jnp.asarray, make())


def _steps(tx, params, state, n, problem="mlp"):
    grad = oracles.grad_fn(problem)
    update = jax.jit(tx.update)
    for t in range(n):
        updates, state = update(grad(params, jnp.asarray(t, jnp.int32)), state, params)
        params = optxform.apply_updates(params, updates)
    return params, state


def test_settings_cover_every_alias_with_options():
    aliases = {case.alias for case in DEFAULT_CASES} - {"lookahead"}
    assert aliases == set(SETTINGS)


@pytest.mark.parametrize("alias", sorted(SETTINGS))
def test_a_checkpoint_loads_after_a_scalar_hyperparameter_changes(alias, tmp_path):
    first, second = SETTINGS[alias]
    problem = {"sparse_adam": "embedding", "muon": "matrices", "soap": "square",
               "shampoo": "matrices"}.get(alias, "mlp")
    params = _params(problem)
    tx_a = getattr(optxform, alias)(**first)
    tx_b = getattr(optxform, alias)(**second)
    params, state = _steps(tx_a, params, tx_a.init(params), 3, problem)
    saved = optxform.state_dict(state)
    template = tx_b.init(params)
    assert optxform.state_keys(template) == optxform.state_keys(state)
    loaded = optxform.load_state_dict(template, saved)
    optxform.save_state(tmp_path / "opt.ckpt", state)
    from_file = optxform.load_state(tmp_path / "opt.ckpt", template)
    for tree in (loaded, from_file):
        for a, b in zip(jax.tree.leaves(tree), jax.tree.leaves(state)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # ... and the other setting carries on from it.
    moved, _ = _steps(tx_b, params, loaded, 2, problem)
    assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(moved))


@pytest.mark.parametrize("alias", ["adam", "adamw", "adamax", "nadam", "radam", "sgd",
                                   "rmsprop", "adagrad", "adadelta", "asgd", "rprop"])
def test_complex_params_follow_torch(alias):
    """Complex params with torch's own complex support, fed the same gradients."""
    case = next(c for c in DEFAULT_CASES if c.alias == alias)
    kwargs = dict(case.kwargs)
    if alias in ("adam", "adamw", "adamax", "nadam", "radam"):
        kwargs["learning_rate"] = 0.01
    rng = np.random.default_rng(0)
    shape = (3, 2)
    start = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    grads = [(rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
             for _ in range(15)]

    tx = case.make(**kwargs)
    update = jax.jit(tx.update)
    params = {"z": jnp.asarray(start)}
    state = tx.init(params)
    ours = []
    for g in grads:
        updates, state = update({"z": jnp.asarray(g)}, state, params)
        params = optxform.apply_updates(params, updates)
        ours.append(np.asarray(params["z"]))

    from tests.registry import _to_torch
    torch_cls = {"sgd": "SGD", "asgd": "ASGD", "adagrad": "Adagrad", "adadelta": "Adadelta",
                 "rmsprop": "RMSprop", "adam": "Adam", "adamw": "AdamW", "adamax": "Adamax",
                 "nadam": "NAdam", "radam": "RAdam", "rprop": "Rprop"}[alias]
    z = torch.tensor(start, requires_grad=True)
    opt = getattr(torch.optim, torch_cls)([z], **_to_torch(kwargs))
    for t, g in enumerate(grads):
        z.grad = torch.tensor(g)
        opt.step()
        np.testing.assert_allclose(ours[t], z.detach().numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=f"{alias}: step {t + 1}")


def test_float16_params_keep_adams_second_moment_in_float32():
    params = {"w": jnp.ones(4, jnp.float16)}
    tx = optxform.adam(1e-2)
    state = tx.init(params)
    assert state["adam"].nu["w"].dtype == jnp.float32
    assert state["adam"].mu["w"].dtype == jnp.float16
    update = jax.jit(tx.update)
    before = params["w"]
    for g in [6e4, 1.0, 1.0, 1.0]:
        updates, state = update({"w": jnp.full(4, g, jnp.float16)}, state, params)
        assert np.all(np.isfinite(np.asarray(updates["w"], np.float32)))
        params = optxform.apply_updates(params, updates)
    assert np.all(np.isfinite(np.asarray(state["adam"].nu["w"])))
    assert np.all(np.asarray(params["w"], np.float32) < np.asarray(before, np.float32) - 0.02)


STORAGE_OPTIONS = {
    "adam": ("mu_dtype", "nu_dtype"), "adamw": ("mu_dtype", "nu_dtype"),
    "adamax": ("mu_dtype", "nu_dtype"), "nadam": ("mu_dtype", "nu_dtype"),
    "radam": ("mu_dtype", "nu_dtype"), "sparse_adam": ("mu_dtype", "nu_dtype"),
    "sgd": ("accumulator_dtype",), "rmsprop": ("nu_dtype", "accumulator_dtype"),
    "adagrad": ("nu_dtype",), "adadelta": ("nu_dtype",), "adafactor": ("nu_dtype",),
    "lion": ("mu_dtype",), "adopt": ("mu_dtype", "nu_dtype"),
    "ademamix": ("mu_dtype", "nu_dtype"), "adabelief": ("mu_dtype", "nu_dtype"),
}


@pytest.mark.parametrize("alias", sorted(STORAGE_OPTIONS))
def test_every_moment_keeping_alias_takes_storage_dtypes(alias):
    case = next(c for c in DEFAULT_CASES if c.alias == alias)
    params = {"w": jnp.ones((3, 2), jnp.float16)}
    plain = optxform.state_dict(case.build().init(params))
    for option in STORAGE_OPTIONS[alias]:
        state = case.make(**case.kwargs, **{option: jnp.bfloat16}).init(params)
        changed = {k for k, v in optxform.state_dict(state).items()
                   if not k.startswith("<") and v.dtype != plain[k].dtype}
        assert changed and all(optxform.state_dict(state)[k].dtype == jnp.bfloat16
                               for k in changed), (alias, option, changed)


def test_storage_dtypes_can_be_set_on_every_moment():
    params = {"w": jnp.ones(3)}
    state = optxform.adam(mu_dtype=jnp.bfloat16, nu_dtype=jnp.bfloat16).init(params)
    assert state["adam"].mu["w"].dtype == jnp.bfloat16
    assert state["adam"].nu["w"].dtype == jnp.bfloat16
    with pytest.raises(ValueError, match="mu_dtype"):
        optxform.adam(mu_dtype=jnp.int32)


WRAPPERS = {
    "masked": lambda: optxform.masked(optxform.adam(0.1), {"a": True, "b": True}),
    "multi_transform": lambda: optxform.multi_transform(
        {"x": optxform.sgd(0.1, momentum=0.9), "y": optxform.adam(0.1)}, {"a": "x", "b": "y"}),
    "apply_if_finite": lambda: optxform.apply_if_finite(optxform.adam(0.1), 3),
    "MultiSteps": lambda: optxform.MultiSteps(optxform.adam(0.1), 2),
    "inject_hyperparams": lambda: optxform.inject_hyperparams(optxform.adam)(learning_rate=0.1),
    "chain_clip": lambda: optxform.chain(optxform.clip_by_global_norm(1.0),
                                         optxform.adam(0.1)),
}


@pytest.mark.parametrize("name", sorted({c.alias for c in DEFAULT_CASES}) + sorted(WRAPPERS))
def test_none_gradient_leaves_pass_through(name):
    case = None if name in WRAPPERS else next(c for c in DEFAULT_CASES if c.alias == name)
    tx = WRAPPERS[name]() if case is None else case.build()
    b_shape = (2, 2) if case is not None and case.problem == "matrices" else (2,)
    params = {"a": jnp.ones((3, 2)), "b": jnp.full(b_shape, 2.0)}
    state = tx.init(params)
    grads = {"a": jnp.full((3, 2), 0.5), "b": None}
    updates, new_state = jax.jit(tx.update)(grads, state, params)
    assert updates["b"] is None
    assert updates["a"].shape == (3, 2)
    # Whatever the state keeps per param is unchanged for "b".
    keys = optxform.state_dict(state)
    new_keys = optxform.state_dict(new_state)
    for key in keys:
        if key.endswith("/b") and not key.startswith("<"):
            np.testing.assert_array_equal(new_keys[key], keys[key], err_msg=key)


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class _Model:
    """A callable pytree, as an equinox Module or a flax struct with ``__call__`` is: a mask
    built from it (``jax.tree.map(lambda x: x.ndim > 1, model)``) is callable too."""

    w: object
    b: object

    def __call__(self, x):
        raise AssertionError("a callable pytree is a mask tree: it must not be called")


def test_a_callable_pytree_mask_is_a_mask_tree():
    params = _Model(w=jnp.array([2.0]), b=jnp.array([2.0]))
    grads = _Model(w=jnp.array([1.0]), b=jnp.array([1.0]))
    for tx in (optxform.adamw(0.1, weight_decay=0.5, mask=_Model(w=True, b=False)),
               optxform.masked(optxform.scale(2.0), _Model(w=True, b=False))):
        updates, _ = tx.update(grads, tx.init(params), params)
        assert not np.allclose(updates.w, updates.b)
    fn_tx = optxform.adamw(0.1, weight_decay=0.5, mask=lambda p: _Model(w=True, b=False))
    updates, _ = fn_tx.update(grads, fn_tx.init(params), params)
    np.testing.assert_allclose(updates.w, [-0.2])
    np.testing.assert_allclose(updates.b, [-0.1])


def test_the_declaration_is_readable_and_validated():
    decl = declaration_of(optxform.scale_by_adam(b1=0.8))
    assert decl.rule.kind == "elementwise"
    assert decl.values["b1"] == 0.8
    assert decl.rule.hyperparameter_names == ("b1", "b2", "eps", "eps_root")
    assert declaration_of(optxform.scale_by_sparse_adam()).rule.kind == "matrix"
    for bad in (True, None, "0.9", [0.9], jnp.ones(2), 1j, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="b1"):
            optxform.adam(b1=bad)
    with pytest.raises(ValueError, match="maximize"):
        optxform.adam(maximize=1.0)


def test_inject_hyperparams_rejects_unknown_static_names():
    with pytest.raises(ValueError, match="lerning_rate"):
        optxform.inject_hyperparams(optxform.adam, static_args=("lerning_rate",))


PACKED_EXTRA = {
    "adamw_mask_fn": lambda: optxform.adamw(
        0.05, weight_decay=0.5, mask=lambda p: jax.tree.map(lambda x: x.ndim > 1, p)),
    "clip_adam": lambda: optxform.chain(optxform.clip_by_global_norm(0.5), optxform.adam(0.05)),
    "masked_sgd": lambda: optxform.masked(optxform.sgd(0.1, momentum=0.9),
                                          {"w1": True, "b1": True, "w2": True, "k": True}),
    "inject_adam": lambda: optxform.inject_hyperparams(optxform.adam)(learning_rate=0.05),
}


@pytest.mark.parametrize("name", sorted({c.alias for c in DEFAULT_CASES}) + sorted(PACKED_EXTRA))
def test_packed_equals_the_plain_optimizer(name):
    """``packed`` runs elementwise rules on buffers and shape-dependent ones per leaf."""
    if name in PACKED_EXTRA:
        make, problem = PACKED_EXTRA[name], "mlp"
    else:
        case = next(c for c in DEFAULT_CASES if c.alias == name)
        make, problem = case.build, case.problem
        if name == "kron":  # packing renames the leaves, whose key paths key Kron's probes
            make = lambda: optxform.kron(**case.kwargs,  # noqa: E731
                                         preconditioner_update_probability=0.0)
    params = _params(problem)
    plain, _ = _steps(make(), params, make().init(params), 8, problem)
    tx = optxform.packed(make())
    packed, _ = _steps(tx, params, tx.init(params), 8, problem)
    for key in plain:
        np.testing.assert_allclose(packed[key], plain[key], rtol=2e-6, atol=1e-7, err_msg=key)


def test_inject_hyperparams_injects_exactly_the_declared_hyperparameters():
    for case in DEFAULT_CASES:
        declared = case.make.hyperparameters
        tx = optxform.inject_hyperparams(case.make)(**case.kwargs)
        problem = case.problem
        state = tx.init(_params(problem))
        assert tuple(sorted(state.hyperparams)) == tuple(sorted(declared)), case.alias
    with pytest.raises(ValueError, match="declares hyperparameter 'lr'"):
        optxform.declares_hyperparameters("lr")(lambda learning_rate: None)


@pytest.mark.parametrize("case", DEFAULT_CASES, ids=lambda c: c.alias)
def test_overflowing_gradients_give_the_same_outcome_eagerly_and_under_jit(case):
    """A step that overflows is non-finite both ways (``apply_if_finite`` sees the same)."""
    problem = case.problem
    params = _params(problem)
    tx = case.build()
    state = tx.init(params)
    update = jax.jit(tx.update)  # compiled once for the three gradients
    for big in (3e37, 1e38, np.inf):
        grads = jax.tree.map(
            lambda p: jnp.zeros_like(p).at[(0,) * p.ndim].set(big).at[(-1,) * p.ndim]
            .set(-0.5), params)
        eager, _ = tx.update(grads, state, params)
        jitted, _ = update(grads, state, params)
        for key in params:
            np.testing.assert_array_equal(np.isfinite(np.asarray(eager[key])),
                                          np.isfinite(np.asarray(jitted[key])),
                                          err_msg=f"{case.alias} {key} gradient {big}")
