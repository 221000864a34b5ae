"""Generic tests over tests/registry.py: oracle parity, jit, vmap, pmap, dtypes, state shape."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optxform
from tests import oracles
from tests.registry import DEFAULT_CASES, OPTAX_CASES, REFERENCE_CASES, TORCH_CASES


@pytest.fixture(scope="session")
def torch_default_kernels(tmp_path_factory):
    """torch's trajectories under its portable kernels, when this run uses other ones.

    tests/conftest.py pins ``ATEN_CPU_CAPABILITY=default`` unless a run sets it, and then
    this is ``None``. A run under the machine's own kernels (AVX2, AVX-512: .ci/run does
    one) judges each row against torch's own spread, the distance between its trajectories
    under the two kernel sets, computed once in a subprocess and shared by the xdist
    workers.
    """
    if oracles.torch_capability() == "DEFAULT":
        return None
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent
    out = shared / "torch_default_kernels.npz"
    with FileLock(str(out) + ".lock"):
        if not out.exists():
            oracles.torch_trajectories_in_subprocess(
                list(enumerate(TORCH_CASES)), "default", str(out))
    with np.load(out) as data:
        return {key: data[key] for key in data.files}


@pytest.mark.parametrize("case", TORCH_CASES, ids=lambda c: c.id)
def test_matches_torch_trajectory(case, torch_default_kernels):
    expected = oracles.torch_trajectory(case.torch_cls, case.torch_kwargs, case.problem,
                                        case.steps)
    spread = None
    if torch_default_kernels is not None:
        index = TORCH_CASES.index(case)
        spread = [{name: np.abs(p[name] - torch_default_kernels[f"{index}/{name}"][t])
                   for name in p} for t, p in enumerate(expected)]
    actual = oracles.optxform_trajectory(case.build(), case.problem, case.steps)
    oracles.assert_trajectories_close(actual, expected, oracle_spread=spread)


@pytest.mark.parametrize("case", OPTAX_CASES, ids=lambda c: c.id)
def test_matches_optax_trajectory(case):
    expected = oracles.optax_trajectory(case.optax_alias, case.optax_kwargs, case.problem,
                                        case.steps)
    actual = oracles.optxform_trajectory(case.build(), case.problem, case.steps)
    oracles.assert_trajectories_close(actual, expected)


@pytest.mark.parametrize("case", REFERENCE_CASES, ids=lambda c: c.id)
def test_matches_reference_trajectory(case):
    expected = oracles.reference_trajectory(case.reference, case.reference_kwargs,
                                            case.problem, case.steps)
    actual = oracles.optxform_trajectory(case.build(), case.problem, case.steps)
    oracles.assert_trajectories_close(actual, expected)


# float64 on every third row (each alias keeps rows with and without its main options):
# float64 rows catch a wrong formula, float32 rows its rounding; both per row would double
# the suite's longest part.
@pytest.mark.parametrize("case", REFERENCE_CASES[::3], ids=lambda c: c.id)
def test_matches_reference_trajectory_in_float64(case, x64):
    expected = oracles.reference_trajectory(case.reference, case.reference_kwargs,
                                            case.problem, case.steps, dtype=np.float64)
    make, _ = oracles.PROBLEMS[case.problem]
    actual = oracles.optxform_trajectory(case.build(), case.problem, case.steps,
                                         params=make(dtype=np.float64))
    assert actual[-1][sorted(actual[-1])[0]].dtype == np.float64
    oracles.assert_trajectories_close(actual, expected, rtol=1e-10, atol=1e-12)


def _stepper(tx, problem, transform):
    """``(init, step)`` for one problem, both wrapped by ``transform`` (jit, vmap, pmap)."""
    grad = oracles.grad_fn(problem)

    def one_step(params, state, t):
        updates, state = tx.update(grad(params, t), state, params)
        return optxform.apply_updates(params, updates), state

    return transform(tx.init, batched_t=False), transform(one_step, batched_t=True)


def _iterate(init, step, params, steps):
    state = init(params)
    for t in range(steps):
        params, state = step(params, state, jnp.asarray(t, jnp.int32))
    return params, state


def _run(tx, problem, params, steps):
    """``steps`` jit-compiled updates of ``tx`` on one problem."""
    return _iterate(*_stepper(tx, problem, lambda f, batched_t: jax.jit(f)), params, steps)


def _batched_params(problem, n):
    make, _ = oracles.PROBLEMS[problem]
    trees = [make(seed) for seed in range(n)]
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees), trees


def _assert_batch_matches_single_runs(tx, problem, out, trees, indices, steps):
    init, step = _stepper(tx, problem, lambda f, batched_t: jax.jit(f))  # compiled once
    for i in indices:
        single, _ = _iterate(init, step, jax.tree.map(jnp.asarray, trees[i]), steps)
        for name in trees[i]:
            np.testing.assert_allclose(np.asarray(out[name])[i], single[name],
                                       rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", DEFAULT_CASES, ids=lambda c: c.alias)
def test_vmap_over_problems_equals_separate_runs(case):
    tx = case.build()
    batched, trees = _batched_params(case.problem, 3)

    def vmapped(f, batched_t):
        return jax.jit(jax.vmap(f, in_axes=(0, 0, None) if batched_t else 0))

    out, _ = _iterate(*_stepper(tx, case.problem, vmapped), batched, 12)
    _assert_batch_matches_single_runs(tx, case.problem, out, trees, range(3), 12)


@pytest.mark.parametrize("case", DEFAULT_CASES, ids=lambda c: c.alias)
def test_pmap_over_8_devices_equals_separate_runs(case):
    assert jax.device_count() == 8
    tx = case.build()
    batched, trees = _batched_params(case.problem, 8)

    def pmapped(f, batched_t):
        return jax.pmap(f, in_axes=(0, 0, None) if batched_t else 0)

    out, _ = _iterate(*_stepper(tx, case.problem, pmapped), batched, 6)
    _assert_batch_matches_single_runs(tx, case.problem, out, trees, (0, 7), 6)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16], ids=["bf16", "f16"])
@pytest.mark.parametrize("case", DEFAULT_CASES, ids=lambda c: c.alias)
def test_low_precision_params_keep_dtype_and_stay_finite(case, dtype):
    tx = case.build()
    make, _ = oracles.PROBLEMS[case.problem]
    params = jax.tree.map(lambda x: jnp.asarray(x, dtype), make())
    out, state = _run(tx, case.problem, params, 5)
    for name, leaf in out.items():
        assert leaf.dtype == dtype, name
        assert bool(jnp.all(jnp.isfinite(leaf.astype(jnp.float32)))), name
    # A zero gradient never yields NaN.
    zeros = jax.tree.map(jnp.zeros_like, params)
    updates, _ = jax.jit(tx.update)(zeros, tx.init(params), params)
    assert bool(optxform.tree.all_finite(updates))
    # State leaves: floats are either the param dtype or at least float32 (documented).
    for leaf in jax.tree.leaves(state):
        if jnp.issubdtype(leaf.dtype, jnp.floating):
            assert leaf.dtype in (dtype, jnp.float32), leaf.dtype


@pytest.mark.parametrize("case", DEFAULT_CASES, ids=lambda c: c.alias)
def test_state_keeps_shapes_and_dtypes_and_does_not_retrace(case):
    tx = case.build()
    make, _ = oracles.PROBLEMS[case.problem]
    params = jax.tree.map(jnp.asarray, make())
    state = tx.init(params)
    traces = []

    @jax.jit
    def step(params, state, grads):
        traces.append(1)
        return tx.update(grads, state, params)

    grad = oracles.grad_fn(case.problem)
    for t in range(3):
        updates, new_state = step(params, state, grad(params, t))
        assert jax.tree.structure(new_state) == jax.tree.structure(state)
        for a, b in zip(jax.tree.leaves(new_state), jax.tree.leaves(state)):
            assert a.shape == b.shape and a.dtype == b.dtype
        state = new_state
        params = optxform.apply_updates(params, updates)
    assert len(traces) == 1
    # The state can be carried through lax.scan.
    jax.lax.scan(lambda s, _: (step(params, s, grad(params, 0))[1], None), state, None, 2)


@pytest.mark.parametrize("case", DEFAULT_CASES, ids=lambda c: c.alias)
def test_empty_params_tree_is_valid(case):
    tx = case.build()
    state = tx.init({})
    updates, _ = tx.update({}, state, {})
    assert updates == {}


@pytest.mark.parametrize("case", DEFAULT_CASES, ids=lambda c: c.alias)
def test_mismatched_updates_name_the_first_bad_path(case):
    tx = case.build()
    make, _ = oracles.PROBLEMS[case.problem]
    params = jax.tree.map(jnp.asarray, make())
    state = tx.init(params)
    bad = dict(params)
    first = sorted(params)[0]
    bad["zzz_extra"] = bad.pop(first)
    with pytest.raises(ValueError, match=first):
        tx.update(bad, state, params)
