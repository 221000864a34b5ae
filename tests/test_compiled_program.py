"""What XLA makes of our updates: properties of the compiled program that keep steps fast.

Timings do not belong in unit tests (shared, noisy machines); the program's shape does. Each
test compiles a small step and reads XLA's optimized HLO text: a schedule is evaluated once
per step however many leaves there are, a global-norm clip is fused into the moment
kernels instead of being written out, and a rule's math is traced once per leaf shape
rather than once per leaf. docs/performance.md has the measured effect of each.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optxform
from optxform.core.schedule import value_at
from optxform.rules import declaration_of, lift


def compiled_text(tx, params, grads) -> str:
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optxform.apply_updates(params, updates), state

    return jax.jit(step).lower(params, tx.init(params), grads).compile().as_text()


def tree_of(num_leaves: int, size: int = 64) -> dict:
    rng = np.random.default_rng(0)
    return {f"w{i:02d}": jnp.asarray(rng.standard_normal(size), jnp.float32)
            for i in range(num_leaves)}


def full_size_kernels(text: str, size: int) -> list[str]:
    """The fusions of the entry computation whose output is a whole f32[size] buffer."""
    return [line for line in text.splitlines()
            if " = f32[%d]{0} fusion(" % size in line and "calls=" in line]


def test_schedule_is_compiled_once_whatever_the_number_of_leaves():
    schedule = optxform.warmup_cosine_decay_schedule(0.0, 1e-3, 10, 100)
    tx = optxform.chain(optxform.clip_by_global_norm(1.0),
                        optxform.adamw(schedule, weight_decay=0.1))
    cosines = []
    for num_leaves in (2, 12):
        params = tree_of(num_leaves)
        cosines.append(compiled_text(tx, params, params).count(" cosine("))
    # adamw reads the schedule twice (the step and the decoupled decay, as torch does);
    # without the conditional in value_at XLA copies it into each leaf's kernels.
    assert 1 <= cosines[0] <= 4
    assert cosines[1] == cosines[0]


def test_value_at_equals_the_schedule_under_jit_vmap_and_grad():
    schedule = optxform.warmup_cosine_decay_schedule(0.0, 0.5, 7, 50, end_value=0.01)
    steps = jnp.arange(0, 60, dtype=jnp.int32)
    direct = jax.vmap(schedule)(steps)
    np.testing.assert_allclose(jax.jit(jax.vmap(lambda t: value_at(schedule, t)))(steps),
                               np.asarray(direct, np.float32), rtol=1e-6, atol=0)
    assert value_at(0.25, jnp.int32(3)) == jnp.float32(0.25)
    assert value_at(0.25, jnp.int32(3)).dtype == jnp.float32

    def scaled(peak, t):  # a hyperparameter inside the schedule stays differentiable
        return value_at(lambda step: peak * jnp.cos(0.01 * step.astype(jnp.float32)), t)

    grad = jax.grad(scaled)(jnp.float32(2.0), jnp.int32(10))
    np.testing.assert_allclose(grad, np.cos(0.1), rtol=1e-6)


def test_clipped_gradient_is_fused_into_the_moments():
    size = 4096
    params = {"w": jnp.linspace(-1.0, 1.0, size, dtype=jnp.float32)}
    grads = {"w": jnp.full((size,), 3.0, jnp.float32)}  # norm 192: the clip is active
    adam = compiled_text(optxform.adam(1e-3), params, grads)
    chained = compiled_text(optxform.chain(optxform.clip_by_global_norm(1.0),
                                           optxform.adam(1e-3)), params, grads)
    # Adam writes mu, nu and the params: three full-size kernels. The clip adds a
    # reduction (a scalar) and no kernel that writes the clipped gradients out.
    assert len(full_size_kernels(adam, size)) == 3
    assert len(full_size_kernels(chained, size)) == 3


def test_clip_by_global_norm_still_bounds_the_norm_exactly_enough():
    rng = np.random.default_rng(3)
    grads = {"a": jnp.asarray(rng.standard_normal((30, 7)) * 40, jnp.float32),
             "b": jnp.asarray(rng.standard_normal(11) * 40, jnp.float32)}
    clipped, _ = optxform.clip_by_global_norm(2.5).update(grads, None)
    norm = np.sqrt(sum(np.sum(np.square(np.asarray(x, np.float64)))
                       for x in jax.tree.leaves(clipped)))
    assert abs(norm - 2.5) <= 2.5 * 2e-7
    direction = np.concatenate([np.ravel(x) for x in jax.tree.leaves(grads)])
    got = np.concatenate([np.ravel(x) for x in jax.tree.leaves(clipped)])
    np.testing.assert_allclose(got, direction * (2.5 / np.linalg.norm(direction)), rtol=3e-7)


def _counting(rule, calls: list, **changes):
    """``rule`` with its per-leaf math counting its calls (each a trace under jit)."""
    def leaf(x):
        calls.append(jnp.shape(x.g))
        return rule.leaf(x)

    return dataclasses.replace(rule, leaf=leaf, **changes)


def test_a_rules_math_is_traced_once_per_leaf_shape_and_gives_the_same_step():
    declaration = declaration_of(optxform.scale_by_adam(b1=0.8, eps=1e-6))
    arguments = {**declaration.values, **declaration.options}
    params = {**tree_of(30), "m": jnp.ones((8, 8), jnp.float32),
              "n": jnp.full((8, 8), 2.0, jnp.float32), "h": jnp.ones((64,), jnp.float16)}
    grads = jax.tree.map(lambda p: (0.1 * p + 0.05).astype(p.dtype), params)
    shared_calls, each_calls = [], []
    shared = lift(_counting(declaration.rule, shared_calls), **arguments)
    # A rule that reads the leaf's path is traced leaf by leaf: the reference here.
    each = lift(_counting(declaration.rule, each_calls, reads_path=True), **arguments)

    def run(tx):
        def steps(grads, state):
            for k in range(3):
                updates, state = tx.update(jax.tree.map(lambda g: g * (k + 1), grads), state)
            return updates, state

        return jax.jit(steps)(grads, tx.init(params))

    got, want = run(shared), run(each)
    # per step: once for the 30 leaves of f32[64], once for the two of f32[8, 8], once
    # for the one f16[64] leaf (a leaf of its own signature runs inline)
    assert len(shared_calls) == 3 * 3
    assert len(each_calls) == 3 * len(params)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_array_equal(np.asarray(a, np.float64), np.asarray(b, np.float64))
    # eagerly (no trace to share) every leaf runs its own math
    eager_calls = []
    lift(_counting(declaration.rule, eager_calls), **arguments).update(grads, shared.init(params))
    assert len(eager_calls) == len(params)
