"""A parity problem for the Kronecker-factored optimizers (SOAP, Shampoo) and its runners.

SOAP's first bases are eigenvectors of each axis's statistic of the *first* gradient. For a
non-square matrix one of those statistics is rank-deficient, and the eigenvectors of its
null space are arbitrary: LAPACK builds differ there, and Adam in a rotated basis is not
rotation-invariant, so no two implementations agree on such a param. The problem here
holds params whose first statistics have distinct eigenvalues (square or cube-like
shapes, a length-2 vector), on which the bases are unique up to signs, which SOAP's
update does not see. Gradients are fresh each step (new targets) and nonlinear.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import optxform

SHAPES = {"b": (2,), "m": (5, 5), "t": (3, 3, 3), "c": (2, 2, 3, 3)}


#: For ``merge_dims``: a vector would merge into one axis, which the reference cannot do.
MERGE_SHAPES = {"c": (2, 2, 3, 3), "t": (3, 3, 3)}


def initial(dtype=np.float32, shapes: dict = SHAPES) -> dict:
    rng = np.random.default_rng(0)
    return {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}


def gradient(params: dict, t: int) -> dict:
    """The gradient of ``sum((p - target_t)**2 + 0.075 p**4)`` with fresh targets."""
    rng = np.random.default_rng(100 + t)
    out = {}
    for k in sorted(params):
        p = np.asarray(params[k])
        target = rng.standard_normal(p.shape)
        out[k] = (2 * (p - target) + 0.3 * p ** 3).astype(p.dtype)
    return out


def reference_trajectory(cls, kwargs: dict, steps: int, dtype=np.float32,
                         shapes: dict = SHAPES) -> list[dict]:
    import torch

    names = sorted(shapes)
    start = initial(dtype, shapes)
    tp = {n: torch.tensor(start[n], requires_grad=True) for n in names}
    opt = cls([tp[n] for n in names], **kwargs)
    out = []
    for t in range(steps):
        g = gradient({n: tp[n].detach().numpy() for n in names}, t)
        for n in names:
            tp[n].grad = torch.from_numpy(g[n])
        opt.step()
        out.append({n: tp[n].detach().numpy().copy() for n in names})
    return out


def optxform_trajectory(tx, steps: int, dtype=np.float32, shapes: dict = SHAPES) -> list[dict]:
    params = {k: jnp.asarray(v) for k, v in initial(dtype, shapes).items()}
    state = tx.init(params)

    @jax.jit
    def step(params, state, g):
        updates, state = tx.update(g, state, params)
        return optxform.apply_updates(params, updates), state

    out = []
    for t in range(steps):
        g = {k: jnp.asarray(v) for k, v in gradient(params, t).items()}
        params, state = step(params, state, g)
        out.append({k: np.asarray(v) for k, v in params.items()})
    return out


def spread(a: list[dict], b: list[dict]) -> list[dict]:
    """Elementwise ``|a - b|`` per step (an oracle's disagreement with itself)."""
    return [{k: np.abs(x[k].astype(np.float64) - y[k]) for k in x} for x, y in zip(a, b)]


def max_relative_error(actual: list[dict], expected: list[dict], floor: float) -> float:
    return max(float(np.max(np.abs(a[k] - e[k]) / (np.abs(e[k]) + floor)))
               for a, e in zip(actual, expected) for k in e)


def sine_step(tx):
    """``tx``'s jitted step on the gradient ``sin(p (t + 1))``."""

    @jax.jit
    def step(params, state, t):
        g = jax.tree.map(lambda p: jnp.sin(p * (t + 1.0)), params)
        u, state = tx.update(g, state, params)
        return optxform.apply_updates(params, u), state

    return step


def assert_resume_is_bit_identical(step, tx, params, state, path, start: int, stop: int):
    """``start`` steps, a checkpoint saved and loaded into a fresh state, then both carry
    on to ``stop`` bit-identically; returns the params and the state at ``start`` and the
    loaded state."""
    for t in range(start):
        params, state = step(params, state, t)
    optxform.save_state(path, state)
    restored = optxform.load_state(path, tx.init(params))
    a, b = (params, state), (params, restored)
    for t in range(start, stop):
        a, b = step(*a, t), step(*b, t)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    return params, state, restored


def assert_vmap_equals_single_runs(tx, two: dict, rtol: float):
    """Three steps of ``tx`` vmapped over the leading axis of ``two`` equal the runs one
    by one (both jitted)."""

    def run(p):
        s = tx.init(p)
        for t in range(3):
            u, s = tx.update(jax.tree.map(lambda x: jnp.cos(x * (t + 1.0)), p), s, p)
            p = optxform.apply_updates(p, u)
        return p

    batched = jax.jit(jax.vmap(run))(two)
    run_one = jax.jit(run)
    for i in range(2):
        single = run_one(jax.tree.map(lambda x: x[i], two))
        for n in single:
            np.testing.assert_allclose(batched[n][i], single[n], rtol=rtol, atol=1e-6)


def sharded_matrices(kind, shapes=((8, 16), (16, 8))) -> tuple[dict, dict, dict]:
    """Two float32 matrices ``w`` and ``v`` on an 8-device mesh axis ``model`` of ``kind``
    (explicit or automatic), ``w`` split by columns and ``v`` by rows: the params, their
    shardings, and the params placed."""
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    mesh = jax.make_mesh((8,), ("model",), axis_types=(kind,))
    rng = np.random.default_rng(6)
    params = {n: jnp.asarray(rng.standard_normal(s), jnp.float32)
              for n, s in zip(("w", "v"), shapes)}
    shardings = {"w": NamedSharding(mesh, P(None, "model")),
                 "v": NamedSharding(mesh, P("model", None))}
    return params, shardings, jax.device_put(params, shardings)
