"""Regenerate docs/figures/demo/ (figures and results.md) with ``optxform demo``.

Run from the repository root (needs the ``viz`` extra):

    python docs/figures/make_demo.py

results.md is the demo's own output plus one line that says when, on what machine and
under what load its one non-deterministic column (the chooser's ``time (s)``) was
measured. tests/test_docs_numbers.py reruns the demo and compares everything else.
"""

from __future__ import annotations

import datetime
import os
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OUT = HERE / "demo"
sys.path.insert(0, str(HERE))
from choosing_numbers import machine  # noqa: E402

STAMP = "Timings (the chooser's `time (s)` column) measured {when} on {machine}."


def main() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    load_before = machine()
    subprocess.run([sys.executable, "-m", "optxform", "demo", "--no-progress", "--out",
                    str(OUT)], check=True, env=env, cwd=ROOT)
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    results = OUT / "results.md"
    title, _, rest = results.read_text().partition("\n\n")
    results.write_text(f"{title}\n\n{STAMP.format(when=when, machine=load_before)}\n\n{rest}")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
