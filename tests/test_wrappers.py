"""Wrappers: masked, multi_transform/freeze (param groups), apply_if_finite, MultiSteps, ema,
flatten."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optxform
from optxform.core.counters import INT32_MAX
from tests import oracles


def _params():
    return jax.tree.map(jnp.asarray, oracles.mlp_params())


def _grad(params, t):
    return oracles.grad_fn("mlp")(params, jnp.asarray(t, jnp.int32))


def _train(tx, params, steps, grads=None):
    """``steps`` jitted updates; gradients from the mlp problem or the given list."""

    @jax.jit
    def step(params, state, g):
        updates, state = tx.update(g, state, params)
        return optxform.apply_updates(params, updates), state

    state = tx.init(params)
    for t in range(steps):
        params, state = step(params, state, _grad(params, t) if grads is None else grads[t])
    return params, state


def _assert_trees_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _assert_trees_close(a, b, rtol=1e-6):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=1e-9)


# --- masked ----------------------------------------------------------------------------


def test_masked_applies_inner_only_where_mask_is_true_and_keeps_no_state_elsewhere():
    params = _params()
    mask = {"w1": True, "b1": False, "w2": True, "k": False}
    tx = optxform.masked(optxform.adam(0.01), mask)
    state = tx.init(params)
    keys = optxform.state_dict(state)
    assert any(k.endswith("mu/w1") for k in keys)
    assert not any(k.endswith("/b1") or k.endswith("/k") for k in keys)

    grads = _grad(params, 0)
    updates, state = jax.jit(tx.update)(grads, state, params)
    sub = {"w1": params["w1"], "w2": params["w2"]}
    ref, _ = jax.jit(optxform.adam(0.01).update)({n: grads[n] for n in sub},
                                                 optxform.adam(0.01).init(sub), sub)
    np.testing.assert_allclose(updates["w1"], ref["w1"], rtol=1e-6)
    np.testing.assert_allclose(updates["w2"], ref["w2"], rtol=1e-6)
    # Unmasked updates pass through untouched (the raw gradient here).
    np.testing.assert_array_equal(updates["b1"], grads["b1"])
    np.testing.assert_array_equal(updates["k"], grads["k"])


def test_masked_accepts_a_prefix_mask_and_a_mask_function():
    params = {"enc": {"w": jnp.ones((3, 2)), "b": jnp.ones(2)}, "dec": {"w": jnp.ones((2, 2))}}
    grads = jax.tree.map(jnp.ones_like, params)
    by_prefix = optxform.masked(optxform.freeze(), {"enc": True, "dec": False})
    by_fn = optxform.masked(optxform.freeze(),
                            lambda p: {"enc": jax.tree.map(lambda _: True, p["enc"]),
                                       "dec": {"w": False}})
    for tx in (by_prefix, by_fn):
        out, _ = jax.jit(tx.update)(grads, tx.init(params), params)
        assert float(jnp.sum(out["enc"]["w"])) == 0.0 and float(jnp.sum(out["enc"]["b"])) == 0
        np.testing.assert_array_equal(out["dec"]["w"], grads["dec"]["w"])
    with pytest.raises(ValueError, match="mask"):
        optxform.masked(optxform.freeze(), {"enc": True}).init(params)


# --- param groups ------------------------------------------------------------------------


def _group_params(seed=0):
    rng = np.random.default_rng(seed)
    f32 = lambda *s: jnp.asarray(rng.standard_normal(s).astype(np.float32) * 0.5)  # noqa: E731
    return {"backbone": {"w": f32(6, 5), "b": f32(5), "norm_scale": 1.0 + f32(5)},
            "head": {"w": f32(5, 3), "b": f32(3)}}


def _group_loss(p, t):
    key = jax.random.fold_in(jax.random.PRNGKey(3), t)
    kx, ky = jax.random.split(key)
    x = jax.random.normal(kx, (8, 6))
    y = jax.random.normal(ky, (8, 3))
    h = jnp.tanh(x @ p["backbone"]["w"] + p["backbone"]["b"][None, :])
    h = h * p["backbone"]["norm_scale"][None, :]
    return jnp.mean(jnp.square(h @ p["head"]["w"] + p["head"]["b"][None, :] - y))


def _torch_idiom_trajectory(params, steps, lr, wd):
    """torch: 4 param groups (backbone lr/10, no weight decay on biases and norms)."""
    import torch

    tp = jax.tree.map(lambda x: torch.tensor(np.asarray(x), requires_grad=True), params)
    decay = lambda name: name == "w"  # noqa: E731
    groups = [{"params": [t for n, t in tp[part].items() if decay(n) == d],
               "lr": lr * scale, "weight_decay": wd if d else 0.0}
              for part, scale in (("backbone", 0.1), ("head", 1.0)) for d in (True, False)]
    opt = torch.optim.AdamW(groups, lr=lr)
    grad = jax.jit(jax.grad(_group_loss))
    for t in range(steps):
        current = jax.tree.map(lambda x: jnp.asarray(x.detach().numpy()), tp)
        g = grad(current, t)
        jax.tree.map(lambda x, gx: setattr(x, "grad", torch.from_numpy(np.array(gx))), tp, g)
        opt.step()
    return jax.tree.map(lambda x: x.detach().numpy(), tp)


def test_torch_idiom_no_decay_on_biases_and_norms_and_10x_smaller_backbone_lr():
    params = _group_params()
    lr, wd, steps = 1e-2, 0.1, 25
    decay_mask = lambda p: jax.tree.map(lambda x: x.ndim >= 2, p)  # noqa: E731
    labels = lambda p: {part: jax.tree.map(lambda _: part, sub)  # noqa: E731
                        for part, sub in p.items()}
    tx = optxform.multi_transform(
        {"backbone": optxform.adamw(lr / 10, weight_decay=wd, mask=decay_mask),
         "head": optxform.adamw(lr, weight_decay=wd, mask=decay_mask)},
        labels)
    grad = jax.jit(jax.grad(_group_loss))

    @jax.jit
    def step(p, s, t):
        updates, s = tx.update(grad(p, t), s, p)
        return optxform.apply_updates(p, updates), s

    p, s = params, tx.init(params)
    for t in range(steps):
        p, s = step(p, s, t)
    expected = _torch_idiom_trajectory(params, steps, lr, wd)
    for path, actual in optxform.tree.leaves_with_paths(p):
        ref = dict(optxform.tree.leaves_with_paths(expected))[path]
        np.testing.assert_allclose(actual, ref, rtol=1e-5, atol=1e-6, err_msg=path)
    # The same groups with a pytree of labels (a prefix: one label per sub-dict).
    tx2 = optxform.multi_transform(
        {"backbone": optxform.adamw(lr / 10, weight_decay=wd, mask=decay_mask),
         "head": optxform.adamw(lr, weight_decay=wd, mask=decay_mask)},
        {"backbone": "backbone", "head": "head"})
    u1, _ = jax.jit(tx.update)(grad(params, 0), tx.init(params), params)
    u2, _ = jax.jit(tx2.update)(grad(params, 0), tx2.init(params), params)
    _assert_trees_equal(u1, u2)


def test_multi_transform_freeze_group_and_per_group_state():
    params = _group_params()
    tx = optxform.multi_transform(
        {"train": optxform.adam(1e-2), "frozen": optxform.freeze()},
        {"backbone": "frozen", "head": "train"})
    keys = optxform.state_dict(tx.init(params))
    assert "inner_states/train/adam.mu/head/w" in keys
    assert not any("backbone" in k for k in keys)  # a frozen group keeps no state
    grad = jax.jit(jax.grad(_group_loss))
    p, _ = _train(tx, params, 5, grads=[grad(params, t) for t in range(5)])
    _assert_trees_equal(p["backbone"], params["backbone"])
    assert not np.array_equal(p["head"]["w"], params["head"]["w"])
    # freeze(mask) zeroes only the masked updates.
    g = grad(params, 0)
    frozen = optxform.freeze({"backbone": True, "head": False})
    out, _ = jax.jit(frozen.update)(g, frozen.init(params), params)
    assert all(float(jnp.abs(x).sum()) == 0.0 for x in jax.tree.leaves(out["backbone"]))
    _assert_trees_equal(out["head"], g["head"])


def test_multi_transform_unknown_label_names_the_label_and_param():
    params = _group_params()
    tx = optxform.multi_transform({"a": optxform.sgd(0.1)}, {"backbone": "a", "head": "oops"})
    with pytest.raises(ValueError, match=r"'oops'.*|head"):
        tx.init(params)
    with pytest.raises(ValueError, match="head/b"):
        tx.init(params)


# --- apply_if_finite -----------------------------------------------------------------------


def test_apply_if_finite_skips_nonfinite_steps_then_gives_up_after_the_limit():
    params = _params()
    good = [_grad(params, t) for t in range(4)]
    nan = jax.tree.map(lambda g: g.at[(0,) * g.ndim].set(jnp.nan), good[0])
    inf = jax.tree.map(lambda g: jnp.full_like(g, jnp.inf), good[0])
    inner = optxform.adam(0.01)
    tx = optxform.apply_if_finite(inner, max_consecutive_errors=2)
    update = jax.jit(tx.update)

    state = tx.init(params)
    ref_state = inner.init(params)
    sequence = [good[0], nan, good[1], inf, nan, good[2]]
    for g in sequence:
        before = state
        updates, state = update(g, state, params)
        finite = g is not nan and g is not inf
        assert bool(state.last_finite) == finite
        if finite:
            ref_updates, ref_state = jax.jit(inner.update)(g, ref_state, params)
            _assert_trees_close(updates, ref_updates)
        else:
            assert all(float(jnp.abs(u).sum()) == 0.0 for u in jax.tree.leaves(updates))
            _assert_trees_equal(state.inner_state, before.inner_state)  # untouched, bitwise
        _assert_trees_close(state.inner_state, ref_state)
    assert int(state.total_notfinite) == 3 and int(state.notfinite_count) == 0

    # Three non-finite steps in a row with max_consecutive_errors=2: the third is applied.
    for expected_count, applied in ((1, False), (2, False), (3, True), (4, True)):
        updates, state = update(nan, state, params)
        assert int(state.notfinite_count) == expected_count
        assert bool(jnp.isnan(updates["w1"]).any()) == applied
    assert int(state.total_notfinite) == 7


def test_apply_if_finite_validates_max_consecutive_errors():
    with pytest.raises(ValueError, match="max_consecutive_errors"):
        optxform.apply_if_finite(optxform.sgd(0.1), -1)
    with pytest.raises(ValueError, match="max_consecutive_errors"):
        optxform.apply_if_finite(optxform.sgd(0.1), 1.5)


# --- MultiSteps ------------------------------------------------------------------------------


def _batch_loss(p, x, y):
    return jnp.mean(jnp.square(jnp.tanh(x @ p["w"]) @ p["v"] - y))


def test_multisteps_equals_one_adam_step_on_the_concatenated_batch():
    rng = np.random.default_rng(0)
    params = {"w": jnp.asarray(rng.standard_normal((4, 5)), jnp.float32),
              "v": jnp.asarray(rng.standard_normal((5, 2)), jnp.float32)}
    k, micro, outer = 3, 4, 4
    xs = jnp.asarray(rng.standard_normal((outer, k * micro, 4)), jnp.float32)
    ys = jnp.asarray(rng.standard_normal((outer, k * micro, 2)), jnp.float32)
    grad = jax.jit(jax.grad(_batch_loss))

    big = optxform.adam(0.05)
    p_big, s_big = params, big.init(params)
    for i in range(outer):
        u, s_big = jax.jit(big.update)(grad(p_big, xs[i], ys[i]), s_big, p_big)
        p_big = optxform.apply_updates(p_big, u)

    acc = optxform.MultiSteps(optxform.adam(0.05), every_k_schedule=k)
    update = jax.jit(acc.update)
    p, s = params, acc.init(params)
    for i in range(outer):
        for j in range(k):
            sl = slice(j * micro, (j + 1) * micro)
            u, s = update(grad(p, xs[i, sl], ys[i, sl]), s, p)
            if j < k - 1:
                assert all(float(jnp.abs(x).sum()) == 0.0 for x in jax.tree.leaves(u))
                assert not bool(acc.has_updated(s))
            p = optxform.apply_updates(p, u)
        assert bool(acc.has_updated(s)) and int(s.gradient_step) == i + 1
    for name in params:
        np.testing.assert_allclose(p[name], p_big[name], rtol=2e-6, atol=1e-7)
    # As a plain GradientTransformation inside a chain.
    tx = optxform.chain(acc.gradient_transformation())
    assert isinstance(tx.init(params), tuple)


def test_multisteps_period_survives_counter_saturation_and_follows_a_schedule():
    params = {"w": jnp.ones(3)}
    g = {"w": jnp.ones(3)}
    acc = optxform.MultiSteps(optxform.sgd(1.0), every_k_schedule=3)
    update = jax.jit(acc.update)
    state = acc.init(params)._replace(gradient_step=jnp.asarray(INT32_MAX - 1, jnp.int32))
    emitted = []
    for _ in range(9):
        u, state = update(g, state, params)
        emitted.append(bool(acc.has_updated(state)))
        assert int(state.gradient_step) >= INT32_MAX - 1  # never wraps negative
    assert emitted == [False, False, True] * 3
    assert int(state.gradient_step) == INT32_MAX
    np.testing.assert_array_equal(u["w"], -np.ones(3, np.float32))  # mean of three ones

    growing = optxform.MultiSteps(optxform.sgd(1.0), every_k_schedule=lambda step: step + 1)
    update = jax.jit(growing.update)
    state, when = growing.init(params), []
    for i in range(10):
        _, state = update(g, state, params)
        if bool(growing.has_updated(state)):
            when.append(i + 1)
    assert when == [1, 3, 6, 10]  # windows of 1, 2, 3, 4 micro-batches
    with pytest.raises(ValueError, match="every_k_schedule"):
        optxform.MultiSteps(optxform.sgd(1.0), every_k_schedule=0)


# --- ema ---------------------------------------------------------------------------------------


def test_ema_of_params_matches_torch_averaged_model():
    import torch
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    decay, steps = 0.8, 12
    params = _params()
    tx = optxform.chain(optxform.sgd(0.1, momentum=0.9), optxform.ema(decay))
    trajectory, state, p = [], tx.init(params), params
    update = jax.jit(tx.update)
    for t in range(steps):
        u, state = update(_grad(p, t), state, p)
        p = optxform.apply_updates(p, u)
        trajectory.append(p)

    names = sorted(params)
    model = torch.nn.ParameterList([torch.nn.Parameter(torch.tensor(np.asarray(params[n])))
                                    for n in names])
    averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay))
    for p_t in trajectory:
        with torch.no_grad():
            for tp, n in zip(model, names):
                tp.copy_(torch.tensor(np.asarray(p_t[n])))
        averaged.update_parameters(model)
    average = optxform.ema_params(state)
    for tp, n in zip(averaged.module, names):
        np.testing.assert_allclose(average[n], tp.detach().numpy(), rtol=1e-6, atol=1e-7)
    assert int(state[1].count) == steps
    # Not a plain copy of the last params.
    assert not np.allclose(average["w1"], trajectory[-1]["w1"])


def test_ema_accessor_and_validation():
    with pytest.raises(ValueError, match="decay"):
        optxform.ema(1.5)
    with pytest.raises(ValueError, match="no ema"):
        optxform.ema_params(optxform.sgd(0.1).init(_params()))
    params = {"w": jnp.ones(2, jnp.bfloat16)}
    tx = optxform.chain(optxform.sgd(0.5), optxform.ema(0.5))
    u, s = tx.update({"w": jnp.ones(2, jnp.bfloat16)}, tx.init(params), params)
    assert u["w"].dtype == jnp.bfloat16
    assert optxform.ema_params(s)["w"].dtype == jnp.float32
    assert optxform.ema_params(s, like=params)["w"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(optxform.ema_params(s)["w"], [0.5, 0.5])  # first copies


# --- flatten -------------------------------------------------------------------------------------


def test_flatten_runs_on_one_vector_with_the_same_updates():
    params = _params()
    n = sum(x.size for x in jax.tree.leaves(params))
    flat = optxform.flatten(optxform.adam(0.01))
    state = flat.init(params)
    assert {x.shape for x in jax.tree.leaves(state) if x.ndim} == {(n,)}
    p_flat, _ = _train(flat, params, 6)
    p_ref, _ = _train(optxform.adam(0.01), params, 6)
    for name in params:
        np.testing.assert_allclose(p_flat[name], p_ref[name], rtol=1e-6, atol=1e-7)
        assert p_flat[name].shape == params[name].shape

    mixed = {"a": jnp.ones(3, jnp.bfloat16), "b": jnp.ones((2, 2), jnp.float32)}
    u, _ = optxform.flatten(optxform.sgd(0.5)).update(
        mixed, optxform.flatten(optxform.sgd(0.5)).init(mixed), mixed)
    assert u["a"].dtype == jnp.bfloat16 and u["b"].dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(u["b"]), np.full((2, 2), -0.5, np.float32))


# --- generic: jit without retrace, lax.scan, vmap, empty params ---------------------------------


WRAPPERS = {
    "masked": lambda: optxform.masked(optxform.adam(1e-2), {"w1": True, "b1": False,
                                                            "w2": True, "k": False}),
    "multi_transform": lambda: optxform.multi_transform(
        {"a": optxform.adam(1e-2), "b": optxform.sgd(0.1, momentum=0.9), "f": optxform.freeze()},
        lambda p: {n: ("a" if n.startswith("w") else "b" if n == "b1" else "f") for n in p}),
    "apply_if_finite": lambda: optxform.apply_if_finite(optxform.adam(1e-2), 2),
    "MultiSteps": lambda: optxform.MultiSteps(optxform.adam(1e-2), 2).gradient_transformation(),
    "ema": lambda: optxform.chain(optxform.adam(1e-2), optxform.ema(0.9)),
    "flatten": lambda: optxform.flatten(optxform.adam(1e-2)),
}


@pytest.mark.parametrize("name", sorted(WRAPPERS))
def test_wrapper_state_is_stable_under_jit_scan_and_vmap(name):
    tx = WRAPPERS[name]()
    params = _params()
    traces = []

    @jax.jit
    def step(params, state, t):
        traces.append(1)
        updates, state = tx.update(_grad(params, t), state, params)
        return optxform.apply_updates(params, updates), state

    state = tx.init(params)
    halves = jax.tree.map(lambda x: x * 0.5, params)
    loops = []
    for start in (params, halves):
        p, s = start, tx.init(start)
        for t in range(3):
            p, new_s = step(p, s, jnp.asarray(t, jnp.int32))
            assert jax.tree.structure(new_s) == jax.tree.structure(s)
            assert [(x.shape, x.dtype) for x in jax.tree.leaves(new_s)] == \
                [(x.shape, x.dtype) for x in jax.tree.leaves(s)]
            s = new_s
        loops.append(p)
    assert len(traces) == 1
    # vmap over two copies of the problem, of lax.scan over the steps: each copy gets the
    # same params as its own Python loop of jitted steps.
    def scanned(start):
        (p, _), _ = jax.lax.scan(lambda c, t: (step(c[0], c[1], t), None),
                                 (start, tx.init(start)), jnp.arange(3, dtype=jnp.int32))
        return p

    out = jax.jit(jax.vmap(scanned))(jax.tree.map(lambda a, b: jnp.stack([a, b]), params, halves))
    for i in range(2):
        _assert_trees_close(jax.tree.map(lambda x: x[i], out), loops[i], rtol=1e-5)
    # An empty params tree is valid.
    empty = WRAPPERS[name]() if name != "masked" else optxform.masked(optxform.adam(1e-2), {})
    updates, _ = empty.update({}, empty.init({}), {})
    assert updates == {}
