"""Print the "Agreement with torch" table of docs/lbfgs.md.

Run from the repository root (needs torch, from the ``test`` extra):

    python docs/figures/lbfgs_agreement.py

For each case of tests/test_lbfgs.py, optxform's L-BFGS and torch.optim.LBFGS make 5
``step(closure)`` calls from the same start, torch's closure returning JAX's value and
gradient, so only the optimizers' arithmetic differs; the table gives the largest
absolute difference of the params over the 5 calls, in float64 and in float32.
tests/test_docs_numbers.py reruns this script and compares its table with the page's.
"""

from __future__ import annotations

import os
import pathlib
import re
import sys

# torch's float32 and float64 results depend on which CPU kernels it dispatches to; pin its
# portable ones (as the test suite does) so the table is the same on every machine.
os.environ.setdefault("ATEN_CPU_CAPABILITY", "default")

import jax
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
from tests.test_lbfgs import PROBLEMS, optxform_run, torch_run  # noqa: E402

STEPS = 5
SHORT = {"max_iter": 4, "history_size": 3}
ROWS = [  # (label, problem, options, line searches whose largest difference is shown)
    ("Rosenbrock 2-D, defaults, fixed step", "rosenbrock", {}, [None]),
    ("Rosenbrock 2-D, defaults, strong Wolfe", "rosenbrock", {}, ["strong_wolfe"]),
    ("Rosenbrock 2-D, `max_iter=4, history_size=3, lr=0.5`, either", "rosenbrock",
     dict(SHORT, learning_rate=0.5), [None, "strong_wolfe"]),
    ("logistic regression (40 x 5), defaults, either", "logistic", {}, [None, "strong_wolfe"]),
    ("logistic regression, `max_iter=4, history_size=3`, fixed step", "logistic", SHORT, [None]),
    ("logistic regression, `max_iter=4, history_size=3`, strong Wolfe", "logistic", SHORT,
     ["strong_wolfe"]),
]


def short(value: float) -> str:
    return re.sub(r"e([+-])0*(\d)", lambda m: "e" + m.group(1).replace("+", "") + m.group(2),
                  f"{value:.1e}")


def difference(problem: str, options: dict, searches, dtype) -> float:
    fn, make = PROBLEMS[problem]
    worst = 0.0
    for search in searches:
        kwargs = dict(options, line_search_fn=search)
        ours, _ = optxform_run(fn, make(dtype), STEPS, **kwargs)
        theirs, _ = torch_run(fn, make(dtype), STEPS, **kwargs)
        worst = max(worst, float(np.max(np.abs(ours.astype(np.float64) - theirs))))
    return worst


def main() -> None:
    # float32 as the tests run it (x64 off), then float64 with x64 on.
    f32 = [difference(p, o, s, np.float32) for _, p, o, s in ROWS]
    jax.config.update("jax_enable_x64", True)
    f64 = [difference(p, o, s, np.float64) for _, p, o, s in ROWS]
    print("| problem, options | float64 | float32 |")
    print("|---|---|---|")
    for (label, *_), a, b in zip(ROWS, f64, f32):
        note = " (chaotic, see below)" if label.endswith("fixed step") and "Rosenbrock" in label else ""
        print(f"| {label} | {short(a)} | {short(b)}{note} |")


if __name__ == "__main__":
    main()
