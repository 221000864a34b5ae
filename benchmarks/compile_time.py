"""Compile time and step time against the number of leaves (10, 100, 1,000, 10,000).

Run: ``.venv/bin/python benchmarks/compile_time.py [--max-leaves N] [--model]``
Writes ``benchmarks/results/compile_time.json`` (read by ``plot_scaling.py``).

Part 1, the optimizer step alone: Adam on L leaves of 1,000 float32 each, for optax and
optxform on the tree, ``optxform.packed(tx)`` and params kept packed (``optxform.flat``);
torch foreach/fused step times alongside (torch does not compile). Compile = trace + lower +
compile of the jitted, donated ``update + apply_updates``. Every variant runs in a worker
process of its own (``--copies`` per variant, default 1; see common.py for why).

Part 2 (``--model``), a whole training step (forward, backward, Adam) of a chain of L
32x32 tanh layers: params as a tree vs params kept packed and unpacked in the loss with
constant offsets (``layout.unpack(flat)``) or run-time offsets
(``layout.unpack(flat, offsets)`` with ``offsets`` a jit argument). XLA:CPU compiles one
kernel per distinct slice, so constant offsets cost compile time per leaf.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import common as C  # noqa: N812
import optxform

LEAVES = (10, 100, 1_000, 10_000)


MODEL_VARIANTS = ("tree", "flat, constant offsets", "flat, run-time offsets")


def build_variant(key: str, name: str) -> C.Variant:
    """One variant (in the worker process that times it): ``key`` is ``"<L>"`` for Adam on
    L leaves of 1,000, ``"model<L>"`` for the L-layer training step."""
    if key.startswith("model"):
        return _model_variant(int(key[len("model"):]), name)
    return C.variant_of(C.leaves_workload(int(key), 1_000, "adam"), name)


def _timed(key: str, names: tuple, rounds: int, reps: int, copies: int) -> list[C.Variant]:
    variants = C.built("compile_time", key, names, copies, {"TORCH_THREADS": C.TORCH_THREADS})
    C.interleave(variants, rounds, reps)
    for v in variants:
        v.close()
    return variants


def optimizer_scaling(max_leaves: int, rounds: int, reps: int, copies: int) -> list[dict]:
    rows = []
    for num_leaves in [n for n in LEAVES if n <= max_leaves]:
        print(f"\n{num_leaves:,} leaves x 1,000", flush=True)
        for v in _timed(str(num_leaves), C.JAX_VARIANTS + C.TORCH_VARIANTS, rounds, reps, copies):
            row = {"leaves": num_leaves, "variant": v.name, "compile_s": v.compile_s,
                   "step_ms": v.median_ms()}
            rows.append(row)
            print(f"  {v.name:16s} compile {C.fmt_s(v.compile_s):>6s} s   step "
                  f"{C.fmt_ms(v.median_ms()):>7s} ms", flush=True)
    return rows


def _model_loss(ws, x):
    h = x
    for w in jax.tree.leaves(ws):
        h = jnp.tanh(h @ w)
    return jnp.mean(h * h)


def _model_variant(num_leaves: int, name: str) -> C.Variant:
    """A training step of ``num_leaves`` tanh layers of 32x32: params as a tree, or packed
    and cut out with constant or run-time offsets."""
    tx = optxform.adam(1e-3)
    x = jnp.ones((16, 32), jnp.float32)
    rng = np.random.default_rng(0)
    params = {f"w{i:05d}": jnp.asarray(0.2 * rng.standard_normal((32, 32)), jnp.float32)
              for i in range(num_leaves)}
    layout = optxform.packed_layout(params)
    flat, offsets = layout.pack(params), layout.offsets()

    def tree_step(p, s, _):
        g = jax.grad(_model_loss)(p, x)
        u, s = tx.update(g, s, p)
        return optxform.apply_updates(p, u), s

    def flat_static(f, s, _):
        g = jax.grad(lambda f: _model_loss(layout.unpack(f), x))(f)
        u, s = tx.update(g, s, f)
        return optxform.apply_updates(f, u), s

    def flat_dynamic(f, s, offs):
        g = jax.grad(lambda f: _model_loss(layout.unpack(f, offs), x))(f)
        u, s = tx.update(g, s, f)
        return optxform.apply_updates(f, u), s

    fn, p, extra = {"tree": (tree_step, params, 0),
                    "flat, constant offsets": (flat_static, flat, 0),
                    "flat, run-time offsets": (flat_dynamic, flat, offsets)}[name]
    state = tx.init(p)
    start = time.perf_counter()
    compiled = jax.jit(fn, donate_argnums=(0, 1)).lower(p, state, extra).compile()
    compile_s = time.perf_counter() - start
    box = {"p": jax.tree.map(jnp.copy, p), "s": state}

    def step():
        box["p"], box["s"] = compiled(box["p"], box["s"], extra)
        jax.block_until_ready(box["p"])

    step()
    return C.Variant(name, step, compile_s)


def model_scaling(leaf_counts, rounds: int, reps: int, copies: int) -> list[dict]:
    rows = []
    for num_leaves in leaf_counts:
        print(f"\nmodel with {num_leaves:,} layers", flush=True)
        for v in _timed(f"model{num_leaves}", MODEL_VARIANTS, rounds, reps, copies):
            rows.append({"layers": num_leaves, "variant": v.name, "compile_s": v.compile_s,
                         "step_ms": v.median_ms()})
            print(f"  {v.name:24s} compile {C.fmt_s(v.compile_s):>6s} s   step "
                  f"{C.fmt_ms(v.median_ms()):>7s} ms", flush=True)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-leaves", type=int, default=10_000)
    parser.add_argument("--model", action="store_true", help="also part 2 (training steps)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--copies", type=int, default=1,
                        help="worker processes per variant, times pooled (see common.py)")
    parser.add_argument("--torch-threads", type=int, default=C.TORCH_THREADS,
                        help="torch intra-op threads on the CPU (default 1, see common.py)")
    args = parser.parse_args(argv)
    C.TORCH_THREADS = args.torch_threads
    info = C.machine_info()
    print(f"machine: {info['cpu']}, {info['cores']} cores, load {info['load_avg']}")
    payload = {"machine": info, "torch_threads": C.TORCH_THREADS, "copies": args.copies,
               "optimizer": optimizer_scaling(args.max_leaves, args.rounds, args.reps,
                                              args.copies)}
    if args.model:
        payload["model"] = model_scaling((10, 100, 300), args.rounds, args.reps, args.copies)
    payload["load_avg_end"] = C.machine_info()["load_avg"]
    print(f"\nload average at the end: {payload['load_avg_end']}; results: "
          f"{C.save_results('compile_time', payload)}")


if __name__ == "__main__":
    main()
