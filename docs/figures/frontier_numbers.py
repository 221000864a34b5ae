"""Race the optimizers beyond torch.optim on the chooser's problems; write the table and figure.

Run from the repository root (needs the ``viz`` and ``examples`` extras; a few minutes on a
2-core CPU):

    python docs/figures/frontier_numbers.py          # rewrites frontier_numbers.md and frontier.png
    python docs/figures/frontier_numbers.py --print  # prints the table only

Each optimizer runs every learning rate of the grid with its other arguments at their
defaults (for Prodigy, D-Adaptation and schedule-free SGD the learning rate multiplies an
estimated step size, so their natural setting is 1). The table gives each one's best rate
and final loss per problem. Everything is deterministic (float32 on the CPU, fixed seeds):
tests/test_docs_numbers.py recomputes the table and compares it with the committed file,
and docs/optimizers.md quotes it.
"""

from __future__ import annotations

import math
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
import optxform  # noqa: E402

OUT = pathlib.Path(__file__).with_name("frontier_numbers.md")
FIGURE = pathlib.Path(__file__).with_name("frontier.png")
GRID = (1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0)
OPTIMIZERS = ("adamw", "schedule_free_adamw", "schedule_free_sgd", "prodigy", "dadapt_adam",
              "dadapt_sgd", "adopt", "ademamix", "mars", "adan", "adabelief", "cautious_adamw")
PROBLEMS = (  # (problem, steps, batch size): the chooser's problems in docs/choosing.md
    ("mlp_spirals", 300, None),
    ("mlp_digits", 300, 64),
    ("logreg_breast_cancer", 200, None),
)


def num(value: float, digits: int = 2) -> str:
    """``digits`` significant digits, short exponents (``7.6e-6``), ``diverged`` for nan/inf."""
    if not math.isfinite(value):
        return "diverged"
    text = f"{value:.{digits}g}"
    return re.sub(r"e([+-])0*(\d)", lambda m: "e" + ("-" if m.group(1) == "-" else "") + m.group(2),
                  text)


def race(problem: str, steps: int, batch_size: int | None):
    loss_fn, params, data = optxform.get_problem(problem).load()
    return optxform.choose(loss_fn, params, data, OPTIMIZERS, GRID, steps, batch_size=batch_size)


def label(problem: str, steps: int, batch_size: int | None) -> str:
    return f"{problem}, {steps} steps" + (f", batch {batch_size}" if batch_size else "")


def best_per_problem() -> dict[str, dict[str, tuple[float, float]]]:
    """``{problem label: {optimizer: (best learning rate, its final loss)}}``."""
    out = {}
    for key in PROBLEMS:
        result = race(*key)
        out[label(*key)] = {b.optimizer: (b.learning_rate, b.final_loss)
                            for b in result.best_per_optimizer()}
    return out


def render(best: dict[str, dict[str, tuple[float, float]]]) -> str:
    problems = list(best)
    header = ["optimizer"] + [f"{p.split(',')[0]}: best lr, final loss" for p in problems]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in OPTIMIZERS:
        cells = []
        for p in problems:
            lr, loss = best[p].get(name, (math.nan, math.nan))
            cells.append("diverged at every rate" if not math.isfinite(loss)
                         else f"{lr:g}, {num(loss)}")
        lines.append("| " + " | ".join([name] + cells) + " |")
    runs = "; ".join(problems)
    return (f"Learning rates {', '.join(f'{g:g}' for g in GRID)}; problems: {runs}.\n\n"
            + "\n".join(lines) + "\n")


def plot(best: dict[str, dict[str, tuple[float, float]]], path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    problems = list(best)
    fig, axes = plt.subplots(1, len(problems), figsize=(4.2 * len(problems), 4.4), sharey=True)
    for ax, p in zip(axes, problems):
        losses = [best[p].get(n, (math.nan, math.nan))[1] for n in OPTIMIZERS]
        finite = [v for v in losses if math.isfinite(v)]
        floor = min(finite) if finite else 1.0
        ys = range(len(OPTIMIZERS))
        ax.barh(list(ys), [v if math.isfinite(v) else 0.0 for v in losses],
                color=["#888888" if n == "adamw" else "#3f51b5" for n in OPTIMIZERS])
        ax.set_xscale("log")
        ax.set_xlim(floor / 3, max(finite) * 3 if finite else 10.0)
        ax.set_title(p.split(",")[0], fontsize=10)
        ax.set_xlabel("final loss at the best learning rate")
        ax.invert_yaxis()
    axes[0].set_yticks(list(range(len(OPTIMIZERS))), OPTIMIZERS)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str]) -> None:
    best = best_per_problem()
    text = render(best)
    if "--print" in argv:
        print(text)
        return
    OUT.write_text("# Optimizers beyond torch.optim on the chooser's problems\n\n"
                   "Written by `python docs/figures/frontier_numbers.py` (from the repository "
                   "root); docs/optimizers.md quotes the table.\n\n" + text)
    plot(best, FIGURE)
    print(f"wrote {OUT} and {FIGURE}")


if __name__ == "__main__":
    main(sys.argv[1:])
