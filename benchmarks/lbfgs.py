"""L-BFGS benchmark: optxform vs torch.optim.LBFGS vs scipy L-BFGS-B on standard problems.

Run: ``.venv/bin/python benchmarks/lbfgs.py`` (float64, CPU, about two minutes). Prints two
markdown tables of iterations, objective+gradient evaluations, final max|gradient|, final
value and its gap to the minimum ``f - f*``:

* *defaults*: each solver's own stopping rules. All use the gradient tolerance ``1e-5`` on
  max|g| (SciPy's default ``gtol``, torch/optxform's ``tolerance_grad``); optxform and torch
  keep ``tolerance_change=1e-9`` (absolute change of f or of the step) and
  ``history_size=100``, SciPy its ``ftol=2.2e-9`` (relative change of f) and ``maxcor=10``.
* *to max|g| <= 1e-5*: the change tests switched off (``tolerance_change=0``, ``ftol=0``), so
  every solver runs until the same gradient accuracy: evaluations at equal accuracy.

All three see the same objective and gradient (one JAX function) from the same start;
optxform and torch run one ``step(closure)`` with a large ``max_iter`` (a full solve).
Times are wall-clock for the solve after compilation (torch and SciPy call the JAX function
once per evaluation from Python, so their times include that dispatch).
"""

from __future__ import annotations

import json
import os
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import optxform  # noqa: E402

GTOL = 1e-5
MAX_ITER = 10_000


def rosenbrock(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def extended_powell(x):
    a, b, c, d = x[0::4], x[1::4], x[2::4], x[3::4]
    return jnp.sum((a + 10.0 * b) ** 2 + 5.0 * (c - d) ** 2 + (b - 2.0 * c) ** 4
                   + 10.0 * (a - d) ** 4)


def beale(x):
    u, v = x[0], x[1]
    return ((1.5 - u + u * v) ** 2 + (2.25 - u + u * v ** 2) ** 2
            + (2.625 - u + u * v ** 3) ** 2)


def breast_cancer_logistic():
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    x = (data.data - data.data.mean(0)) / data.data.std(0)
    x = jnp.asarray(np.hstack([x, np.ones((x.shape[0], 1))]))
    y = jnp.asarray(data.target.astype(np.float64))

    def loss(w):
        z = x @ w
        return jnp.mean(jnp.logaddexp(0.0, z) - y * z) + 0.5e-3 * jnp.sum(w[:-1] ** 2)

    return loss, np.zeros(x.shape[1])


def problems():
    """(name, f, start, f*): the known minimum value, or a tight SciPy solve's."""
    from scipy.optimize import minimize

    loss, w0 = breast_cancer_logistic()
    value_and_grad = jax.jit(jax.value_and_grad(loss))
    tight = minimize(lambda w: tuple(np.asarray(v) for v in value_and_grad(jnp.asarray(w))),
                     w0, jac=True, method="L-BFGS-B",
                     options={"gtol": 1e-11, "ftol": 0.0, "maxiter": 10_000})
    return [
        ("Rosenbrock 2-D", rosenbrock, np.array([-1.2, 1.0]), 0.0),
        ("Rosenbrock 100-D", rosenbrock, np.tile([-1.2, 1.0], 50), 0.0),
        ("Extended Powell 100-D", extended_powell, np.tile([3.0, -1.0, 0.0, 1.0], 25), 0.0),
        ("Beale 2-D", beale, np.array([1.0, 1.0]), 0.0),
        ("Logistic breast_cancer 31-D", loss, w0, float(tight.fun)),
    ]


def run_optxform(fn, x0, strict):
    tx = optxform.lbfgs(line_search_fn="strong_wolfe", max_iter=MAX_ITER,
                        max_eval=MAX_ITER * 5 // 4, tolerance_grad=GTOL,
                        tolerance_change=0.0 if strict else 1e-9)

    @jax.jit
    def solve(x):
        value, grad = jax.value_and_grad(fn)(x)
        updates, state = tx.update(grad, tx.init(x), x, value=value, value_fn=fn)
        return optxform.apply_updates(x, updates), state[0]

    x, state = jax.block_until_ready(solve(jnp.asarray(x0)))  # compile + run
    start = time.perf_counter()
    x, state = jax.block_until_ready(solve(jnp.asarray(x0)))
    seconds = time.perf_counter() - start
    return np.asarray(x), int(state.n_iter), int(state.func_evals), seconds


def run_torch(fn, x0, strict):
    import torch

    value_and_grad = jax.jit(jax.value_and_grad(fn))
    p = torch.tensor(x0, requires_grad=True)
    opt = torch.optim.LBFGS([p], max_iter=MAX_ITER, max_eval=MAX_ITER * 5 // 4,
                            tolerance_grad=GTOL, tolerance_change=0.0 if strict else 1e-9,
                            line_search_fn="strong_wolfe")

    def closure():
        f, g = value_and_grad(jnp.asarray(p.detach().numpy()))
        p.grad = torch.from_numpy(np.array(g))
        return torch.tensor(float(f), dtype=torch.float64)

    closure()  # warm up the JAX function outside the timing
    start = time.perf_counter()
    opt.step(closure)
    seconds = time.perf_counter() - start
    state = opt.state[p]
    return p.detach().numpy(), state["n_iter"], state["func_evals"], seconds


def run_scipy(fn, x0, strict):
    from scipy.optimize import minimize

    value_and_grad = jax.jit(jax.value_and_grad(fn))

    def fun(x):
        f, g = value_and_grad(jnp.asarray(x))
        return float(f), np.asarray(g, dtype=np.float64)

    fun(x0)
    start = time.perf_counter()
    options = {"gtol": GTOL, "maxiter": MAX_ITER, "maxfun": MAX_ITER * 5 // 4}
    if strict:
        options["ftol"] = 0.0
    result = minimize(fun, x0, jac=True, method="L-BFGS-B", options=options)
    seconds = time.perf_counter() - start
    return result.x, result.nit, result.nfev, seconds


SOLVERS = (("optxform", run_optxform), ("torch", run_torch), ("scipy L-BFGS-B", run_scipy))


def measure(strict: bool, cases) -> list[tuple]:
    rows = []
    for name, fn, x0, f_star in cases:
        grad = jax.jit(jax.grad(fn))
        for solver, run in SOLVERS:
            x, iters, evals, seconds = run(fn, x0, strict)
            x = jnp.asarray(x)
            g = float(jnp.max(jnp.abs(grad(x))))
            f = float(fn(x))
            rows.append((name, solver, iters, evals, g, f, f - f_star, seconds))
    return rows


def print_table(title: str, rows) -> None:
    print(f"\n{title}\n")
    print("| problem | solver | iterations | f+g evals | max abs grad | final f | f - f* |"
          " time (ms) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name, solver, iters, evals, g, f, gap, seconds in rows:
        print(f"| {name} | {solver} | {iters} | {evals} | {g:.1e} | {f:.6e} | {gap:.1e} | "
              f"{seconds * 1e3:.1f} |")


def main():
    cases = problems()
    tables = {}
    for strict, title in ((False, "Each solver's default stopping rules (gtol 1e-5):"),
                          (True, "Run to max|g| <= 1e-5 (change tests off):")):
        tables[strict] = measure(strict, cases)
        print_table(title, tables[strict])
    keys = ("problem", "solver", "iterations", "evals", "max_abs_grad", "final_value",
            "gap_to_min", "seconds")
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "lbfgs.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump({"defaults": [dict(zip(keys, row)) for row in tables[False]],
                   "to_gtol": [dict(zip(keys, row)) for row in tables[True]],
                   "jax": jax.__version__}, f, indent=1)
    print(f"\nwritten to {out}")
    return tables


if __name__ == "__main__":
    main()
