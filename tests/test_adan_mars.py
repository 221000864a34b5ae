"""Adan and MARS beyond the registry rows (tests/registry.py REFERENCE_CASES).

* what the rows cannot reach: Adan's global gradient clip (float32 exact; float64 within
  the reference's float32 clip ratio), MARS's ``shampoo`` type (bfloat16 Newton-Schulz:
  a measured bound; exact with the iterations in float32 or float64), storage dtypes, the
  first-difference option and the proximal decay block;
* validation of every option at construction;
* ``packed`` equals the plain optimizer (Adan is elementwise after one global reduction);
* sharded jit on 8 host devices (params and state sharded alike) matches one device;
* a checkpoint round trip resumes bit-identically.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optxform
from optxform.transforms.mars import _orthogonalize
from tests import oracles
from tests.registry import _ADAN_BETAS, _MARS_BETAS, _to_reference
from tests.test_parallel import _assert_state_mirrors_params, _mesh, sharded_train

STEPS = 100


def _trajectories(alias: str, kwargs: dict, reference: str, betas: dict, dtype,
                  steps: int = STEPS):
    expected = oracles.reference_trajectory(reference, _to_reference(kwargs, betas), "mlp",
                                            steps, dtype=dtype)
    make, _ = oracles.PROBLEMS["mlp"]
    actual = oracles.optxform_trajectory(getattr(optxform, alias)(**kwargs), "mlp", steps,
                                         params=make(dtype=dtype))
    assert actual[-1]["w1"].dtype == dtype
    return actual, expected


def _max_distance(a: list[dict], b: list[dict]) -> float:
    return max(float(np.max(np.abs(x[n] - y[n]))) for x, y in zip(a, b) for n in x)


# --- Adan's global gradient clip --------------------------------------------------------

ADAN_CLIP_ROWS = [
    {"learning_rate": 0.01, "max_grad_norm": 0.5},
    {"learning_rate": 0.01, "max_grad_norm": 0.5, "weight_decay": 0.05, "maximize": True},
    {"learning_rate": 0.01, "max_grad_norm": 0.5, "weight_decay": 0.05,
     "weight_decouple": True},
]


@pytest.mark.parametrize("kwargs", ADAN_CLIP_ROWS, ids=str)
def test_adan_with_clipping_matches_the_reference_in_float32(kwargs):
    actual, expected = _trajectories("adan", kwargs, "pytorch_optimizer:Adan", _ADAN_BETAS,
                                     np.float32)
    oracles.assert_trajectories_close(actual, expected)
    # The clip is active (a no-op clip would make this row a copy of the plain one).
    unclipped = oracles.optxform_trajectory(
        optxform.adan(**dict(kwargs, max_grad_norm=0.0)), "mlp", STEPS)
    assert _max_distance(unclipped, expected) > 1e-3


@pytest.mark.parametrize("kwargs", ADAN_CLIP_ROWS, ids=str)
def test_adan_with_clipping_in_float64_is_within_the_float32_clip_ratio(kwargs, x64):
    """The reference squares and sums the leaf norms in float32 and takes torch's float32
    sqrt, which is not correctly rounded (one ulp off for about 1 in 6 inputs): its ratio
    can be one float32 ulp from ours. Measured: 1.1e-8 absolute at most over 100 steps."""
    actual, expected = _trajectories("adan", kwargs, "pytorch_optimizer:Adan", _ADAN_BETAS,
                                     np.float64)
    oracles.assert_trajectories_close(actual, expected, rtol=1e-6, atol=5e-8)


def test_adan_clip_ratio_is_the_references_float32_number(x64):
    """Leaf norms squared and summed in float32 in order; ``min(1, c / (norm + eps))``."""
    import torch
    from pytorch_optimizer.optimizer.utils.gradient import get_global_gradient_norm

    rng = np.random.default_rng(0)
    grads = {"a": rng.standard_normal((6, 5)), "b": rng.standard_normal(5) * 0.1,
             "c": rng.standard_normal((2, 3, 4))}
    tparams = []
    for name in sorted(grads):
        p = torch.zeros(grads[name].shape, dtype=torch.float64, requires_grad=True)
        p.grad = torch.tensor(grads[name])
        tparams.append(p)
    norm = get_global_gradient_norm([{"params": tparams}]).sqrt_().add_(1e-8)
    expected = float(torch.clamp(0.5 / norm, max=1.0))
    tx = optxform.scale_by_adan(max_grad_norm=0.5)
    params = jax.tree.map(jnp.asarray, grads)
    updates, _ = tx.update(params, tx.init(params), params)
    ratio = tx.update.declaration.rule.reduce(params, None, {"max_grad_norm": 0.5,
                                                             "eps": 1e-8})["clip"]
    assert ratio.dtype == jnp.float32 and 0 < expected < 1
    # torch's float32 sqrt may round the other way: one ulp at most.
    assert abs(float(ratio) - expected) <= float(np.spacing(np.float32(expected)))
    assert all(bool(jnp.all(jnp.isfinite(u))) for u in jax.tree.leaves(updates))


# --- MARS's shampoo type ----------------------------------------------------------------

SHAMPOO_ROWS = [
    {"mars_type": "shampoo"},
    {"mars_type": "shampoo", "optimize_1d": True},
    {"mars_type": "shampoo", "weight_decay": 0.05, "cautious": True, "ams_bound": True},
    {"mars_type": "shampoo", "weight_decay": 0.05, "weight_decouple": False,
     "maximize": True, "optimize_1d": True},
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("kwargs", SHAMPOO_ROWS, ids=str)
def test_mars_shampoo_with_bfloat16_newton_schulz_is_within_its_measured_bound(
        kwargs, dtype, request):
    """The reference runs Newton-Schulz in bfloat16 whatever the params' dtype. Ours rounds
    each product as it does, and most rows agree to float32 rounding; but where a float32
    difference elsewhere tips one bfloat16 rounding, the two trajectories part by bfloat16
    steps (2^-8 relative). Measured over 100 steps: 2.1e-4 absolute at most (params
    move by up to 0.3), in float32 and float64 alike."""
    if dtype == np.float64:
        request.getfixturevalue("x64")
    actual, expected = _trajectories("mars", kwargs, "pytorch_optimizer:MARS", _MARS_BETAS,
                                     dtype)
    oracles.assert_trajectories_close(actual, expected, rtol=0.0, atol=1e-3)
    start = oracles.mlp_params(dtype=dtype)
    assert max(float(np.max(np.abs(expected[-1][n] - start[n]))) for n in start) > 0.05


@pytest.mark.parametrize("kwargs", [{"mars_type": "shampoo"},
                                    {"mars_type": "shampoo", "optimize_1d": True,
                                     "cautious": True, "weight_decay": 0.05}], ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_mars_shampoo_is_exact_with_newton_schulz_in_the_params_dtype(kwargs, dtype,
                                                                      monkeypatch, request):
    """With the reference's iterations run in float32 (float64), ``ns_dtype`` of the same
    dtype reproduces its trajectory to 1e-5 (1e-10): the shampoo math itself is exact."""
    import torch
    from pytorch_optimizer.optimizer import mars as reference_mars

    if dtype == np.float64:
        request.getfixturevalue("x64")
    torch_dtype = torch.float32 if dtype == np.float32 else torch.float64
    monkeypatch.setattr(reference_mars, "zero_power_via_newton_schulz_5", functools.partial(
        reference_mars.zero_power_via_newton_schulz_5, dtype=torch_dtype))
    expected = oracles.reference_trajectory(
        "pytorch_optimizer:MARS", _to_reference(kwargs, _MARS_BETAS), "mlp", STEPS,
        dtype=dtype)
    make, _ = oracles.PROBLEMS["mlp"]
    actual = oracles.optxform_trajectory(optxform.mars(**kwargs, ns_dtype=dtype), "mlp",
                                         STEPS, params=make(dtype=dtype))
    if dtype == np.float32:
        oracles.assert_trajectories_close(actual, expected)
    else:
        oracles.assert_trajectories_close(actual, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (2, 12), (6, 6)])
@pytest.mark.parametrize("dtype", ["bfloat16", "float32", "float64"])
def test_newton_schulz_matches_the_references(shape, dtype, x64):
    import torch
    from pytorch_optimizer.optimizer.utils.matrix import zero_power_via_newton_schulz_5

    m = np.random.default_rng(sum(shape)).standard_normal(shape)
    expected = zero_power_via_newton_schulz_5(torch.tensor(m), eps=1e-8,
                                              dtype=getattr(torch, dtype))
    expected = expected.to(torch.float64).numpy()
    ours = _orthogonalize(jnp.asarray(m), jnp.asarray(1e-8), jnp.dtype(dtype))
    assert ours.dtype == jnp.dtype(dtype)
    ours = np.asarray(ours.astype(jnp.float64))
    if dtype == "bfloat16":  # products accumulated in float32 in another order
        assert np.mean(ours == expected) > 0.9
        np.testing.assert_allclose(ours, expected, atol=2e-2)
    else:
        np.testing.assert_allclose(ours, expected, rtol=1e-4 if dtype == "float32" else 1e-12,
                                   atol=1e-6 if dtype == "float32" else 1e-14)
    # Five iterations bring the singular values near 1 (not exactly: the quintic's fixed
    # points straddle 1).
    singular = np.linalg.svd(ours, compute_uv=False)
    assert np.all((singular > 0.5) & (singular < 1.5))


# --- options the rows cannot reach ------------------------------------------------------


def test_adan_first_step_is_the_sign_and_the_doubled_first_difference_changes_it():
    params = {"w": jnp.array([1.0, -1.0, 2.0])}
    grads = {"w": jnp.array([0.5, -2.0, 1e-3])}
    plain = optxform.scale_by_adan()
    u, state = plain.update(grads, plain.init(params), params)
    np.testing.assert_allclose(u["w"], jnp.sign(grads["w"]), rtol=1e-5)
    np.testing.assert_array_equal(state.prev["w"], grads["w"])
    np.testing.assert_array_equal(state.delta["w"], jnp.zeros(3))
    doubled = optxform.scale_by_adan(first_difference_doubled=True)
    _, state = doubled.update(grads, doubled.init(params), params)
    np.testing.assert_allclose(state.delta["w"], (1 - 0.92) * 2 * grads["w"], rtol=1e-6)


def test_proximal_weight_decay_lands_on_the_divided_param_exactly():
    rng = np.random.default_rng(0)
    p = jnp.asarray(rng.standard_normal(1000), jnp.float32)
    step = jnp.asarray(rng.standard_normal(1000) * 1e-2, jnp.float32)
    tx = optxform.add_proximal_weight_decay(0.05, learning_rate=0.1)
    u, _ = jax.jit(tx.update)({"p": step}, tx.init({"p": p}), {"p": p})
    # numpy's float32 division is correctly rounded, as torch's ``div_`` is.
    expected = (np.asarray(p) + np.asarray(step)) / np.float32(1 + 0.1 * 0.05)
    landed = optxform.apply_updates({"p": p}, u)["p"]
    # Exactly where the old and new params are within a factor 2 (Sterbenz); elsewhere
    # (params near 0) to within an ulp.
    near = np.abs(np.asarray(p)) > 4 * np.abs(np.asarray(step))
    assert near.mean() > 0.9
    np.testing.assert_array_equal(np.asarray(landed)[near], np.asarray(expected)[near])
    np.testing.assert_allclose(landed, expected, rtol=2e-7, atol=1e-9)
    # The number 0 passes updates through; a mask keeps others as they are.
    zero = optxform.add_proximal_weight_decay(0.0)
    assert zero.update({"p": step}, zero.init({"p": p}), {"p": p})[0]["p"] is step
    masked = optxform.add_proximal_weight_decay(0.5, mask={"a": True, "b": False})
    params = {"a": jnp.ones(2), "b": jnp.ones(2)}
    out, _ = masked.update({"a": jnp.zeros(2), "b": jnp.zeros(2)}, masked.init(params), params)
    np.testing.assert_allclose(out["a"], 1 / 1.5 - 1)
    np.testing.assert_array_equal(out["b"], jnp.zeros(2))


@pytest.mark.parametrize("alias,options", [
    ("adan", {"mu_dtype": jnp.bfloat16, "nu_dtype": jnp.bfloat16}),
    ("mars", {"mu_dtype": jnp.bfloat16, "nu_dtype": jnp.bfloat16, "ams_bound": True}),
])
def test_storage_dtypes(alias, options):
    params = {"w": jnp.ones((3, 2)), "b": jnp.ones(2)}
    tx = getattr(optxform, alias)(**options)
    state = tx.init(params)
    moments = {k: v for k, v in optxform.state_dict(state).items()
               if any(f"{alias}.{m}/" in k for m in ("mu", "delta", "nu", "nu_max"))}
    assert moments and all(v.dtype == jnp.bfloat16 for v in moments.values()), moments
    prev = [v for k, v in optxform.state_dict(state).items() if f"{alias}.prev/" in k]
    assert prev and all(v.dtype == jnp.float32 for v in prev)
    updates, _ = jax.jit(tx.update)(jax.tree.map(jnp.ones_like, params), state, params)
    assert all(bool(jnp.all(jnp.isfinite(u))) for u in jax.tree.leaves(updates))


def test_mars_state_structure_follows_the_params_shapes_only():
    params = {"w": jnp.ones((3, 2)), "b": jnp.ones(2), "s": jnp.ones(())}
    keys = {optxform.state_keys(optxform.mars(**kw).init(params)) == optxform.state_keys(
        optxform.mars().init(params)) for kw in (
        {"mars_type": "lion"}, {"mars_type": "shampoo"}, {"optimize_1d": True},
        {"weight_decouple": False, "weight_decay": 0.1}, {"cautious": True},
        {"fixed_decay": True}, {"learning_rate": lambda c: 1e-3 * jnp.ones([])})}
    assert keys == {True}
    assert optxform.state_keys(optxform.mars(ams_bound=True).init(params)) != \
        optxform.state_keys(optxform.mars().init(params))


def test_mars_steps_1d_params_with_lr_1d_and_their_own_decay():
    """Without optimize_1d a 1-D param takes AdamW at ``lr_1d`` (first step: -lr_1d *
    sign(g)) decayed by ``weight_decay_1d``; a matrix takes the MARS step at ``lr``."""
    params = {"w": jnp.full((2, 2), 2.0), "b": jnp.full(2, 2.0)}
    grads = {"w": jnp.array([[0.5, -2.0], [3.0, 1.0]]), "b": jnp.array([1.0, -1.0])}
    tx = optxform.mars(0.1, mars_type="lion", lr_1d=0.01, weight_decay=0.5,
                       weight_decay_1d=0.25)
    u, _ = tx.update(grads, tx.init(params), params)
    np.testing.assert_allclose(u["w"], -0.1 * jnp.sign(grads["w"]) - 0.1 * 0.5 * 2.0,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(u["b"], -0.01 * jnp.sign(grads["b"]) - 0.01 * 0.25 * 2.0,
                               rtol=1e-4, atol=1e-6)


BAD_ARGUMENTS = [
    ("adan", "learning_rate", -1.0), ("adan", "b1", 1.0), ("adan", "b2", -0.1),
    ("adan", "b3", 1.0), ("adan", "eps", -1e-8), ("adan", "weight_decay", -0.1),
    ("adan", "max_grad_norm", -1.0), ("adan", "weight_decouple", 1),
    ("adan", "maximize", "yes"), ("adan", "mu_dtype", jnp.int32),
    ("mars", "learning_rate", -1.0), ("mars", "learning_rate", 0.0),
    ("mars", "b1", 1.0), ("mars", "b2", -0.5), ("mars", "gamma", -0.1),
    ("mars", "mars_type", "sgd"), ("mars", "optimize_1d", 1), ("mars", "lr_1d", -1.0),
    ("mars", "b1_1d", 1.5), ("mars", "b2_1d", 1.0), ("mars", "weight_decay", -1.0),
    ("mars", "weight_decay_1d", -1.0), ("mars", "weight_decouple", None),
    ("mars", "fixed_decay", "no"), ("mars", "ams_bound", 0), ("mars", "cautious", 1.0),
    ("mars", "eps", -1.0), ("mars", "maximize", 1), ("mars", "ns_dtype", jnp.int32),
    ("mars", "ns_dtype", None), ("mars", "nu_dtype", "int8"),
]


@pytest.mark.parametrize("alias,name,value", BAD_ARGUMENTS, ids=str)
def test_bad_arguments_are_rejected_at_construction_naming_the_option(alias, name, value):
    with pytest.raises(ValueError, match=name):
        getattr(optxform, alias)(**{name: value})


def test_accepted_edge_values():
    for tx in (optxform.adan(b1=0.0, b2=0.0, b3=0.0, eps=0.0, max_grad_norm=0.0),
               optxform.mars(gamma=0.0, b1=0.0, weight_decay_1d=0.0, lr_1d=0.0),
               optxform.mars(learning_rate=jnp.asarray(1e-3), lr_1d=jnp.asarray(2e-3)),
               optxform.mars(learning_rate=optxform.linear_schedule(1e-3, 0.0, 10))):
        params = {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}
        u, _ = tx.update(jax.tree.map(jnp.ones_like, params), tx.init(params), params)
        assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(u))


# --- packed, sharded, resumed -----------------------------------------------------------


def _run(tx, params, steps):
    grad = oracles.grad_fn("mlp")
    update = jax.jit(tx.update)
    state = tx.init(params)
    for t in range(steps):
        updates, state = update(grad(params, jnp.asarray(t, jnp.int32)), state, params)
        params = optxform.apply_updates(params, updates)
    return params, state


@pytest.mark.parametrize("kwargs", [{"max_grad_norm": 0.5, "weight_decay": 0.05},
                                    {"max_grad_norm": 0.5, "weight_decouple": True,
                                     "weight_decay": 0.05, "maximize": True}], ids=str)
def test_packed_adan_with_clipping_equals_adan(kwargs):
    params = jax.tree.map(jnp.asarray, oracles.mlp_params())
    assert optxform.rules.kinds_of(optxform.adan(**kwargs)) <= {"elementwise", "global"}
    plain, _ = _run(optxform.adan(0.01, **kwargs), params, 10)
    packed, state = _run(optxform.packed(optxform.adan(0.01, **kwargs)), params, 10)
    size = sum(int(np.size(p)) for p in jax.tree.leaves(params))
    assert any(leaf.shape == (size,) for leaf in jax.tree.leaves(state.inner))  # one buffer
    for name in plain:
        np.testing.assert_allclose(packed[name], plain[name], rtol=2e-6, atol=1e-7,
                                   err_msg=name)


@pytest.mark.parametrize("tx", [
    lambda: optxform.adan(1e-2, max_grad_norm=0.5, weight_decay=1e-2),
    lambda: optxform.mars(1e-2, weight_decay=1e-2, cautious=True),
    lambda: optxform.mars(1e-2, mars_type="shampoo", ns_dtype=jnp.float32),
], ids=["adan", "mars", "mars_shampoo"])
def test_sharded_jit_on_8_devices_matches_one_device(tx):
    assert jax.device_count() == 8
    mesh = sharded_train.make_mesh((2, 4))
    params, state, x, y = sharded_train.setup(mesh, tx())
    _assert_state_mirrors_params(state, params)
    spec = params["w1"].sharding.spec
    got, state, losses = sharded_train.run_steps(mesh, tx(), params, state, x, y, 6, 64)
    assert got["w1"].sharding.spec == spec
    _assert_state_mirrors_params(state, got)
    one = _mesh((1, 1), ("data", "model"), devices=jax.devices()[:1])
    want, _, _ = sharded_train.train(one, tx(), 6)
    for name in want:
        np.testing.assert_allclose(np.asarray(got[name]), np.asarray(want[name]),
                                   rtol=1e-5, atol=1e-6, err_msg=name)
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("tx", [
    lambda: optxform.adan(1e-2, max_grad_norm=0.5, weight_decay=0.05, maximize=True),
    lambda: optxform.mars(mars_type="shampoo", ams_bound=True, cautious=True,
                          weight_decouple=False, weight_decay=0.05),
], ids=["adan", "mars"])
def test_checkpoint_round_trip_resumes_bit_identically(tx, tmp_path):
    params = jax.tree.map(jnp.asarray, oracles.mlp_params())
    straight, _ = _run(tx(), params, 5)
    grad = oracles.grad_fn("mlp")
    first = tx()
    update = jax.jit(first.update)
    state, p = first.init(params), params
    for t in range(3):
        u, state = update(grad(p, jnp.asarray(t, jnp.int32)), state, p)
        p = optxform.apply_updates(p, u)
    optxform.save_state(tmp_path / "opt.ckpt", state)
    second = tx()
    loaded = optxform.load_state(tmp_path / "opt.ckpt", second.init(params))
    restored = optxform.load_state_dict(second.init(params), optxform.state_dict(state))
    for a, b, c in zip(jax.tree.leaves(loaded), jax.tree.leaves(restored),
                       jax.tree.leaves(state)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(c))
        np.testing.assert_array_equal(np.asarray(b), np.asarray(c))
    update = jax.jit(second.update)
    for t in range(3, 5):
        u, loaded = update(grad(p, jnp.asarray(t, jnp.int32)), loaded, p)
        p = optxform.apply_updates(p, u)
    for name in straight:
        np.testing.assert_array_equal(np.asarray(p[name]), np.asarray(straight[name]))
