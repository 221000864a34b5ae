"""Sign, ASGD averaging, constraint and clipping blocks as declared rules.

For each block: a complex param behaves as its real view (torch's ``view_as_real``), a
``None`` gradient leaf passes through and leaves its state untouched, and bad or unknown
hyperparameters raise a ``ValueError`` naming the argument. torch's complex Rprop and
ASGD are the oracle where torch supports complex params.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import optxform
from optxform.rules import declaration_of, lift

BLOCKS = {
    "scale_by_rprop": lambda: optxform.scale_by_rprop(0.1, eta_minus=0.5, eta_plus=1.5,
                                                      min_step_size=1e-3, max_step_size=0.4),
    "scale_by_lion": lambda: optxform.scale_by_lion(0.8, 0.95),
    "asgd_averaging": lambda: optxform.asgd_averaging(t0=1.0),
    "keep_params_nonnegative": optxform.keep_params_nonnegative,
    "clip": lambda: optxform.clip(0.5),
    "clip_by_global_norm": lambda: optxform.clip_by_global_norm(1.0),
    "clip_by_block_rms": lambda: optxform.clip_by_block_rms(0.3),
    "zero_nans": optxform.zero_nans,
}

KINDS = {
    "scale_by_rprop": "elementwise", "scale_by_lion": "elementwise",
    "asgd_averaging": "elementwise", "keep_params_nonnegative": "elementwise",
    "clip": "elementwise", "clip_by_global_norm": "global",
    "clip_by_block_rms": "matrix", "zero_nans": "matrix",
}

SHAPES = {"w": (3, 4), "b": (5,)}
STEPS = 5


def _complex_tree(rng, scale=1.0):
    return {n: jnp.asarray(scale * (rng.standard_normal(s) + 1j * rng.standard_normal(s)),
                           jnp.complex64) for n, s in SHAPES.items()}


def _real_view(tree):
    return jax.tree.map(lambda z: jnp.stack([jnp.real(z), jnp.imag(z)], axis=-1), tree)


def _run(tx, params, grads):
    """Updates and states after each step, params moved by ``apply_updates``."""
    state, out = tx.init(params), []
    for g in grads:
        updates, state = tx.update(g, state, params)
        params = optxform.apply_updates(params, updates)
        out.append((updates, state))
    return out


def _assert_trees_equal(got, want):
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for x, y in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        assert jnp.asarray(x).dtype == jnp.asarray(y).dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_each_block_declares_its_kind():
    assert {name: declaration_of(make()).rule.kind for name, make in BLOCKS.items()} == KINDS


# --- (a) complex params are their real views ----------------------------------------------

@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_complex_param_equals_the_block_on_its_real_view(name):
    rng = np.random.default_rng(0)
    params = _complex_tree(rng, 0.5)
    grads = [_complex_tree(rng, 2.0) for _ in range(STEPS)]
    if name == "zero_nans":
        grads[1]["w"] = grads[1]["w"].at[0, 1].set(complex(np.nan, 1.0))
        grads[2]["b"] = grads[2]["b"].at[3].set(complex(2.0, np.nan))
    on_complex = _run(BLOCKS[name](), params, grads)
    on_real = _run(BLOCKS[name](), _real_view(params), [_real_view(g) for g in grads])
    for (u, state), (u_real, state_real) in zip(on_complex, on_real):
        assert all(x.dtype == jnp.complex64 for x in jax.tree.leaves(u))
        _assert_trees_equal(_real_view(u), u_real)
        _assert_trees_equal(state, state_real)  # complex buffers are stored as real views
    if name == "zero_nans":  # a NaN part is zeroed, the other part kept
        u = on_complex[2][0]["b"][3]
        assert (float(u.real), float(u.imag)) == (float(grads[2]["b"][3].real), 0.0)
        assert bool(on_complex[1][1].found_nan["w"]) and not bool(on_complex[1][1].found_nan["b"])


def test_complex_global_norm_counts_both_parts():
    g = {"z": jnp.asarray([3.0 + 4.0j], jnp.complex64), "x": jnp.asarray([12.0], jnp.float32)}
    tx = optxform.clip_by_global_norm(6.5)
    clipped, _ = tx.update(g, tx.init(g))
    # |z|^2 + 12^2 = 169: the factor is 6.5 / 13 = 0.5.
    np.testing.assert_allclose(np.asarray(clipped["z"]), [1.5 + 2.0j], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(clipped["x"]), [6.0], rtol=1e-6)


def _torch_run(make_opt, params, grads):
    tparams = {n: torch.tensor(np.asarray(p), requires_grad=True) for n, p in params.items()}
    opt = make_opt(list(tparams.values()))
    for g in grads:
        for n, tp in tparams.items():
            tp.grad = torch.from_numpy(np.asarray(g[n]).copy())
        opt.step()
    return opt, tparams


def test_complex_rprop_matches_torch_bit_for_bit():
    rng = np.random.default_rng(1)
    params = _complex_tree(rng)
    grads = [_complex_tree(rng) for _ in range(20)]
    tx = optxform.rprop(0.05, etas=(0.4, 1.3), step_sizes=(1e-4, 0.2))
    p, state = params, tx.init(params)
    for g in grads:
        u, state = tx.update(g, state, p)
        p = optxform.apply_updates(p, u)
    _, tparams = _torch_run(lambda ps: torch.optim.Rprop(ps, lr=0.05, etas=(0.4, 1.3),
                                                         step_sizes=(1e-4, 0.2)),
                            params, grads)
    for n, tp in tparams.items():
        np.testing.assert_array_equal(np.asarray(p[n]), tp.detach().numpy())


def test_complex_asgd_iterate_and_average_match_torch():
    rng = np.random.default_rng(2)
    params = _complex_tree(rng)
    grads = [_complex_tree(rng) for _ in range(12)]
    tx = optxform.asgd(0.05, lambd=1e-2, t0=3.0)
    p, state = params, tx.init(params)
    for g in grads:
        u, state = tx.update(g, state, p)
        p = optxform.apply_updates(p, u)
    opt, tparams = _torch_run(lambda ps: torch.optim.ASGD(ps, lr=0.05, lambd=1e-2, t0=3.0),
                              params, grads)
    ax = optxform.asgd_average(state)  # a complex param's average is kept as its real view
    for n, tp in tparams.items():
        np.testing.assert_allclose(np.asarray(p[n]), tp.detach().numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.asarray(ax[n]),
                                   torch.view_as_real(opt.state[tp]["ax"]).numpy(),
                                   rtol=1e-5, atol=1e-6)
    assert not np.allclose(np.asarray(ax["w"]), np.asarray(_real_view(p)["w"]))  # averaging on


# --- (b) None gradient leaves ---------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_none_gradient_leaf_passes_through_and_keeps_its_state(name):
    rng = np.random.default_rng(3)
    params = {n: jnp.asarray(rng.standard_normal(s), jnp.float32) for n, s in SHAPES.items()}
    g1 = {n: jnp.asarray(2.0 * rng.standard_normal(s), jnp.float32) for n, s in SHAPES.items()}
    g2 = {"w": jnp.asarray(2.0 * rng.standard_normal(SHAPES["w"]), jnp.float32)}
    g1["w"] = g1["w"].at[0, 0].set(jnp.nan)  # zero_nans has a record to keep
    tx = BLOCKS[name]()
    _, state = tx.update(g1, tx.init(params), params)
    u_none, s_none = tx.update({**g2, "b": None}, state, params)
    u_zero, s_zero = tx.update({**g2, "b": jnp.zeros(SHAPES["b"], jnp.float32)}, state,
                               params)
    assert u_none["b"] is None
    # The other leaves are updated as if the missing leaf's gradient were 0 (which
    # contributes nothing to a global norm either).
    np.testing.assert_array_equal(np.asarray(u_none["w"]), np.asarray(u_zero["w"]))
    for field in getattr(state, "_fields", ()):
        before, after = getattr(state, field), getattr(s_none, field)
        if isinstance(before, dict):
            _assert_trees_equal(after["b"], before["b"])  # untouched
            _assert_trees_equal(after["w"], getattr(s_zero, field)["w"])
        else:  # the step counter advances
            _assert_trees_equal(after, getattr(s_zero, field))
    if name == "zero_nans":
        assert bool(s_none.found_nan["b"]) is False and bool(state.found_nan["w"])
        assert bool(s_none.found_nan["w"]) is False


# --- (c) hyperparameters --------------------------------------------------------------------

@pytest.mark.parametrize("make, kwargs, argument", [
    (optxform.scale_by_rprop, {"learning_rate": -0.1}, "learning_rate"),
    (optxform.scale_by_rprop, {"learning_rate": True}, "learning_rate"),
    (optxform.scale_by_rprop, {"eta_minus": 1.0}, "eta_minus"),
    (optxform.scale_by_rprop, {"eta_minus": 0.0}, "eta_minus"),
    (optxform.scale_by_rprop, {"eta_plus": 1.0}, "eta_plus"),
    (optxform.scale_by_rprop, {"min_step_size": -1e-6}, "min_step_size"),
    (optxform.scale_by_rprop, {"max_step_size": [1.0, 2.0]}, "max_step_size"),
    (optxform.scale_by_rprop, {"min_step_size": 2.0, "max_step_size": 1.0}, "min_step_size"),
    (optxform.scale_by_lion, {"b1": 1.0}, "b1"),
    (optxform.scale_by_lion, {"b2": -0.1}, "b2"),
    (optxform.scale_by_lion, {"b1": "0.9"}, "b1"),
    (optxform.asgd_averaging, {"t0": -1.0}, "t0"),
    (optxform.asgd_averaging, {"t0": None}, "t0"),
    (optxform.asgd_averaging, {"t0": float("inf")}, "t0"),
    (optxform.clip, {"max_delta": -0.5}, "max_delta"),
    (optxform.clip, {"max_delta": float("nan")}, "max_delta"),
    (optxform.clip_by_global_norm, {"max_norm": -1.0}, "max_norm"),
    (optxform.clip_by_global_norm, {"max_norm": lambda step: 1.0}, "max_norm"),
    (optxform.clip_by_block_rms, {"threshold": 0.0}, "threshold"),
    (optxform.clip_by_block_rms, {"threshold": 1j}, "threshold"),
])
def test_invalid_hyperparameters_raise_naming_the_argument(make, kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        make(**kwargs)


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_unknown_arguments_raise_naming_the_argument(name):
    declaration = declaration_of(BLOCKS[name]())
    arguments = dict(declaration.values)
    lift(declaration.rule, **arguments)  # the declared arguments alone are accepted
    with pytest.raises(ValueError, match="lerning_rate"):
        lift(declaration.rule, **arguments, lerning_rate=0.1)


def test_declared_hyperparameters_are_the_factory_arguments():
    names = {name: declaration_of(make()).rule.hyperparameter_names
             for name, make in BLOCKS.items()}
    assert names == {
        "scale_by_rprop": ("learning_rate", "eta_minus", "eta_plus", "min_step_size",
                           "max_step_size"),
        "scale_by_lion": ("b1", "b2"), "asgd_averaging": ("t0",),
        "keep_params_nonnegative": (), "clip": ("max_delta",),
        "clip_by_global_norm": ("max_norm",), "clip_by_block_rms": ("threshold",),
        "zero_nans": (),
    }


# --- storage ----------------------------------------------------------------------------------

def test_rprop_reads_a_schedule_at_step_zero_for_its_initial_step_size():
    params = {"w": jnp.zeros(3, jnp.float16)}
    tx = optxform.scale_by_rprop(lambda count: 0.25 + count.astype(jnp.float32))
    state = tx.init(params)
    assert state.step_sizes["w"].dtype == jnp.float32  # an accumulator, float32 or wider
    assert state.prev["w"].dtype == jnp.float16       # the param dtype
    np.testing.assert_array_equal(np.asarray(state.step_sizes["w"]), [0.25] * 3)


def test_zero_nans_keeps_one_bool_per_leaf_whatever_the_param():
    params = {"h": jnp.zeros((4, 2), jnp.float16), "z": jnp.zeros(3, jnp.complex64)}
    tx = optxform.zero_nans()
    state = tx.init(params)
    assert [(x.shape, x.dtype) for x in jax.tree.leaves(state)] == [((), jnp.bool_)] * 2
    grads = {"h": params["h"].at[1, 1].set(jnp.nan), "z": params["z"]}
    u, state = jax.jit(tx.update)(grads, state)
    assert u["h"].dtype == jnp.float16 and not bool(jnp.any(jnp.isnan(u["h"])))
    assert bool(state.found_nan["h"]) and not bool(state.found_nan["z"])
