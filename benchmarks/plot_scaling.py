"""Plot step time and compile time against the number of leaves (docs/figures/performance_scaling.png).

Run after ``compile_time.py``: ``.venv/bin/python benchmarks/plot_scaling.py``.
Reads ``benchmarks/results/compile_time.json``.
"""

from __future__ import annotations

import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "results", "compile_time.json")
TARGET = os.path.join(HERE, "..", "docs", "figures", "performance_scaling.png")

STYLE = {
    "optax": dict(color="tab:red", marker="o"),
    "optxform": dict(color="tab:blue", marker="s"),
    "optxform.packed": dict(color="tab:cyan", marker="^"),
    "optxform.flat": dict(color="tab:green", marker="D"),
    "torch.foreach": dict(color="tab:gray", marker="v", linestyle="--"),
    "torch.fused": dict(color="black", marker="x", linestyle="--"),
}


def main() -> None:
    with open(SOURCE) as f:
        payload = json.load(f)
    rows = payload["optimizer"]
    fig, (ax_step, ax_compile) = plt.subplots(1, 2, figsize=(10, 4), dpi=110)
    for variant, style in STYLE.items():
        mine = sorted((r for r in rows if r["variant"] == variant), key=lambda r: r["leaves"])
        if not mine:
            continue
        leaves = [r["leaves"] for r in mine]
        ax_step.plot(leaves, [r["step_ms"] for r in mine], label=variant, **style)
        if mine[0]["compile_s"] is not None:
            ax_compile.plot(leaves, [r["compile_s"] for r in mine], label=variant, **style)
    for ax, title, unit in ((ax_step, "Adam step (median)", "ms"),
                            (ax_compile, "compile (trace + lower + compile)", "s")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("leaves (1,000 float32 each)")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    ax_step.legend(fontsize=8)
    machine = payload["machine"]
    fig.suptitle(f"{machine['cpu']}, {machine['cores']} cores, load average "
                 f"{machine['load_avg'][0]:.1f} at start; jax {machine['jax']}, "
                 f"optax {machine['optax']}, torch {machine['torch']}", fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(TARGET), exist_ok=True)
    fig.savefig(TARGET)
    print(f"wrote {os.path.normpath(TARGET)}")


if __name__ == "__main__":
    main()
