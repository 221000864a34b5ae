"""benchmarks/char_transformer.py: its quick mode runs end to end, and docs/optimizers.md
quotes exactly the results the full run committed (the benchmark itself never runs here)."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "char_transformer.py"
RESULTS = ROOT / "benchmarks" / "results"
FIELDS = {"options", "grid", "best_lr", "seeds", "steps_to_target", "final_val_loss", "step_ms_mean",
          "eval_steps", "val_loss", "median_val_loss", "step_ms", "compile_s"}
OPTIMIZERS = ["adamw", "muon_with_adamw", "soap", "shampoo"]
SECTION = "## Matrix optimizers on a small transformer"


def load_script():
    spec = importlib.util.spec_from_file_location("char_transformer", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_quick_mode_trains_every_optimizer_and_writes_its_outputs(tmp_path, capsys):
    ct = load_script()
    ct.main(["--quick", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    results = json.loads((tmp_path / "char_transformer.json").read_text())
    cfg = ct.Config.quick()

    assert list(results["optimizers"]) == OPTIMIZERS
    assert results["params"] == 25_280 and results["target"] == cfg.target
    assert {"cpu", "cores", "python", "jax", "load_avg_start", "load_avg_end"} <= set(results["machine"])
    files = results["data"]["files"]
    assert [f["file"] for f in files] == sorted(ct.TRAIN_FILES) + sorted(ct.VAL_FILES)
    for f in files:  # every file and its byte count is printed
        assert f"{f['file']}" in printed and f"{f['bytes']:,d} bytes" in printed
    for name, r in results["optimizers"].items():
        assert set(r) == FIELDS, name
        assert [float(lr) for lr in r["grid"]] == list(cfg.grid(name))
        assert r["best_lr"] in cfg.grid(name) and r["seeds"] == [0, 1]
        assert r["grid"][f"{r['best_lr']:g}"] == min(r["grid"].values())
        assert r["eval_steps"] == [0, 5, 10, 15, 20]
        for curve in r["val_loss"]:  # the loss falls from log(256) = 5.55 for every seed
            assert curve[0] > 5.4 and curve[-1] < curve[0] - 0.5, (name, curve)
        assert all(s is not None and s <= cfg.steps for s in r["steps_to_target"]), name
        assert r["step_ms"] > 0 and r["compile_s"] > 0
    assert results["optimizers"]["muon_with_adamw"]["options"]["adamw_learning_rate"] == \
        results["optimizers"]["adamw"]["best_lr"]

    table = ct.markdown_table(results)
    assert table.count("\n") == 1 + len(OPTIMIZERS)
    assert table.splitlines()[0].startswith("| optimizer | lr grid | best lr | steps to val")
    assert (tmp_path / "char_transformer.md").read_text() == \
        ct.stamp(results) + "\n\n" + table + "\n"
    assert table in printed
    assert (tmp_path / "char_transformer.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_docs_quote_the_committed_results():
    ct = load_script()
    results = json.loads((RESULTS / "char_transformer.json").read_text())
    table, stamp = ct.markdown_table(results), ct.stamp(results)
    assert table == results["table_md"]
    assert (RESULTS / "char_transformer.md").read_text() == stamp + "\n\n" + table + "\n"
    page = (ROOT / "docs" / "optimizers.md").read_text()
    start = page.index(SECTION)
    end = page.index("## Beyond torch.optim: how they compare")
    assert start < end, "the section sits just before the comparison of the others"
    section = page[start:end]
    assert table in section and stamp in section
    assert "figures/char_transformer.png" in section
    assert (ROOT / "docs" / "figures" / "char_transformer.png").is_file()
    names = list(results["optimizers"])
    assert names == [n for n in OPTIMIZERS if n in names] and len(names) >= 3
    assert results["config"]["seeds"] == 5
    for r in results["optimizers"].values():
        assert len(r["grid"]) == 3 and len(r["final_val_loss"]) == 5
