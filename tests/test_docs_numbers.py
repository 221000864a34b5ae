"""The numbers the docs publish are the numbers the current code produces.

- docs/figures/demo/results.md is ``optxform demo``'s output: rerun, it must match, all
  but the chooser's timing column (timings carry their date, machine and load instead).
- docs/figures/choosing_numbers.md holds every table and number that docs/choosing.md
  quotes, written by docs/figures/choosing_numbers.py: each section is recomputed here
  and compared, and choosing.md must quote each table and each fact word for word.
- docs/figures/inline_numbers.md holds the numbers in the prose of README.md,
  docs/optimizers.md, docs/schedules.md, docs/lbfgs.md and docs/distributed.md, written by
  docs/figures/inline_numbers.py, checked the same way.

Needs the ``test`` extra (matplotlib for the demo, scikit-learn for the digits and
breast_cancer problems). The chooser section is the slow one (about a minute of CPU).
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIGURES = ROOT / "docs" / "figures"
NUMBERS = FIGURES / "choosing_numbers.md"
INLINE_NUMBERS = FIGURES / "inline_numbers.md"


def script_env() -> dict[str, str]:
    """The environment the scripts run in: this checkout, one CPU device and XLA's default
    compiler settings, as a user has.

    The suite's conftest simulates 8 host devices, which changes how XLA:CPU splits its
    work and so the last bits of some float32 sums; the chaotic chooser runs would show it.
    """
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    flags = re.sub(r"--xla_(force_host_platform_device_count|backend_optimization_level)=\d+",
                   "", env.get("XLA_FLAGS", ""))
    env["XLA_FLAGS"] = flags.strip()
    return env


def committed_sections(path: pathlib.Path = NUMBERS) -> dict[str, str]:
    """``{section name: its text}`` of a committed numbers file (choosing_numbers.md)."""
    parts = re.split(r"^## ", path.read_text(), flags=re.M)[1:]
    return {p.split("\n", 1)[0].strip(): "## " + p.rstrip("\n") for p in parts}


def _untimed(results_md: str) -> str:
    """results.md without the timing stamp line and the chooser's ``time (s)`` column."""
    text = re.sub(r"^Timings \(.*\n\n", "", results_md, flags=re.M)
    text = re.sub(r"\s+time \(s\)$", "", text, flags=re.M)
    return re.sub(r"^(\d+\s+.*\s(?:yes|no))\s+[\d.]+$", r"\1", text, flags=re.M)


def test_untimed_drops_only_the_timings():
    md = ("# t\n\nTimings (x) measured now.\n\n"
          "rank  optimizer  lr  final loss  best loss  diverged  time (s)\n"
          "1     adam       1   0.01        0.01       no        0.186\n")
    assert _untimed(md) == ("# t\n\nrank  optimizer  lr  final loss  best loss  diverged\n"
                            "1     adam       1   0.01        0.01       no\n")


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def assert_same_text_and_numbers(fresh: str, committed: str, message: str,
                                 rtol: float = 2e-3) -> None:
    """The same text, and the same numbers to ``rtol`` (printed at 4 significant digits, a
    float32 run may end one unit in the last printed place away on another CPU: XLA's
    kernels for AVX2 and AVX-512 round a few sums differently)."""
    def split(text):
        text = re.sub(r"[ \t]+", " ", text)  # a column's width follows its widest number
        return _NUMBER.split(text), [float(x) for x in _NUMBER.findall(text)]

    (words_a, nums_a), (words_b, nums_b) = split(fresh), split(committed)
    assert words_a == words_b and len(nums_a) == len(nums_b), message
    for a, b in zip(nums_a, nums_b):
        assert abs(a - b) <= rtol * max(abs(a), abs(b)) + 1e-12, f"{message}: {a} vs {b}"


def test_same_text_and_numbers_allows_only_the_last_printed_digit():
    assert_same_text_and_numbers("loss 0.0005401 at (1, 2)", "loss 0.00054 at (1, 2)", "x")
    with pytest.raises(AssertionError):
        assert_same_text_and_numbers("loss 0.0006 at (1, 2)", "loss 0.00054 at (1, 2)", "x")
    with pytest.raises(AssertionError):
        assert_same_text_and_numbers("loss 0.00054 at (1, 2) yes", "loss 0.00054 at (1, 2) no",
                                     "x")


def test_demo_results_match_a_fresh_run(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "optxform", "demo", "--no-progress", "--out",
                           str(tmp_path)], env=script_env(), capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    committed = (FIGURES / "demo" / "results.md").read_text()
    assert committed.count("Timings (") == 1, "results.md says when its timings were measured"
    assert_same_text_and_numbers(
        _untimed((tmp_path / "results.md").read_text()), _untimed(committed),
        "docs/figures/demo/results.md differs from a fresh `optxform demo`: "
        "rerun python docs/figures/make_demo.py")


@pytest.mark.parametrize("section", ["rosenbrock", "ill_conditioned", "himmelblau", "rastrigin",
                                     "saddles", "chooser", "lr_range"])
def test_choosing_numbers_match_the_code(section):
    assert_section_is_fresh("choosing_numbers", section, "docs/choosing.md")


def assert_section_is_fresh(script: str, section: str, page: str, rtol: float = 2e-3) -> None:
    """``docs/figures/<script>.py section`` prints the committed section of its .md again."""
    proc = subprocess.run([sys.executable, str(FIGURES / f"{script}.py"), section],
                          env=script_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    fresh = proc.stdout.strip("\n")
    assert_same_text_and_numbers(
        fresh, committed_sections(FIGURES / f"{script}.md")[section],
        f"section {section} of docs/figures/{script}.md is stale: rerun "
        f"python docs/figures/{script}.py and update {page}", rtol)


def _facts(text: str) -> list[str]:
    return [" ".join(fact.split()) for fact in re.findall(r"^- (.*)$", text, flags=re.M)]


# section -> (the page that quotes it, how far a fresh number may be from the committed one)
INLINE_SECTIONS = {
    "readme": ("README.md", 1e-2),  # a test accuracy: one digit more or less on another CPU
    "optimizers": ("docs/optimizers.md", 2e-3),
    # distances between two float32 trajectories: the last bits of a few sums (which differ
    # between XLA's kernels for AVX2 and AVX-512) move them by more than a printed digit
    "adamw": ("docs/optimizers.md", 0.5),
    "muon": ("docs/optimizers.md", 0.5),  # bfloat16 rounding flips along a trajectory
    "schedules": ("docs/schedules.md", 2e-3),
    "lbfgs": ("docs/lbfgs.md", 0.5),  # float32 runs, one of them chaotic
    "distributed": ("docs/distributed.md", 0.5),  # float32 cross-device sums against one
}


@pytest.mark.parametrize("section", sorted(INLINE_SECTIONS))
def test_inline_numbers_match_the_code(section):
    page, rtol = INLINE_SECTIONS[section]
    assert_section_is_fresh("inline_numbers", section, page, rtol)


def test_pages_quote_every_inline_number():
    sections = committed_sections(INLINE_NUMBERS)
    assert set(sections) == set(INLINE_SECTIONS)
    missing = []
    for name, text in sections.items():
        page = INLINE_SECTIONS[name][0]
        assert f"Quoted in {page}." in text, name
        flat = " ".join((ROOT / page).read_text().split())
        assert _facts(text), name
        missing += [f"{page}: {fact}" for fact in _facts(text) if fact not in flat]
    assert not missing, "not quoted word for word:\n" + "\n".join(missing)


def test_choosing_md_quotes_every_table_and_fact():
    doc = (ROOT / "docs" / "choosing.md").read_text()
    flat = " ".join(doc.split())
    sections = committed_sections()
    assert {"rosenbrock", "saddles", "chooser", "timings"} <= set(sections)
    missing = []
    for text in sections.values():
        for block in re.findall(r"(?:^\|.*\|\n?)+", text, flags=re.M):
            if block.strip() not in doc:
                missing.append(block.strip())
        for fact in re.findall(r"^- (.*)$", text, flags=re.M):
            if " ".join(fact.split()) not in flat:
                missing.append(fact)
    assert not missing, "choosing.md does not quote:\n" + "\n\n".join(missing)
    assert "Measured" in sections["timings"] and "load average" in sections["timings"]


def test_distributed_memory_table_is_the_scripts_output():
    # The script at the end of docs/distributed.md prints the table's rows; its comments
    # hold what it prints (tests/test_docs_code.py runs it and compares), and the table
    # at the top of the page must be exactly those rows.
    from tests.test_docs_code import code_chunks

    page = (ROOT / "docs" / "distributed.md").read_text()
    script = [c for c in code_chunks("docs/distributed.md")
              if c["kind"] == "block" and "bytes_per_device" in c["code"]]
    assert len(script) == 1
    rows = script[0]["expected"]
    assert len(rows) == 7 and all(r.startswith("| ") for r in rows)
    header = "| layout | params / device | optimizer state / device |\n|---|---|---|\n"
    assert header + "\n".join(rows) + "\n\n" in page


LBFGS_RESULTS = ROOT / "benchmarks" / "results" / "lbfgs.json"

# Recomputes optxform's rows of benchmarks/results/lbfgs.json (the solves, not the timings).
_LBFGS_RERUN = r"""
import importlib.util, json, sys
import jax, jax.numpy as jnp
spec = importlib.util.spec_from_file_location("bench_lbfgs", sys.argv[1])
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)
rows = []
for strict in (False, True):
    for name, fn, x0, f_star in bench.problems():
        x, iters, evals, _ = bench.run_optxform(fn, x0, strict)
        x = jnp.asarray(x)
        rows.append({"strict": strict, "problem": name, "iterations": iters, "evals": evals,
                     "max_abs_grad": float(jnp.max(jnp.abs(jax.grad(fn)(x)))),
                     "final_value": float(fn(x))})
print(json.dumps(rows))
"""


def _lbfgs_row(r: dict) -> str:
    """A row of the tables in docs/lbfgs.md, as benchmarks/lbfgs.py prints it."""
    return (f"| {r['problem']} | {r['solver']} | {r['iterations']} | {r['evals']} | "
            f"{r['max_abs_grad']:.1e} | {r['final_value']:.6e} | {r['gap_to_min']:.1e} | "
            f"{r['seconds'] * 1e3:.1f} |")


def test_lbfgs_tables_are_the_benchmark_results():
    results = json.loads(LBFGS_RESULTS.read_text())
    doc = (ROOT / "docs" / "lbfgs.md").read_text()
    for table in ("defaults", "to_gtol"):
        rows = "\n".join(_lbfgs_row(r) for r in results[table])
        assert rows in doc, f"docs/lbfgs.md does not show benchmarks/results/lbfgs.json[{table!r}]"


def test_lbfgs_benchmark_solves_match_the_code():
    proc = subprocess.run([sys.executable, "-c", _LBFGS_RERUN,
                           str(ROOT / "benchmarks" / "lbfgs.py")],
                          env=script_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    fresh = json.loads(proc.stdout.strip().splitlines()[-1])
    results = json.loads(LBFGS_RESULTS.read_text())
    committed = [r for table in ("defaults", "to_gtol") for r in results[table]
                 if r["solver"] == "optxform"]
    assert len(fresh) == len(committed) == 10
    for new, old in zip(fresh, committed):
        assert new["problem"] == old["problem"]
        assert (new["iterations"], new["evals"]) == (old["iterations"], old["evals"]), new
        assert f"{new['max_abs_grad']:.1e}" == f"{old['max_abs_grad']:.1e}", new
        assert f"{new['final_value']:.6e}" == f"{old['final_value']:.6e}", new


def test_lbfgs_torch_agreement_table_is_the_scripts_output():
    proc = subprocess.run([sys.executable, str(FIGURES / "lbfgs_agreement.py")],
                          env=script_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = proc.stdout.strip()
    assert table.count("\n") == 7
    assert table in (ROOT / "docs" / "lbfgs.md").read_text(), table


MEMORY_RESULTS = ROOT / "benchmarks" / "results" / "memory.json"

# docs/performance.md "State size" rows -> the benchmarks/memory.py rows they summarise.
STATE_SIZE_ROWS = {
    "sgd": ["sgd"],
    "sgd, momentum": ["sgd momentum"],
    "adam / adamw / adamax / nadam / radam": ["adam", "adamw", "adamax", "nadam", "radam"],
    "adam, amsgrad": ["adam amsgrad"],
    "adam, bf16 mu": ["adam, bf16 mu"],
    "adam, bf16 mu and nu": ["adam, bf16 mu+nu"],
    "adagrad": ["adagrad"],
    "adadelta": ["adadelta"],
    "rmsprop": ["rmsprop"],
    "rmsprop, centered + momentum": ["rmsprop centered+momentum"],
    "rprop": ["rprop"],
    "asgd": ["asgd"],
    "adafactor (factored)": ["adafactor"],
    "lion": ["lion"],
    "lbfgs, history 100": ["lbfgs (history 100)"],
}

_STATE_SIZES = r"""
import importlib.util, json, os, sys
sys.path.insert(0, os.path.dirname(sys.argv[1]))   # the benchmarks' own helpers
spec = importlib.util.spec_from_file_location("bench_memory", sys.argv[1])
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)
print(json.dumps(bench.state_sizes()))
"""


def _bytes_cell(value) -> str:
    return "—" if value is None else f"{value:.2f}".rstrip("0").rstrip(".")


def test_performance_state_sizes_are_the_benchmark_results():
    doc = (ROOT / "docs" / "performance.md").read_text()
    results = {r["optimizer"]: r for r in json.loads(MEMORY_RESULTS.read_text())["state_sizes"]}
    shown = {}
    for label, *cells in re.findall(r"^\| ([^|]+?) \| ([^|]+?) \| ([^|]+?) \| ([^|]+?) \|$",
                                    doc, flags=re.M):
        if label in STATE_SIZE_ROWS:
            shown[label] = [re.match(r"\**([\d.]+|—)", c.strip()).group(1) for c in cells]
    assert set(shown) == set(STATE_SIZE_ROWS)
    for label, names in STATE_SIZE_ROWS.items():
        for name in names:
            row = results[name]
            assert shown[label] == [_bytes_cell(row[k]) for k in ("optxform", "optax", "torch")], (
                label, name)
    proc = subprocess.run([sys.executable, "-c", _STATE_SIZES,
                           str(ROOT / "benchmarks" / "memory.py")],
                          env=script_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    fresh = {r["optimizer"]: r for r in json.loads(proc.stdout.strip().splitlines()[-1])}
    for name, row in results.items():
        for k in ("optxform", "optax", "torch"):
            assert _bytes_cell(fresh[name][k]) == _bytes_cell(row[k]), (name, k)


_BF16 = _STATE_SIZES.replace("bench.state_sizes()", "bench.bf16_accuracy(500)")


def _bf16_row(r: dict) -> str:
    diff = "0" if r["rel_param_diff"] == 0 else f"{r['rel_param_diff']:.1e}"
    return (f"| {r['problem']} | {r['moments']} | {r['final_loss']:.5f} | {r['accuracy']:.4f} | "
            f"{diff} |")


def test_performance_bf16_table_is_the_benchmark_output():
    doc = (ROOT / "docs" / "performance.md").read_text()
    committed = json.loads(MEMORY_RESULTS.read_text())["bf16"]
    assert "\n".join(_bf16_row(r) for r in committed) in doc
    proc = subprocess.run([sys.executable, "-c", _BF16, str(ROOT / "benchmarks" / "memory.py")],
                          env=script_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    fresh = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [(r["problem"], r["moments"]) for r in fresh] == \
        [(r["problem"], r["moments"]) for r in committed]
    for new, old in zip(fresh, committed):
        # Losses and accuracies to the printed digits (float32 runs may end one unit in the
        # last place apart on another CPU); the distance between two trajectories, a
        # difference of nearby numbers, within a factor of 3.
        for key in ("final_loss", "accuracy"):
            assert abs(new[key] - old[key]) <= 2e-3 * abs(old[key]) + 1e-5, (new, key)
        if old["rel_param_diff"] == 0:
            assert new["rel_param_diff"] == 0, new
        else:
            assert old["rel_param_diff"] / 3 <= new["rel_param_diff"] <= 3 * old["rel_param_diff"]


def test_frontier_table_matches_the_code_and_the_page():
    """docs/figures/frontier_numbers.py races the optimizers beyond torch.optim on the
    chooser's problems; its table (committed, and quoted by docs/optimizers.md) is current.
    The numbers are held to a factor of 1.5: some runs at the largest rates are chaotic,
    and XLA's AVX2 and AVX-512 kernels round a few sums differently."""
    proc = subprocess.run([sys.executable, str(FIGURES / "frontier_numbers.py"), "--print"],
                          env=script_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    committed = (FIGURES / "frontier_numbers.md").read_text().split("\n\n", 2)[2]
    assert_same_text_and_numbers(proc.stdout.strip(), committed.strip(),
                                 "docs/figures/frontier_numbers.md is stale: rerun "
                                 "python docs/figures/frontier_numbers.py", rtol=0.5)
    page = " ".join((ROOT / "docs" / "optimizers.md").read_text().split())
    assert " ".join(committed.split()) in page


def _benchmark_module(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_saving_memory_table_is_the_benchmark_output():
    """docs/saving-memory.md shows benchmarks/low_memory.py's table of its committed results."""
    results = json.loads((ROOT / "benchmarks" / "results" / "low_memory.json").read_text())
    table = _benchmark_module("low_memory").table(results).strip()
    assert table in (ROOT / "docs" / "saving-memory.md").read_text(), \
        "docs/saving-memory.md does not show benchmarks/results/low_memory.json's table"


def _numbers(row: str) -> list[float]:
    return [float(cell) for cell in row.replace("**", "").split("|")[2:-1]
            if re.fullmatch(r"\s*[\d.]+\s*", cell)]


def test_whole_step_tables_are_the_benchmark_results():
    """Every whole-training-step table in docs/performance.md is a run of
    benchmarks/train_step.py, in order: each row's numbers as its JSON has them, to the
    digits shown."""
    rows = []
    for name in ("train_step.json", "train_step_eqx_mlp.json", "train_step_mlp_3k.json"):
        results = json.loads((ROOT / "benchmarks" / "results" / name).read_text())["results"]
        rows += [r for workload in results for r in workload["rows"]]
    doc = (ROOT / "docs" / "performance.md").read_text()
    section = doc.split("## Whole training steps", 1)[1].split("\n## ", 1)[0]
    variants = {r["variant"] for r in rows}
    shown = [line for line in section.splitlines()
             if line.startswith("|") and line.split("|")[1].strip(" *") in variants]
    assert [line.split("|")[1].strip(" *") for line in shown] == [r["variant"] for r in rows]
    for line, r in zip(shown, rows):
        expected = [r["compile_s"], r["step_ms"], r["compile_ratio"], r["step_ratio"]]
        if r["peak_mb"] is not None:
            expected.append(r["peak_mb"])
        got = _numbers(line)
        assert len(got) == len(expected), line
        for value, want in zip(got, expected):
            assert abs(value - want) <= 0.006 * max(1.0, abs(want)), (line, want)
