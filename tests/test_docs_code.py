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

which the rendered page does not show and which this test runs before the block. A
block that is one process of a multi-process program (``jax.distributed``) is marked by
its setup, ``<!-- setup, 2 processes``: its setup and the block then run on their own, as
that many processes, each with its process index as ``sys.argv[1]``.

A comment right under a ``print(...)`` call (or under a loop that prints) is the output
the page promises (``# loss 0.05983, iterations 26``): when a block has such comments,
what its prints write must equal them, line for line. The blocks need the ``test`` extra
(torch, optax, orbax, matplotlib, scikit-learn).
"""

from __future__ import annotations

import ast
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))]

_CHUNK = re.compile(r"^<!-- setup(?:, (?P<processes>\d+) processes)?\n(?P<setup>.*?)^-->\n"
                    r"|^```python\n(?P<block>.*?)^```\s*$", re.S | re.M)
ENV = {"PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu", "MPLBACKEND": "Agg",
       "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}

# Runs in the child process: exec each chunk in one namespace, report each block's fate.
_RUNNER = r"""
import contextlib, io, json, sys, traceback
chunks = json.load(open(sys.argv[1]))
namespace = {"__name__": "__main__"}
failures = []
for chunk in chunks:
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(chunk["code"], chunk["where"], "exec"), namespace)
    except BaseException:
        failures.append(chunk["where"] + "\n" + traceback.format_exc(limit=-4))
        continue
    printed = out.getvalue().splitlines()
    if chunk["expected"] and printed != chunk["expected"]:
        failures.append(f"{chunk['where']} printed {printed}, the page says {chunk['expected']}")
print(json.dumps(failures), file=open(sys.argv[2], "w"))
"""

# One process of a multi-process block: run it, leave jax.distributed, and exit at once
# (gloo processes can hang in the interpreter's exit; see docs/distributed.md).
_PROCESS = r"""
import os, sys, traceback
chunk = __import__("json").load(open("process.json"))
try:
    exec(compile(chunk["code"], chunk["where"], "exec"), {"__name__": "__main__"})
    import jax
    jax.distributed.shutdown()
    code = 0
except BaseException:
    traceback.print_exc()
    code = 1
sys.stdout.flush(); sys.stderr.flush()
os._exit(code)
"""


def expected_output(code: str) -> list[str]:
    """The comment lines right under the block's ``print(...)`` calls."""
    lines = code.splitlines()
    expected = {}   # by the line that ends the printing statement (a loop and its print share it)
    for node in ast.walk(ast.parse(code)):
        if (isinstance(node, (ast.Expr, ast.For)) and node.end_lineno < len(lines)
                and any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                        and n.func.id == "print" for n in ast.walk(node))):
            after = lines[node.end_lineno:]
            comments = after[:next((i for i, ln in enumerate(after) if not ln.startswith("# ")),
                                   len(after))]
            expected[node.end_lineno] = [ln[2:] for ln in comments]
    return [text for _, texts in sorted(expected.items()) for text in texts]


def code_chunks(page: str) -> list[dict]:
    """The page's hidden setups and python blocks, in order, each with ``page:line``."""
    text = (ROOT / page).read_text()
    chunks = []
    processes = 1
    for match in _CHUNK.finditer(text):
        kind = "setup" if match.group("setup") is not None else "block"
        line = text.count("\n", 0, match.start()) + 2
        code = match.group(kind)
        chunks.append({"kind": kind, "where": f"{page}:{line} ({kind})", "code": code,
                       "expected": expected_output(code) if kind == "block" else [],
                       "processes": processes})
        processes = int(match.group("processes") or 1) if kind == "setup" else 1
        if processes > 1:
            chunks[-1]["processes"] = processes
    return chunks


def run_processes(setup: dict, block: dict, workdir: pathlib.Path) -> list[str]:
    """Run setup + block as ``block["processes"]`` cooperating processes; the failures."""
    chunk = {"where": block["where"], "code": setup["code"] + block["code"]}
    (workdir / "process.json").write_text(json.dumps(chunk))
    (workdir / "process.py").write_text(_PROCESS)
    procs = [subprocess.Popen([sys.executable, "process.py", str(i)], cwd=workdir,
                              env=dict(os.environ, **ENV), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
             for i in range(block["processes"])]
    failures = []
    try:
        for i, proc in enumerate(procs):
            out, _ = proc.communicate(timeout=180)
            if proc.returncode != 0:
                failures.append(f"{block['where']}, process {i} (exit {proc.returncode}):\n"
                                f"{out[-3000:]}")
    except subprocess.TimeoutExpired:
        failures.append(f"{block['where']}: the processes did not finish in 180 s")
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    return failures


def run_page(page: str, workdir: pathlib.Path) -> list[str]:
    """Run the page's chunks in a fresh process in ``workdir``; the failures, as text."""
    chunks = code_chunks(page)
    alone = [i for i, c in enumerate(chunks) if c["processes"] > 1 and c["kind"] == "block"]
    failures = []
    for i in alone:   # the setup right above a multi-process block, then the block
        failures += run_processes(chunks[i - 1], chunks[i], workdir)
    chunks = [c for i, c in enumerate(chunks) if i not in alone and i + 1 not in alone]
    (workdir / "chunks.json").write_text(json.dumps(chunks))
    (workdir / "runner.py").write_text(_RUNNER)
    proc = subprocess.run([sys.executable, "runner.py", "chunks.json", "failures.json"],
                          cwd=workdir, env=dict(os.environ, **ENV), capture_output=True,
                          text=True, timeout=600)
    if proc.returncode != 0 or not (workdir / "failures.json").exists():
        return failures + [f"the runner itself failed (exit {proc.returncode}):\n"
                           f"{proc.stderr[-3000:]}"]
    return failures + json.loads((workdir / "failures.json").read_text())


def test_setup_comments_are_recognised():
    chunks = code_chunks("docs/state.md")
    assert [c for c in chunks if c["kind"] == "block"], "docs/state.md has python blocks"
    assert all(c["code"].strip() for c in chunks)
    text = "<!-- setup\nx = 1\n-->\n```python\nprint(x)\n```\n"
    found = [(m.group("setup"), m.group("block")) for m in _CHUNK.finditer(text)]
    assert found == [("x = 1\n", None), (None, "print(x)\n")]
    multi = [c for c in code_chunks("docs/distributed.md") if c["processes"] > 1]
    assert [c["kind"] for c in multi] == ["setup", "block"]
    assert "jax.distributed.initialize" in multi[1]["code"]


def test_expected_output_comes_from_comments_under_prints():
    code = ('x = 1\nprint(f"x {x}",\n      "y")\n# x 1 y\nprint(2)\nprint(3)  # not this\n# 3\n'
            'for i in range(2):\n    print(i)\n# 0\n# 1\ny = 2\n# a remark\n')
    assert expected_output(code) == ["x 1 y", "3", "0", "1"]
    lbfgs = [c for c in code_chunks("docs/lbfgs.md") if c["expected"]]
    assert lbfgs and lbfgs[0]["expected"][0].startswith("loss 0.05983, iterations 26")


@pytest.mark.parametrize("page", [p for p in PAGES if "```python" in (ROOT / p).read_text()])
def test_page_code_blocks_run_as_pasted(page, tmp_path):
    failures = run_page(page, tmp_path)
    assert not failures, f"{len(failures)} block(s) of {page} failed:\n\n" + "\n\n".join(failures)
