"""Optimizer step time: optxform (tree, packed(tx), packed params) vs optax vs torch.optim.

Run: ``.venv/bin/python benchmarks/update_step.py [--quick] [--only NAME ...]``
(CPU; ~5-10 minutes for the full set, most of it optax compiling the many-leaf trees).
Prints one markdown table per workload and writes ``benchmarks/results/update_step.json``.

Columns: compile = trace + lower + compile of the jitted, donated step (seconds); step =
median milliseconds per step over interleaved rounds; GB/s = the step's compulsory traffic
over its time; x floor = step / floor, where floor = traffic / plain-copy bandwidth measured
in the same rounds at the same size. See benchmarks/common.py for the method.
"""

from __future__ import annotations

import statistics
import sys

import common as C  # noqa: N812 - benchmarks are scripts run from this folder

WORKLOADS = {
    "adam_1k": lambda: C.leaves_workload(1_000, 1_000, "adam"),
    "chain_1k": lambda: C.leaves_workload(1_000, 1_000, "chain",
                                          name="clip+adamw+warmup-cosine, 1,000 leaves x 1,000"),
    "gpt_30m": lambda: C.Workload("adam, GPT-like 30M params in 100 leaves",
                                  C.gpt_shapes(d=512, layers=8, vocab=8192, ctx=1024)),
    "small_10k": lambda: C.leaves_workload(10_000, 100, "adam"),
    "huge_4": lambda: C.leaves_workload(4, 4_000_000, "adam",
                                        name="adam, 4 leaves x 4,000,000"),
    "tiny": lambda: C.leaves_workload(20, 1_000, "chain", name="smoke test: chain, 20 x 1,000"),
    "mixed_1k": lambda: C.leaves_workload(1_000, 1_000, "adam", dtypes=("float32", "bfloat16"),
                                          name="adam, 1,000 leaves x 1,000, half bf16"),
}
QUICK = ("adam_1k", "chain_1k", "gpt_30m")


def run_workload(key: str, rounds: int, reps: int) -> dict:
    workload = WORKLOADS[key]()
    print(f"\n### {workload.name} ({workload.num_params:,} params, {workload.num_leaves:,} "
          f"leaves)", flush=True)
    which = ["optax", "optxform", "optxform.packed", "optxform.flat"]
    if workload.recipe == "chain":
        which.insert(3, "optxform.packed(materialize)")
    variants = C.jax_variants(workload, which)
    torch_which = ("torch.foreach", "torch.fused")
    variants += C.torch_variants(workload, torch_which)
    traffic = workload.traffic_bytes()
    probe = C.CopyProbe(traffic // 2)
    probes = C.interleave(variants, rounds, reps, extra=lambda: probe(reps))
    copy_gbs = statistics.median(probes)
    floor_ms = 1e3 * traffic / (copy_gbs * 1e9)
    rows = []
    for v in variants:
        ms = v.median_ms()
        rows.append({"variant": v.name, "compile_s": v.compile_s, "step_ms": ms,
                     "gbs": traffic / (ms * 1e-3) / 1e9, "x_floor": ms / floor_ms,
                     "peak_bytes": v.peak_bytes})
    result = {"workload": workload.name, "key": key, "params": workload.num_params,
              "leaves": workload.num_leaves, "traffic_bytes": traffic, "copy_gbs": copy_gbs,
              "floor_ms": floor_ms, "rows": rows}
    print_table(result)
    return result


def print_table(result: dict) -> None:
    print(f"floor {C.fmt_ms(result['floor_ms'])} ms ({result['traffic_bytes'] / 1e6:.1f} MB at "
          f"plain-copy {result['copy_gbs']:.1f} GB/s)")
    print("| variant | compile (s) | step (ms) | GB/s | x floor |")
    print("|---|---|---|---|---|")
    for r in result["rows"]:
        print(f"| {r['variant']} | {C.fmt_s(r['compile_s'])} | {C.fmt_ms(r['step_ms'])} | "
              f"{r['gbs']:.1f} | {r['x_floor']:.1f} |")
    sys.stdout.flush()


def main(argv=None) -> None:
    parser = C.workload_parser(__doc__, WORKLOADS, QUICK)
    parser.add_argument("--torch-threads", type=int, default=C.TORCH_THREADS,
                        help="torch intra-op threads on the CPU (default 1, see common.py)")
    args = parser.parse_args(argv)
    C.TORCH_THREADS = args.torch_threads
    keys = args.only or (QUICK if args.quick else [k for k in WORKLOADS if k != "tiny"])
    info = C.machine_info()
    print(f"machine: {info['cpu']}, {info['cores']} cores, load {info['load_avg']}; "
          f"jax {info['jax']}, optax {info['optax']}, torch {info['torch']} "
          f"({C.TORCH_THREADS} thread)")
    results = [run_workload(k, args.rounds, args.reps) for k in keys]
    info_end = C.machine_info()
    path = C.save_results("update_step", {"machine": info, "load_avg_end": info_end["load_avg"],
                                          "torch_threads": C.TORCH_THREADS, "results": results})
    print(f"\nload average at the end: {info_end['load_avg']}; results: {path}")


if __name__ == "__main__":
    main()
