"""Every python code block in README.md and docs/*.md runs as pasted.

A page's blocks run in order in one fresh Python process (later blocks may use names that
earlier ones defined, as a reader who pastes them in turn would), in a temporary folder,
with this checkout on the path and 8 simulated CPU devices (for the multi-device page).
Where a block is a fragment of a longer program, the page carries the missing lines as a
hidden setup: an HTML comment right above the block,

    <!-- setup
    import jax.numpy as jnp
    grads = ...
    -->

which the rendered page does not show and which this test runs before the block. The
blocks need the ``test`` extra (torch, optax, orbax, matplotlib, scikit-learn).
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))]

_CHUNK = re.compile(
    r"^<!-- setup\n(?P<setup>.*?)^-->\n|^```python\n(?P<block>.*?)^```\s*$", re.S | re.M)

# Runs in the child process: exec each chunk in one namespace, report each block's fate.
_RUNNER = r"""
import json, sys, traceback
chunks = json.load(open(sys.argv[1]))
namespace = {"__name__": "__main__"}
failures = []
for chunk in chunks:
    try:
        exec(compile(chunk["code"], chunk["where"], "exec"), namespace)
    except BaseException:
        failures.append(chunk["where"] + "\n" + traceback.format_exc(limit=-4))
print(json.dumps(failures), file=open(sys.argv[2], "w"))
"""


def code_chunks(page: str) -> list[dict]:
    """The page's hidden setups and python blocks, in order, each with ``page:line``."""
    text = (ROOT / page).read_text()
    chunks = []
    for match in _CHUNK.finditer(text):
        kind = "setup" if match.group("setup") is not None else "block"
        line = text.count("\n", 0, match.start()) + 2
        chunks.append({"kind": kind, "where": f"{page}:{line} ({kind})",
                       "code": match.group(kind)})
    return chunks


def run_page(page: str, workdir: pathlib.Path) -> list[str]:
    """Run the page's chunks in a fresh process in ``workdir``; the failures, as text."""
    (workdir / "chunks.json").write_text(json.dumps(code_chunks(page)))
    (workdir / "runner.py").write_text(_RUNNER)
    env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu",
               XLA_FLAGS="--xla_force_host_platform_device_count=8", MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, "runner.py", "chunks.json", "failures.json"],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 or not (workdir / "failures.json").exists():
        return [f"the runner itself failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}"]
    return json.loads((workdir / "failures.json").read_text())


def test_setup_comments_are_recognised():
    chunks = code_chunks("docs/state.md")
    assert [c for c in chunks if c["kind"] == "block"], "docs/state.md has python blocks"
    assert all(c["code"].strip() for c in chunks)
    text = "<!-- setup\nx = 1\n-->\n```python\nprint(x)\n```\n"
    found = [(m.group("setup"), m.group("block")) for m in _CHUNK.finditer(text)]
    assert found == [("x = 1\n", None), (None, "print(x)\n")]


@pytest.mark.parametrize("page", [p for p in PAGES if "```python" in (ROOT / p).read_text()])
def test_page_code_blocks_run_as_pasted(page, tmp_path):
    failures = run_page(page, tmp_path)
    assert not failures, f"{len(failures)} block(s) of {page} failed:\n\n" + "\n\n".join(failures)
