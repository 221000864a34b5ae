"""Optimizer step time: optxform (tree, packed(tx), packed params) vs optax vs torch.optim.

Run: ``.venv/bin/python benchmarks/update_step.py [--quick] [--only NAME ...]``
(CPU; ~5-10 minutes for the full set, most of it optax compiling the many-leaf trees).
Prints one markdown table per workload and writes ``benchmarks/results/update_step.json``
(``update_step_<names>.json`` with ``--only``, ``..._one_process.json`` with
``--one-process``).

Columns: compile = trace + lower + compile of the jitted, donated step (seconds); step =
median milliseconds per step over interleaved rounds; ratios against optax; GB/s = the step's compulsory traffic
over its time; x floor = step / floor, where floor = traffic / plain-copy bandwidth measured
in the same rounds at the same size. Every variant runs in processes of its own
(``--copies``, default 2; ``--one-process``: all in this one; ``--aa``: a second optax
variant, an A/A check of the method). See benchmarks/common.py for the method.
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
#: Workloads timed in one process per variant whatever ``--copies`` says: their tree
#: variants take minutes to compile.
ONE_COPY = ("small_10k",)


def variant_names(workload: C.Workload, aa: bool = False) -> list[str]:
    names = list(C.JAX_VARIANTS)
    if workload.recipe == "chain":
        names.insert(3, "optxform.packed(materialize)")
    return names + (["optax"] if aa else []) + list(C.TORCH_VARIANTS)


def build_variant(key: str, name: str) -> C.Variant:
    """One variant of one workload (in the worker process that times it)."""
    return C.variant_of(WORKLOADS[key](), name)


def run_workload(key: str, rounds: int, reps: int, one_process: bool = False,
                 aa: bool = False, copies: int = 2) -> dict:
    workload = WORKLOADS[key]()
    print(f"\n### {workload.name} ({workload.num_params:,} params, {workload.num_leaves:,} "
          f"leaves)", flush=True)
    names = variant_names(workload, aa)
    copies = 0 if one_process else 1 if key in ONE_COPY else copies
    variants = C.built("update_step", key, names, copies, {"TORCH_THREADS": C.TORCH_THREADS})
    traffic = workload.traffic_bytes()
    probe = C.CopyProbe(traffic // 2)
    probes = C.interleave(variants, rounds, reps, extra=lambda: probe(reps))
    copy_gbs = statistics.median(probes)
    floor_ms = 1e3 * traffic / (copy_gbs * 1e9)
    rows = []
    base = variants[0]  # optax
    for v in variants:
        ms = v.median_ms()
        rows.append({"variant": v.name, "compile_s": v.compile_s, "step_ms": ms,
                     "compile_ratio": None if v.compile_s is None
                     else v.compile_s / base.compile_s,
                     "step_ratio": ms / base.median_ms(),
                     "gbs": traffic / (ms * 1e-3) / 1e9, "x_floor": ms / floor_ms,
                     "peak_bytes": v.peak_bytes})
        v.close()
    result = {"workload": workload.name, "key": key, "params": workload.num_params,
              "leaves": workload.num_leaves, "traffic_bytes": traffic, "copy_gbs": copy_gbs,
              "floor_ms": floor_ms, "processes_per_variant": copies, "rows": rows}
    print_table(result)
    return result


def print_table(result: dict) -> None:
    print(f"floor {C.fmt_ms(result['floor_ms'])} ms ({result['traffic_bytes'] / 1e6:.1f} MB at "
          f"plain-copy {result['copy_gbs']:.1f} GB/s)")
    print("| variant | compile (s) | step (ms) | compile / optax | step / optax | GB/s | x floor |")
    print("|---|---|---|---|---|---|---|")
    for r in result["rows"]:
        ratio = "—" if r["compile_ratio"] is None else f"{r['compile_ratio']:.2f}"
        print(f"| {r['variant']} | {C.fmt_s(r['compile_s'])} | {C.fmt_ms(r['step_ms'])} | "
              f"{ratio} | {r['step_ratio']:.2f} | {r['gbs']:.1f} | {r['x_floor']:.1f} |")
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
    results = [run_workload(k, args.rounds, args.reps, args.one_process, args.aa, args.copies)
               for k in keys]
    info_end = C.machine_info()
    suffix = ("" if not args.only else "_" + "_".join(args.only)) + (
        "_one_process" if args.one_process else "")
    path = C.save_results("update_step" + suffix, {"machine": info, "load_avg_end": info_end["load_avg"],
                                          "torch_threads": C.TORCH_THREADS,
                                          "one_process": args.one_process,
                                          "copies": args.copies, "results": results})
    print(f"\nload average at the end: {info_end['load_avg']}; results: {path}")


if __name__ == "__main__":
    main()
