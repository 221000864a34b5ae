"""The command line fails gracefully: no false "best", clear reports, Ctrl-C, clean folders."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from PIL import Image

from optxform import cli
from optxform.explore import chooser

QUADRATIC = """
import jax.numpy as jnp

def make():
    data = jnp.linspace(-1.0, 1.0, 8, dtype=jnp.float32)
    loss = lambda p, d: jnp.mean((p[0] * d + p[1] - 2.0 * d) ** 2)
    return loss, jnp.zeros(2, jnp.float32), data

def nan_start():
    return (lambda p: jnp.sum(jnp.log(p))), -jnp.ones(3, jnp.float32)

def broken_make():
    return read_my_data()

def read_my_data():
    raise RuntimeError("could not read my data")

def broken_loss():
    def loss(p, d):
        return inner(p, d)
    return loss, jnp.zeros(3, jnp.float32), jnp.ones(4, jnp.float32)

def inner(p, d):
    return jnp.sum(p * d)
"""


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A module of user problems in the current folder, under a name unique to the test."""
    name = f"user_problems_{os.urandom(4).hex()}"
    (tmp_path / f"{name}.py").write_text(QUADRATIC)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    return name


def _run(argv, capsys):
    code = cli.main(["--no-progress", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_nothing_converged_names_no_best_exits_1_and_still_writes(user_module, tmp_path,
                                                                  capsys):
    code, out, err = _run(["choose", f"{user_module}:make", "--optimizers", "sgd", "adam",
                           "--lrs", "1e6,1e7", "--steps", "20", "--out", "out"], capsys)
    assert code == 1, err
    assert "best:" not in out
    assert "no run converged: all 4 runs diverged" in out
    stem = tmp_path / "out" / f"{user_module}_make_choose"
    rows = (stem.with_suffix(".csv")).read_text().splitlines()
    assert len(rows) == 1 + 4 and all(row.endswith(tuple("0123456789")) for row in rows[1:])
    assert all(",yes," in row for row in rows[1:])
    with Image.open(stem.with_suffix(".png")) as image:
        assert image.format == "PNG"


def test_a_converged_run_is_still_named_best(user_module, capsys):
    code, out, err = _run(["choose", f"{user_module}:make", "--optimizers", "sgd",
                           "--lrs", "0.1,1e7", "--steps", "20", "--out", "out"], capsys)
    assert code == 0, err
    assert "best: sgd with learning rate 0.1 " in out


@pytest.mark.parametrize("command", ["choose", "lr-find"])
def test_nan_at_the_start_is_reported_as_such_and_leaves_no_folder(command, user_module,
                                                                   tmp_path, capsys):
    code, out, err = _run([command, f"{user_module}:nan_start", "--steps", "5",
                           "--out", "a/b/c"], capsys)
    assert code == 2
    assert err.count("\n") == 1, err
    assert "the loss is nan at the start point, before any step" in err
    assert "lower min_lr" not in err and "best" not in out
    assert not (tmp_path / "a").exists()


def test_a_start_point_off_the_surface_is_reported_before_any_step(tmp_path, capsys):
    code, _, err = _run(["compare", "booth", "--start", "inf", "0", "--out",
                         str(tmp_path / "out")], capsys)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("optxform compare: error: the loss is inf at the start point")
    assert not (tmp_path / "out").exists()


def test_an_error_in_make_shows_the_users_frames_only(user_module, tmp_path, capsys):
    code, _, err = _run(["choose", f"{user_module}:broken_make", "--out", "out"], capsys)
    assert code == 1
    assert f"{user_module}.py\", line 13, in broken_make" in err
    assert "in read_my_data" in err
    assert err.rstrip().endswith("RuntimeError: could not read my data")
    assert "cli.py" not in err and f"optxform{os.sep}" not in err
    assert not (tmp_path / "out").exists()


def test_an_error_in_the_loss_shows_the_users_frames_only(user_module, capsys):
    code, _, err = _run(["lr-find", f"{user_module}:broken_loss", "--out", "out"], capsys)
    assert code == 1
    assert "in loss" in err and "in inner" in err and "return jnp.sum(p * d)" in err
    assert "TypeError: mul got incompatible shapes for broadcasting: (3,), (4,)." in err
    assert "cli.py" not in err and f"jax{os.sep}" not in err
    assert "JAX_TRACEBACK_FILTERING" not in err


def test_an_existing_folder_is_kept_after_a_failure(user_module, tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    code, _, _ = _run(["choose", f"{user_module}:nan_start", "--out", "mine/new"], capsys)
    assert code == 2
    assert (tmp_path / "mine").is_dir() and not (tmp_path / "mine" / "new").exists()


def _interrupt_on_race(monkeypatch, number: int) -> None:
    """Ctrl-C (a real SIGINT to this process) as the ``number``-th optimizer starts."""
    real, calls = chooser._race, []

    def race(*args, **kwargs):
        calls.append(1)
        if len(calls) == number:
            os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(chooser, "_race", race)


def test_ctrl_c_in_choose_keeps_the_finished_optimizers(user_module, tmp_path, monkeypatch,
                                                       capsys):
    _interrupt_on_race(monkeypatch, 2)
    code, out, err = _run(["choose", f"{user_module}:make", "--optimizers", "sgd", "adam",
                           "lion", "--lrs", "0.01,0.1", "--steps", "5", "--out", "out"], capsys)
    assert code == 130
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("optxform choose: interrupted; 1 of 3 optimizers had finished; "
                          f"kept {user_module}_make_choose.png, ")
    rows = (tmp_path / "out" / f"{user_module}_make_choose.csv").read_text().splitlines()
    assert [row.split(",")[1] for row in rows[1:]] == ["sgd", "sgd"]
    assert (tmp_path / "out" / f"{user_module}_make_choose.png").exists()


def test_ctrl_c_before_anything_finished_leaves_no_folder(user_module, tmp_path,
                                                          monkeypatch, capsys):
    _interrupt_on_race(monkeypatch, 1)
    code, _, err = _run(["choose", f"{user_module}:make", "--optimizers", "sgd", "--steps",
                         "5", "--out", "out"], capsys)
    assert code == 130 and err.count("\n") == 1
    assert "nothing was written" in err
    assert not (tmp_path / "out").exists()


def test_ctrl_c_in_demo_keeps_finished_figures_and_their_results(tmp_path, monkeypatch,
                                                                 capsys):
    monkeypatch.setattr(cli, "DEMO_PATHS", (("booth", ("sgd", "adam"), 4, None),))
    monkeypatch.setattr(cli, "DEMO_SADDLES", (("saddle", ("sgd",), 4, None),))
    monkeypatch.setattr(cli, "DEMO_CHOOSE", ("booth", ("sgd",), (0.01, 0.1), 4))
    _interrupt_on_race(monkeypatch, 1)
    code, _, err = _run(["demo", "--out", str(tmp_path / "tour")], capsys)
    assert code == 130
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "2 of 4 stages had finished; kept booth_paths.png, " in err
    written = {p.name for p in (tmp_path / "tour").iterdir()}
    assert {"booth_paths.png", "booth_loss.png", "saddle.png", "results.md"} <= written
    assert "choose.png" not in written
    results = (tmp_path / "tour" / "results.md").read_text()
    assert "interrupted after 2 of 4 stages" in results
    assert "## booth" in results and "## saddle" in results and "## choose" not in results


def test_ctrl_c_in_a_real_process_prints_one_line(user_module, tmp_path):
    # The whole program as a user runs it; SIGINT arrives while the second optimizer runs.
    (tmp_path / "interrupt.py").write_text(textwrap.dedent("""
        import os, signal, sys
        from optxform import cli
        from optxform.explore import chooser
        real, calls = chooser._race, []
        def race(*args, **kwargs):
            calls.append(1)
            if len(calls) == 2:
                os.kill(os.getpid(), signal.SIGINT)
            return real(*args, **kwargs)
        chooser._race = race
        sys.exit(cli.main(sys.argv[1:]))
    """))
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, "interrupt.py", "choose", f"{user_module}:make",
                           "--optimizers", "sgd", "adam", "--lrs", "0.1", "--steps", "3",
                           "--out", "out"], capture_output=True, text=True, timeout=300,
                          env=env, cwd=tmp_path)
    assert proc.returncode == 130, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if not line.startswith("optimizers:")]
    assert lines == ["optxform choose: interrupted; 1 of 2 optimizers had finished; kept "
                     f"{user_module}_make_choose.png, {user_module}_make_choose.csv in out"
                     ], proc.stderr
