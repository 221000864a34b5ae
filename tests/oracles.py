"""Test problems and oracle trajectories (torch.optim, optax) for parity tests.

Gradients for both sides come from the same JAX function, so a parity test compares only
the optimizers' arithmetic, not two autodiff implementations.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np


def _logcosh(x):
    # Bounded gradient (tanh): trajectories stay finite for every optimizer, maximize too.
    return jnp.abs(x) + jnp.log1p(jnp.exp(-2.0 * jnp.abs(x))) - jnp.log(2.0).astype(x.dtype)


def mlp_params(seed: int = 0, dtype=np.float32) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "w1": (rng.standard_normal((6, 5)) * 0.5).astype(dtype),
        "b1": (rng.standard_normal((5,)) * 0.1).astype(dtype),
        "w2": (rng.standard_normal((5, 3)) * 0.5).astype(dtype),
        "k": rng.standard_normal((2, 3, 4)).astype(dtype),
    }


def mlp_loss(params: dict, step) -> jax.Array:
    """A small tanh MLP on a minibatch that changes with ``step``, plus a 3-D param term.

    The 3-D term pulls ``k`` towards a target drawn afresh each step, so its gradient stays
    O(1) and never settles at a fixed stationary point. (A fixed target such as
    ``logcosh(k * k - 0.5)`` lets ``k`` converge to its exact minimum, where the float32
    gradient is pure rounding noise that normalising optimizers amplify: torch's own
    float64 NAdam then leaves its float32 trajectory by 8x the parity tolerance.)
    """
    key = jax.random.fold_in(jax.random.PRNGKey(42), step)
    kx, ky = jax.random.split(key)
    dtype = params["w1"].dtype
    x = jax.random.normal(kx, (8, 6), dtype)
    y = jax.random.normal(ky, (8, 3), dtype)
    h = jnp.tanh(x @ params["w1"] + params["b1"][None, :])
    err = h @ params["w2"] - y
    k = params["k"]
    target = jax.random.normal(jax.random.fold_in(key, 1), k.shape, dtype)
    return jnp.mean(_logcosh(err)) + jnp.mean(_logcosh(k - target))


def embedding_params(seed: int = 0, dtype=np.float32) -> dict:
    rng = np.random.default_rng(seed)
    return {"embed": rng.standard_normal((12, 4)).astype(dtype)}


def embedding_loss(params: dict, step) -> jax.Array:
    """Looks up 5 of 12 rows per step: the other rows get an all-zero gradient row."""
    key = jax.random.fold_in(jax.random.PRNGKey(7), step)
    kidx, ky = jax.random.split(key)
    idx = jax.random.choice(kidx, 12, (5,), replace=False)
    dtype = params["embed"].dtype
    y = jax.random.normal(ky, (5, 4), dtype)
    return jnp.mean(_logcosh(params["embed"][idx] - y))


def matrix_params(seed: int = 0, dtype=np.float32) -> dict:
    """Matrices only (Muon's params): two layers of a tanh MLP and two free matrices."""
    rng = np.random.default_rng(seed + 3)
    return {"w1": (rng.standard_normal((6, 5)) * 0.5).astype(dtype),
            "w2": (rng.standard_normal((5, 3)) * 0.5).astype(dtype),
            "w3": rng.standard_normal((4, 7)).astype(dtype),
            "w4": rng.standard_normal((4, 7)).astype(dtype)}


def matrix_loss(params: dict, step) -> jax.Array:
    """A bias-free tanh MLP on a fresh minibatch, plus two matrices pulled to fresh targets
    (squared and absolute error: the latter's gradient stays O(1))."""
    key = jax.random.fold_in(jax.random.PRNGKey(5), step)
    kx, ky, kt = jax.random.split(key, 3)
    dtype = params["w1"].dtype
    x = jax.random.normal(kx, (8, 6), dtype)
    y = jax.random.normal(ky, (8, 3), dtype)
    err = jnp.tanh(x @ params["w1"]) @ params["w2"] - y
    t = jax.random.normal(kt, (2, 4, 7), dtype)
    return (jnp.mean(err ** 2) + jnp.mean((params["w3"] - t[0]) ** 2)
            + jnp.mean(jnp.abs(params["w4"] - t[1])))


def square_params(seed: int = 0, dtype=np.float32) -> dict:
    """Params whose gradients' axis statistics are full rank (SOAP's first eigenbases are
    then unique up to signs; a non-square matrix's are arbitrary in a null space)."""
    rng = np.random.default_rng(seed + 11)
    return {"m": (rng.standard_normal((5, 5)) * 0.5).astype(dtype),
            "t": (rng.standard_normal((3, 3, 3)) * 0.5).astype(dtype),
            "b": (rng.standard_normal((2,)) * 0.5).astype(dtype)}


def square_loss(params: dict, step) -> jax.Array:
    """Each param pulled to a fresh target, with a quartic term (gradients stay O(1))."""
    key = jax.random.fold_in(jax.random.PRNGKey(7), step)
    total = jnp.zeros((), params["m"].dtype)
    for k, name in zip(jax.random.split(key, 3), sorted(params)):
        p = params[name]
        target = jax.random.normal(k, p.shape, p.dtype)
        total = total + jnp.mean((p - target) ** 2) + 0.075 * jnp.mean(p ** 4)
    return total


PROBLEMS = {
    "mlp": (mlp_params, mlp_loss),
    "embedding": (embedding_params, embedding_loss),
    "matrices": (matrix_params, matrix_loss),
    "square": (square_params, square_loss),
}


# The parity trajectories compile as a user's program does: at XLA's default optimization
# level, which the suite otherwise turns off for compile time (tests/conftest.py). Without
# LLVM's optimizations XLA rounds some sums and products differently in the last bit, and a
# row's verdict against torch should be about the code users run.
AS_USERS_COMPILE = {"xla_backend_optimization_level": 3}


@functools.lru_cache(maxsize=None)
def grad_fn(problem: str, as_users_compile: bool = False):
    """The jit-compiled gradient of a problem's loss; ``as_users_compile`` for the
    gradients the oracles are fed."""
    _, loss = PROBLEMS[problem]
    return jax.jit(jax.grad(loss),
                   compiler_options=AS_USERS_COMPILE if as_users_compile else None)


def optxform_trajectory(tx, problem: str, steps: int, params=None) -> list[dict]:
    """Params after each of ``steps`` jit-compiled updates (numpy copies)."""
    import optxform

    make_params, _ = PROBLEMS[problem]
    params = jax.tree.map(jnp.asarray, params if params is not None else make_params())
    grad = jax.grad(PROBLEMS[problem][1])

    @functools.partial(jax.jit, compiler_options=AS_USERS_COMPILE)
    def step(params, state, t):
        g = grad(params, t)
        updates, state = tx.update(g, state, params)
        return optxform.apply_updates(params, updates), state

    state = tx.init(params)
    out = []
    for t in range(steps):
        params, state = step(params, state, jnp.asarray(t, jnp.int32))
        out.append(jax.tree.map(np.asarray, params))
    return out


def torch_trajectory(torch_cls: str, torch_kwargs: dict, problem: str, steps: int) -> list[dict]:
    """Params after each ``torch.optim.<torch_cls>.step()``, fed the JAX gradients."""
    import torch

    make_params, _ = PROBLEMS[problem]
    init = make_params()
    names = sorted(init)
    tparams = {n: torch.tensor(init[n], requires_grad=True) for n in names}
    opt = getattr(torch.optim, torch_cls)([tparams[n] for n in names], **torch_kwargs)
    grad = grad_fn(problem, as_users_compile=True)
    sparse = torch_cls == "SparseAdam"
    out = []
    for t in range(steps):
        current = {n: jnp.asarray(tparams[n].detach().numpy()) for n in names}
        g = grad(current, jnp.asarray(t, jnp.int32))
        for n in names:
            dense = torch.from_numpy(np.array(g[n]))
            tparams[n].grad = dense.to_sparse(sparse_dim=1) if sparse else dense
        opt.step()
        out.append({n: tparams[n].detach().numpy().copy() for n in names})
    return out


def reference_optimizer(reference: str):
    """The class named ``"module:Class"``; an oracle that does not import fails the test."""
    import importlib

    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


def reference_trajectory(reference: str, kwargs: dict, problem: str, steps: int,
                         dtype=np.float32) -> list[dict]:
    """Params after each ``step()`` of a torch optimizer from another package.

    Fed the JAX gradients in ``dtype`` (float64 needs ``jax_enable_x64``). An optimizer
    with a train/eval mode (schedule-free) is put in training mode first, as its users do.
    """
    import torch

    make_params, _ = PROBLEMS[problem]
    init = make_params(dtype=dtype)
    names = sorted(init)
    tparams = {n: torch.tensor(init[n], requires_grad=True) for n in names}
    opt = reference_optimizer(reference)([tparams[n] for n in names], **kwargs)
    if hasattr(opt, "train"):
        opt.train()
    grad = grad_fn(problem, as_users_compile=True)
    out = []
    for t in range(steps):
        current = {n: jnp.asarray(tparams[n].detach().numpy()) for n in names}
        g = grad(current, jnp.asarray(t, jnp.int32))
        for n in names:
            tparams[n].grad = torch.from_numpy(np.array(g[n]))
        opt.step()
        out.append({n: tparams[n].detach().numpy().copy() for n in names})
    return out


def torch_capability() -> str:
    """The CPU kernel set torch dispatches to: ``"DEFAULT"``, ``"AVX2"``, ``"AVX512"``, ..."""
    import torch

    return torch.backends.cpu.get_cpu_capability()


def torch_trajectories_in_subprocess(cases, capability: str, out: str) -> None:
    """Write ``torch_trajectory`` of every case, computed under ``ATEN_CPU_CAPABILITY=capability``.

    torch reads its kernel choice once per process, so another one needs another process.
    ``out`` is an ``.npz`` with one ``(steps, *shape)`` array per ``"<case index>/<param>"``.
    """
    import os
    import pathlib
    import subprocess
    import sys

    root = pathlib.Path(__file__).resolve().parent.parent
    env = dict(os.environ, ATEN_CPU_CAPABILITY=capability,
               PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    script = (
        "import sys, numpy as np\n"
        "from tests import oracles\n"
        "from tests.registry import TORCH_CASES\n"
        "arrays = {}\n"
        f"for i in {[index for index, _ in cases]!r}:\n"
        "    c = TORCH_CASES[i]\n"
        "    traj = oracles.torch_trajectory(c.torch_cls, c.torch_kwargs, c.problem, c.steps)\n"
        "    for name in traj[0]:\n"
        "        arrays[f'{i}/{name}'] = np.stack([p[name] for p in traj])\n"
        "np.savez(sys.argv[1], **arrays)\n"
    )
    subprocess.run([sys.executable, "-c", script, out], env=env, check=True, cwd=root)


def optax_trajectory(optax_alias: str, optax_kwargs: dict, problem: str, steps: int):
    """optax's trajectory, traced under standard dtype promotion: optax's own bias
    corrections raise a Python float to an int32 counter, which strict promotion refuses."""
    import optax

    with jax.numpy_dtype_promotion("standard"):
        return optxform_trajectory(getattr(optax, optax_alias)(**optax_kwargs), problem, steps)


def assert_trajectories_close(actual: list[dict], expected: list[dict], rtol=1e-5, atol=1e-6,
                              oracle_spread: list[dict] | None = None):
    """Every param at every step within ``rtol * |expected| + atol`` of the oracle's.

    ``oracle_spread``, where given, is the oracle's own disagreement with itself per element
    (e.g. torch's trajectory under two CPU kernel sets); it widens the bound element by
    element, since no implementation can be closer to the oracle than the oracle is to itself.
    """
    assert len(actual) == len(expected)
    for t, (a, e) in enumerate(zip(actual, expected)):
        for name in e:
            spread = 0.0 if oracle_spread is None else oracle_spread[t][name]
            excess = np.abs(a[name] - e[name]) - (rtol * np.abs(e[name]) + atol + spread)
            if np.any(excess > 0):  # assert_allclose's report, for the worst element
                np.testing.assert_allclose(
                    a[name], e[name], rtol=rtol, atol=atol + float(np.max(spread)),
                    err_msg=f"param {name!r} differs at step {t + 1}")


def emitted_updates(tx, grads: list[dict], params) -> list[dict]:
    """The updates ``tx`` emits for each gradient in turn, ``params`` held fixed (jitted)."""
    params = jax.tree.map(jnp.asarray, params)
    update = jax.jit(tx.update)
    state = tx.init(params)
    out = []
    for g in grads:
        u, state = update(jax.tree.map(jnp.asarray, g), state, params)
        out.append(jax.tree.map(np.asarray, u))
    return out
