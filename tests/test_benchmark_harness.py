"""benchmarks/common.py's one-process-per-variant timing: workers build the variant named
in them, answer timing requests, label a repeated name as an A/A copy, and report a
failing build with its traceback (the benchmarks themselves never run here)."""

from __future__ import annotations

import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# A benchmark script in miniature: what a worker imports and asks for a variant.
TOY_SCRIPT = '''
import os
import common as C

def build_variant(key, name):
    if name == "broken":
        raise RuntimeError("no such variant here")
    calls = []
    variant = C.Variant(f"{name} in {os.getpid()}", lambda: calls.append(1), compile_s=0.5,
                        peak_bytes=len(key))
    variant.recompile = lambda: float(len(calls))
    return variant
'''


@pytest.fixture
def common(tmp_path, monkeypatch):
    (tmp_path / "toy_bench.py").write_text(TOY_SCRIPT)
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    monkeypatch.syspath_prepend(str(tmp_path))  # the spawned workers get this sys.path
    import common as c
    yield c
    sys.modules.pop("common", None)


def test_each_variant_runs_in_processes_of_its_own(common):
    variants = common.isolated("toy_bench", "abc", ["a", "b", "a"], copies=2)
    try:
        assert [v.name for v in variants] == ["a", "b", "a (again)"]
        assert [v.compile_s for v in variants] == [0.5, 0.5, 0.5]
        assert variants[0].peak_bytes == 3
        common.interleave(variants, rounds=2, reps=3)
        # 2 rounds x 3 reps in each of the 2 copies, all timed
        assert all(len(v.times) == 12 and min(v.times) >= 0 for v in variants)
        # the recompile request reaches a worker whose step ran 2 x 3 times
        assert variants[1].recompile() == 6.0
        pids = {w[1].pid for v in variants for w in v._workers}
        assert len(pids) == 6
    finally:
        for v in variants:
            v.close()
    assert not any(w[1].is_alive() for v in variants for w in v._workers)


def test_a_failing_build_raises_with_the_workers_traceback(common):
    with pytest.raises(RuntimeError, match="(?s)'broken' of 'abc'.*no such variant here"):
        common.isolated("toy_bench", "abc", ["broken"])
