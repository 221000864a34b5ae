"""GPU: optxform (tree, packed(tx), packed params) vs optax vs torch CUDA fused/foreach Adam.

Run on a machine with an NVIDIA GPU, jax[cuda] and a CUDA build of torch::

    .venv/bin/pip install -U "jax[cuda12]"     # or cuda13, matching the driver
    .venv/bin/python benchmarks/gpu.py          # about 2-3 minutes

Without a GPU it exits at once with a message saying so (``--allow-cpu`` runs the same
code on the CPU with small sizes, to check the script itself). Writes
``benchmarks/results/gpu.json`` and prints a markdown table per workload, with the device
copy bandwidth measured in the same run (targets: >= 85% of it on large trees, faster than
torch's fused Adam on many-leaf trees).

Workloads: GPT-2 small (124M params, 148 leaves, float32 and bfloat16), 10,000 leaves of
1,000 floats, 1,000 leaves of 1,000 floats, and the clip+adamw+warmup-cosine chain on
GPT-2 small.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

os.environ.setdefault("JAX_PLATFORMS", "cuda,cpu")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def _gpu_available() -> tuple[bool, str]:
    try:
        import jax
        gpus = [d for d in jax.devices() if d.platform == "gpu"]
    except RuntimeError as error:  # no CUDA backend in this jaxlib
        return False, f"JAX found no GPU ({error})"
    if not gpus:
        return False, "JAX found no GPU (install jax[cuda12] on a machine with an NVIDIA GPU)"
    try:
        import torch
    except ImportError:
        return False, "torch is not installed"
    if not torch.cuda.is_available():
        return False, "torch has no CUDA device (install a CUDA build of torch)"
    return True, f"{gpus[0].device_kind}; torch sees {torch.cuda.get_device_name(0)}"


WORKLOADS = {
    "gpt2_small": ("adam", "float32"),
    "gpt2_small_bf16": ("adam", "bfloat16"),
    "gpt2_small_chain": ("chain", "float32"),
    "leaves_10k": ("adam", "float32"),
    "leaves_1k": ("adam", "float32"),
}


def make_workload(key: str, small: bool):
    import common as C  # noqa: N812
    recipe, dtype = WORKLOADS[key]
    if key.startswith("gpt2"):
        d, layers, vocab, ctx = (64, 2, 1000, 128) if small else (768, 12, 50257, 1024)
        name = f"{recipe}, GPT-2 small shapes ({dtype})" + (" [small]" if small else "")
        return C.Workload(name, C.gpt_shapes(d, layers, vocab, ctx, dtype), recipe)
    n = 10_000 if key == "leaves_10k" else 1_000
    return C.leaves_workload(n // 10 if small else n, 1_000, recipe)


def run(key: str, small: bool, device: str, rounds: int, reps: int) -> dict:
    import common as C  # noqa: N812
    workload = make_workload(key, small)
    print(f"\n### {workload.name} ({workload.num_params:,} params, {workload.num_leaves:,} "
          f"leaves)", flush=True)
    variants = C.jax_variants(workload)
    torch_which = ("torch.foreach", "torch.fused")
    variants += C.torch_variants(workload, torch_which, device=device)
    traffic = workload.traffic_bytes()
    probe = C.CopyProbe(traffic // 2)
    probes = C.interleave(variants, rounds, reps, extra=lambda: probe(reps))
    copy_gbs = statistics.median(probes)
    floor_ms = 1e3 * traffic / (copy_gbs * 1e9)
    rows = [{"variant": v.name, "compile_s": v.compile_s, "step_ms": v.median_ms(),
             "gbs": traffic / (v.median_ms() * 1e-3) / 1e9,
             "of_copy_bw": floor_ms / v.median_ms()} for v in variants]
    print(f"floor {C.fmt_ms(floor_ms)} ms ({traffic / 1e6:.0f} MB at device copy "
          f"{copy_gbs:.0f} GB/s)")
    print("| variant | compile (s) | step (ms) | GB/s | % of copy bandwidth |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {C.fmt_s(r['compile_s'])} | {C.fmt_ms(r['step_ms'])} | "
              f"{r['gbs']:.0f} | {100 * r['of_copy_bw']:.0f}% |", flush=True)
    return {"workload": workload.name, "key": key, "params": workload.num_params,
            "leaves": workload.num_leaves, "traffic_bytes": traffic, "copy_gbs": copy_gbs,
            "floor_ms": floor_ms, "rows": rows}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--allow-cpu", action="store_true",
                        help="run on the CPU with small sizes (checks the script only)")
    parser.add_argument("--only", nargs="*", choices=sorted(WORKLOADS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args(argv)
    if args.allow_cpu:
        os.environ["JAX_PLATFORMS"] = "cpu"
        ok, detail, device = True, "CPU (--allow-cpu: small sizes, not a GPU measurement)", "cpu"
    else:
        ok, detail = _gpu_available()
        device = "cuda"
    if not ok:
        sys.exit(f"benchmarks/gpu.py: no usable NVIDIA GPU: {detail}. Nothing was measured; "
                 "run it on a GPU machine (see the module docstring), or pass --allow-cpu to "
                 "check the script on the CPU.")
    import common as C  # noqa: N812
    info = C.machine_info()
    info["device"] = detail
    print(f"device: {detail}; jax {info['jax']}, optax {info['optax']}, torch {info['torch']}")
    keys = args.only or list(WORKLOADS)
    results = [run(k, args.allow_cpu, device, args.rounds, args.reps) for k in keys]
    name = "gpu_cpu_check" if args.allow_cpu else "gpu"
    print(f"\nresults: {C.save_results(name, {'machine': info, 'results': results})}")


if __name__ == "__main__":
    main()
