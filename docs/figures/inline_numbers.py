"""Measure the numbers that README.md and docs/optimizers.md, schedules.md, lbfgs.md and
distributed.md quote in their prose.

Run from the repository root (needs the ``test`` extra: torch for the parity problem and
the schedulers; about a minute on a 2-core CPU):

    python docs/figures/inline_numbers.py              # all sections, rewrites the .md
    python docs/figures/inline_numbers.py schedules    # print some sections only

Each section returns facts: short phrases its page quotes word for word. Everything here is
deterministic (float32 on the CPU; torch pinned to its portable kernels, as the test suite
pins them); tests/test_docs_numbers.py recomputes the sections, compares them with the
committed docs/figures/inline_numbers.md, and checks that each page quotes its facts.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import re
import signal
import subprocess
import sys

# torch's float32 results depend on which CPU kernels it dispatches to; pin its portable
# ones (as tests/conftest.py does) so that the numbers are the same on every machine.
os.environ.setdefault("ATEN_CPU_CAPABILITY", "default")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

FIGURES = pathlib.Path(__file__).resolve().parent
ROOT = FIGURES.parents[1]
sys.path[:0] = [str(ROOT), str(FIGURES)]
import optxform  # noqa: E402
from choosing_numbers import num, point, render  # noqa: E402  (a sibling script)

OUT = pathlib.Path(__file__).with_suffix(".md")


def relative_error(value: float, exact: float) -> float:
    return abs(float(value) - exact) / abs(exact)


# -------------------------------------------------------------------------- optimizers


def section_optimizers():
    """Float16/float32 limits, Adam's bias correction and RAdam's rectification term."""
    f32 = np.finfo(np.float32)
    with np.errstate(over="ignore", under="ignore"):
        overflow16 = next(2 ** k for k in range(32) if np.isinf(np.float16(2 ** k) ** 2))
        eps16 = float(np.float16(1e-8))
    bias_correction = 1.0 - jnp.float32(0.999) ** jnp.int32(1)  # 1 - b^t in float32
    b2 = 0.999
    rho_inf = 2.0 / (1.0 - b2) - 1.0

    def rho(t: int) -> float:
        return rho_inf - 2.0 * t * b2 ** t / (1.0 - b2 ** t)

    first_rectified = next(t for t in range(1, 100) if rho(t) > 5.0)
    # optax's scale_by_radam: b2 ** count with an int32 count, so float32 throughout.
    count = jnp.int32(first_rectified)
    b2t = b2 ** count
    rho_optax = rho_inf - 2 * count * b2t / (1 - b2t)
    return [], [
        f"a gradient of {overflow16} overflows `exp_avg_sq` to inf",
        f"`eps=1e-8` underflows to {eps16:g}",
        f"a gradient above {num(math.sqrt(float(f32.max)))} squares to inf in float32",
        f"the float32 `1 - 0.999**t` is {num(relative_error(bias_correction, 1.0 - b2))} "
        "off at `t = 1`",
        f"its two terms are ~{float(num(rho_inf, 1)):g} while `rho_t ~ t`",
        f"For `b2 = 0.999` the first {first_rectified - 1} steps are plain bias-corrected "
        "momentum steps",
        f"in float32 is {num(100 * relative_error(rho_optax, rho(first_rectified)))}% off at "
        f"`t = {first_rectified}`",
    ]


def section_adamw():
    """optax's form of decoupled decay (before the learning rate) against torch's rounding."""
    from tests import oracles
    from tests.registry import TORCH_CASES

    case = next(c for c in TORCH_CASES if c.alias == "adamw" and c.kwargs["weight_decay"] > 0
                and not c.kwargs["amsgrad"] and not c.kwargs["maximize"])
    lr, wd = case.kwargs["learning_rate"], case.kwargs["weight_decay"]
    torch_run = oracles.torch_trajectory(case.torch_cls, case.torch_kwargs, case.problem,
                                         case.steps)
    optax_form = optxform.chain(optxform.scale_by_adam(), optxform.add_decayed_weights(wd),
                                optxform.scale_by_learning_rate(lr))

    def share_of_tolerance(tx) -> float:
        """The largest ``|ours - torch| / (rtol |torch| + atol)`` over steps and elements,
        with the parity test's rtol and atol: above 1 the test fails."""
        ours = oracles.optxform_trajectory(tx, case.problem, case.steps)
        return max(float(np.max(np.abs(a[n] - e[n]) / (1e-5 * np.abs(e[n]) + 1e-6)))
                   for a, e in zip(ours, torch_run) for n in e)

    return [], [
        f"reaches {num(share_of_tolerance(optax_form))} of the AdamW parity tolerance over "
        f"{case.steps} steps, where torch's rounding stays at "
        f"{num(share_of_tolerance(case.build()))}",
    ]


def section_muon():
    """Muon's bfloat16 Newton-Schulz against stock torch; Polar Express's convergence."""
    import torch
    from torch.optim._muon import _zeropower_via_newtonschulz

    from tests import oracles

    rng = np.random.default_rng(0)
    ns = optxform.orthogonalize_by_newton_schulz()
    one_step = 0.0
    for shape in [(6, 5), (4, 7), (64, 32)]:
        g = rng.standard_normal(shape).astype(np.float32)
        want = _zeropower_via_newtonschulz(torch.tensor(g), (3.4445, -4.775, 2.0315), 5,
                                           1e-7).float().numpy()
        got = np.asarray(ns.update({"w": jnp.asarray(g)}, ns.init({"w": jnp.asarray(g)}))[0]["w"])
        got = got / math.sqrt(max(1.0, shape[0] / shape[1]))
        one_step = max(one_step, float(np.linalg.norm(got - want) / np.linalg.norm(want)))
    stock = oracles.torch_trajectory("Muon", {"lr": 0.02}, "matrices", 100)
    ours = oracles.optxform_trajectory(optxform.muon(0.02), "matrices", 100)
    drift = max(float(np.linalg.norm(a[n] - e[n]) / np.linalg.norm(e[n]))
                for a, e in zip(ours, stock) for n in e)
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        g = rng.standard_normal((6, 4))
        pe = optxform.orthogonalize_by_newton_schulz("polar_express", ns_steps=10,
                                                     ns_dtype=jnp.float64)
        u = np.asarray(pe.update({"w": jnp.asarray(g)}, pe.init({"w": jnp.asarray(g)}))[0]["w"])
    finally:
        jax.config.update("jax_enable_x64", previous)
    sv = np.linalg.svd(u / math.sqrt(1.5), compute_uv=False)
    # Bounds where the exact value is rounding noise that varies with the CPU's kernels.
    assert one_step < 1e-6 and float(np.max(np.abs(sv - 1))) < 1e-12, (one_step, sv)
    return [], [
        "one iteration equals torch's to better than 1e-6 (relative)",
        f"the params stay within {num(drift, 1)} (relative, per matrix) of stock torch",
        "ten steps in float64: singular values within 1e-12 of 1",
    ]


# --------------------------------------------------------------------------- schedules


def section_schedules():
    """The float32 schedules against torch's float64 schedulers, and a float32 power."""
    from tests import test_schedules as cases

    worst = 0.0
    for _, make_torch, make_ours in cases.TORCH_CASES:
        expected, _ = cases.torch_values(lambda opt: make_torch(cases._L(), opt))
        actual = cases.evaluate(make_ours())
        nonzero = expected != 0  # where torch's value is 0, the tests require exactly 0
        assert np.all(actual[~nonzero] == 0)
        worst = max(worst, float(np.max(np.abs(actual - expected)[nonzero]
                                        / np.abs(expected[nonzero]))))
    exact = 0.95 ** 300
    naive = jnp.exp(300 * jnp.log(jnp.float32(0.95)))
    ours = optxform.step_decay(1.0, 1, 0.95)(jnp.int32(300))  # 0.95 ** floor(t / 1)
    return [], [
        f"agree with torch's float64 arithmetic to {num(worst, 1)} relative (the largest over "
        f"the {len(cases.TORCH_CASES)} torch schedulers of the tests; the tests require "
        f"{num(cases.RTOL)})",
        f"`0.95 ** 300` computed as `exp(300 log(float32(0.95)))` is off by "
        f"{num(relative_error(naive, exact))}, the table's product by "
        f"{num(relative_error(ours, exact))}",
    ]


# ------------------------------------------------------------------------------- lbfgs


def section_lbfgs():
    """Where float32 overflows in a softplus; optxform's and torch's L-BFGS in float32."""
    from tests.test_lbfgs import PROBLEMS, optxform_run, torch_run

    overflow = math.log(float(np.finfo(np.float32).max))  # exp(z) is inf beyond it
    fn, make = PROBLEMS["rosenbrock"]  # defaults: lr 1, 20 iterations per call, fixed step
    ours, _ = optxform_run(fn, make(np.float32), 5)
    theirs, _ = torch_run(fn, make(np.float32), 5)
    apart = np.max(np.abs(ours - theirs), axis=1)
    fn, make = PROBLEMS["logistic"]  # the last row of the agreement table
    options = dict(max_iter=4, history_size=3, line_search_fn="strong_wolfe")
    _, state = optxform_run(fn, make(np.float32), 5, **options)
    _, torch_state = torch_run(fn, make(np.float32), 5, **options)
    return [], [
        f"once `z` passes {num(overflow, 3)} in float32",
        f"({int(state.n_iter)} vs {torch_state['n_iter']} iterations, "
        f"{int(state.func_evals)} vs {torch_state['func_evals']} evaluations in the last row)",
        f"a {num(float(apart[0]))} difference after the first call grows to "
        f"{num(float(apart[-1]))} by the fifth, where the runs stand at {point(ours[-1])} "
        f"and {point(theirs[-1])}",
    ]


# ------------------------------------------------------------------------- distributed

# Runs on 8 host devices, in a process of its own (the device count is fixed when JAX
# starts): the two examples' problems, as tests/test_parallel.py runs them. The process
# has 16 host devices and uses the first 8: XLA:CPU gives its host devices one worker
# thread each, and an all-reduce holds a thread per participant while it waits for the
# others; with only 8 threads, a participant still waiting for a thread to start on can
# wait for ever (seen under load on 2 cores), with 16 there are threads to spare.
_DISTRIBUTED = r"""
import importlib.util, json, pathlib, sys
import jax, jax.numpy as jnp, numpy as np, optxform
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P
# Single-device work (batch slices, copies) runs inline, so it never waits in the thread
# pool behind a multi-device step that is itself waiting for it.
jax.config.update("jax_cpu_enable_async_dispatch", False)

def example(name):
    path = pathlib.Path("examples") / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

def largest_difference(a, b):
    return max(float(jnp.max(jnp.abs(x - y))) for x, y in
               zip(jax.tree.leaves(a), jax.tree.leaves(b)))

pmap_train, sharded_train = example("pmap_train"), example("sharded_train")
steps = 100
params, x, y = pmap_train.make_problem()
tx = pmap_train.make_optimizer(steps)
on_8, _ = pmap_train.train_pmap(tx, params, x, y, steps, 64, 8)
on_1, _ = pmap_train.train_single(tx, params, x, y, steps, 64)
out = {"pmap_steps": steps, "pmap_difference": largest_difference(on_8, on_1)}

steps = 50
mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,), devices=jax.devices()[:8])
params, x, y = sharded_train.make_problem()
params = jax.device_put(params, NamedSharding(mesh, P()))
base = sharded_train.make_optimizer(steps)

def run(tx):  # the train step donates the params: each run starts from a copy
    start = jax.tree.map(jnp.copy, params)
    return sharded_train.run_steps(mesh, tx, start, tx.init(params), x, y, steps, 64)[:2]

replicated, replicated_state = run(base)
split, split_state = run(optxform.zero1(base, mesh, "data"))
(before,) = set(optxform.bytes_per_device(replicated_state).values())
(after,) = set(optxform.bytes_per_device(split_state).values())
out.update(zero1_steps=steps, zero1_difference=largest_difference(split, replicated),
           bytes_before=before, bytes_after=after)
print(json.dumps(out))
"""


_DISTRIBUTED_ATTEMPTS = 3


def section_distributed():
    """pmap and ZeRO-1 against one device and a replicated state (8 host devices)."""
    flags = re.sub(r"--xla_force_host_platform_device_count=\d+", "",
                   os.environ.get("XLA_FLAGS", ""))
    env = dict(os.environ, PYTHONPATH=str(ROOT),
               XLA_FLAGS=f"{flags} --xla_force_host_platform_device_count=16".strip())
    for attempt in range(_DISTRIBUTED_ATTEMPTS):
        proc = subprocess.run([sys.executable, "-c", _DISTRIBUTED], env=env, cwd=ROOT,
                              capture_output=True, text=True)
        # XLA:CPU aborts the process when a collective waits 40 s for one of its 8 host
        # devices; on a loaded 2-core machine its thread pool can fail to schedule the
        # last one. The numbers are deterministic, so a fresh process gives the same ones.
        if proc.returncode != -signal.SIGABRT or "Termination timeout" not in proc.stderr:
            break
    if proc.returncode != 0:
        raise RuntimeError(f"the distributed run failed ({proc.returncode} after "
                           f"{attempt + 1} attempts):\n{proc.stderr[-4000:]}")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    return [], [
        f"({num(r['pmap_difference'])} after {r['pmap_steps']} steps)",
        f"{r['bytes_before']:,} -> {r['bytes_after']:,} bytes per device, "
        f"{num(r['bytes_before'] / r['bytes_after'])}x",
        f"the largest param difference after {r['zero1_steps']} steps is "
        f"{num(r['zero1_difference'])}",
    ]


# ------------------------------------------------------------------------------ README


def section_readme():
    """The test accuracy of examples/train_mlp.py (scikit-learn's digits, seeded)."""
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "train_mlp.py")],
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=ROOT,
                          capture_output=True, text=True, check=True)
    accuracy = re.search(r"final test accuracy: ([\d.]+)%", proc.stdout).group(1)
    return [], [f"({float(accuracy):.1f}% test accuracy)"]


# -------------------------------------------------------------------------------- main

SECTIONS = {  # name -> (the page that quotes it, the section)
    "readme": ("README.md", section_readme),
    "optimizers": ("docs/optimizers.md", section_optimizers),
    "adamw": ("docs/optimizers.md", section_adamw),
    "muon": ("docs/optimizers.md", section_muon),
    "schedules": ("docs/schedules.md", section_schedules),
    "lbfgs": ("docs/lbfgs.md", section_lbfgs),
    "distributed": ("docs/distributed.md", section_distributed),
}


def main(argv: list[str]) -> None:
    names = argv or list(SECTIONS)
    texts = []
    for name in names:
        page, section = SECTIONS[name]
        texts.append(render(name, section()).replace("\n\n", f"\n\nQuoted in {page}.\n\n", 1))
    if argv:
        print("\n".join(texts))
        return
    header = [
        "# The numbers in the prose of the README and the docs pages",
        "",
        "Written by `python docs/figures/inline_numbers.py` (from the repository root).",
        "Each section's page quotes its facts word for word; the tests recompute the",
        "sections below from the current code and compare.",
        "",
    ]
    OUT.write_text("\n".join(header + texts))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main(sys.argv[1:])
