"""The optxform command line, run in-process (plus one subprocess) in a temp folder."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from optxform import cli

from PIL import Image


def _image(path, kind="PNG"):
    with Image.open(path) as image:
        assert image.format == kind
        image.load()
        return image.size, getattr(image, "n_frames", 1)


def _run(argv, capsys):
    code = cli.main(["--no-progress", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_compare_writes_pngs_gif_and_a_table(tmp_path, capsys):
    code, out, err = _run(["compare", "booth", "--optimizers", "sgd", "adam:lr=0.5",
                           "--steps", "12", "--frames", "6", "--start", "-5", "-5",
                           "--out", str(tmp_path)], capsys)
    assert code == 0, err
    size, _ = _image(tmp_path / "booth_paths.png")
    assert size == (750, 500)
    assert _image(tmp_path / "booth_loss.png")[0] == (750, 400)
    size, frames = _image(tmp_path / "booth.gif", "GIF")
    assert size == (600, 400) and frames == 6
    lines = out.splitlines()
    assert lines[1].split()[:3] == ["optimizer", "final", "loss"]
    # sgd had no lr: it gets booth's tuned one; adam keeps its own.
    assert any(line.startswith("sgd(lr=") for line in lines)
    assert any(line.startswith("adam(lr=0.5)") for line in lines)


def test_compare_on_a_saddle_writes_the_saddle_figure(tmp_path, capsys):
    code, _, err = _run(["compare", "saddle", "--optimizers", "sgd", "adam", "--steps", "8",
                         "--no-gif", "--out", str(tmp_path)], capsys)
    assert code == 0, err
    assert _image(tmp_path / "saddle.png")[0] == (1250, 460)
    assert not (tmp_path / "saddle.gif").exists()


def test_choose_builtin_problem(tmp_path, capsys):
    code, out, err = _run(["choose", "logreg_spirals", "--optimizers", "sgd", "adam",
                           "--lrs", "0.01,0.1,1", "--steps", "10", "--out", str(tmp_path)],
                          capsys)
    assert code == 0, err
    assert "best: " in out and "rank" in out
    assert _image(tmp_path / "logreg_spirals_choose.png")[0] == (1250, 520)
    csv = (tmp_path / "logreg_spirals_choose.csv").read_text().splitlines()
    assert csv[0].startswith("rank,optimizer,lr") and len(csv) == 1 + 6


def test_choose_and_lr_find_on_a_user_function(tmp_path, capsys, monkeypatch):
    (tmp_path / "my_problem.py").write_text(
        "import jax.numpy as jnp\n"
        "def make():\n"
        "    data = jnp.asarray([1.0, 2.0, 3.0], jnp.float32)\n"
        "    return (lambda p, d: jnp.sum((p - d) ** 2)), jnp.zeros(3, jnp.float32), data\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    code, out, err = _run(["choose", "my_problem:make", "--optimizers", "sgd",
                           "--lrs", "0.1,0.2", "--steps", "5", "--out", "out"], capsys)
    assert code == 0, err
    assert "my_problem:make" in out and (tmp_path / "out" / "my_problem_make_choose.png").exists()
    code, out, err = _run(["lr-find", "my_problem:make", "--steps", "30", "--out", "out"],
                          capsys)
    assert code == 0, err
    assert "suggested learning rate" in out
    _image(tmp_path / "out" / "my_problem_make_lr_find_sgd.png")


def test_demo_end_to_end_on_a_small_tour(tmp_path, capsys, monkeypatch):
    # The real tour is run for docs/figures; here the same code path on a tiny one.
    monkeypatch.setattr(cli, "DEMO_PATHS", (("rosenbrock", ("sgd", "adam"), 6, None),))
    monkeypatch.setattr(cli, "DEMO_SADDLES", (("monkey_saddle", ("sgd", "adam"), 6, None),))
    monkeypatch.setattr(cli, "DEMO_CHOOSE", ("logreg_spirals", ("sgd", "adam"), (0.1, 1.0), 4))
    monkeypatch.setattr(cli, "DEMO_LR_FIND", ("logreg_spirals", ("sgd",), 10))
    out_dir = tmp_path / "tour"
    code, out, err = _run(["demo", "--out", str(out_dir)], capsys)
    assert code == 0, err
    written = {p.name for p in out_dir.iterdir()}
    assert {"rosenbrock_paths.png", "rosenbrock_loss.png", "rosenbrock.gif",
            "monkey_saddle.png", "choose.png", "choose.csv", "lr_find_sgd.png",
            "results.md"} <= written
    assert _image(out_dir / "rosenbrock.gif", "GIF")[1] == 7  # steps 0..6
    assert str(out_dir.resolve()) in out.splitlines()[-1]
    assert "## choose" in (out_dir / "results.md").read_text()


@pytest.mark.parametrize("argv, message", [
    (["compare", "rosenbrok"], "unknown surface 'rosenbrok'; known surfaces: rosenbrock, "),
    (["compare", "booth", "--optimizers", "adamm"],
     "unknown optimizer 'adamm'; known optimizers: sgd, "),
    (["choose", "nope"], "unknown problem 'nope'; known problems: rosenbrock, "),
    (["choose", "booth", "--lrs", "0.1,fast"], "bad --lrs '0.1,fast': expected"),
    (["choose", "booth", "--lrs", "0.1,-1"], "bad --lrs '0.1,-1': Invalid --lrs: -1.0"),
    (["choose", "booth", "--lrs", ","], "bad --lrs ',': Invalid --lrs: empty"),
    (["choose", "no_such_module:f"], "cannot load problem 'no_such_module:f'"),
    (["lr-find", "booth", "--min-lr", "1", "--max-lr", "0.1"], "Invalid min_lr/max_lr"),
    (["compare", "booth", "--steps", "x"], "argument --steps: invalid int value"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_bad_input_exits_2_with_one_line(argv, message, tmp_path, capsys):
    code, out, err = _run([*argv, "--out", str(tmp_path)] if argv[0] != "frobnicate"
                          else argv, capsys)
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("optxform") and message in err, err


def test_unwritable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    code, _, err = _run(["compare", "booth", "--out", str(blocker / "sub")], capsys)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("optxform compare: error: cannot write to output folder ")


def test_python_dash_m_help_in_a_subprocess():
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-m", "optxform", "--help"], capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    for command in ("demo", "compare", "choose", "lr-find"):
        assert command in proc.stdout


def test_tune_picks_the_fastest_stable_rate():
    # Booth's Hessian has eigenvalues 2 and 18: gradient descent diverges for lr > 2/18;
    # lr = 0.1 converges but its first step overshoots to (9.8, 10.2), out of the window.
    booth = cli.problems.SURFACES["booth"]
    specs = cli.explore.parse_optimizers(["sgd", "adam:lr=0.5"])
    tuned = cli.tune_learning_rates(booth, specs, 20, grid=(0.01, 0.03, 0.1, 0.5))
    assert [s.learning_rate for s in tuned] == [0.03, 0.5]  # adam keeps its own rate


def test_choose_prints_the_top_10_rows_by_default(tmp_path, capsys):
    argv = ["choose", "booth", "--optimizers", "sgd", "adam", "--lrs",
            "1e-3,3e-3,0.01,0.03,0.1,0.3", "--steps", "3", "--out", str(tmp_path)]
    code, out, err = _run(argv, capsys)
    assert code == 0, err
    table = out.splitlines()[1:]
    assert table[0].startswith("rank") and table[10].startswith("10 ")
    assert table[11] == "(2 more rows in booth_choose.csv; --top 0 prints all)"
    assert len((tmp_path / "booth_choose.csv").read_text().splitlines()) == 1 + 12
    code, out, err = _run([*argv, "--top", "0"], capsys)
    assert code == 0, err
    assert out.splitlines()[13].startswith("12 ") and "more rows" not in out


def test_lr_find_files_are_named_by_problem_and_optimizer(tmp_path, capsys):
    for problem in ("booth", "beale"):
        code, _, err = _run(["lr-find", problem, "--steps", "20", "--max-lr", "0.1",
                             "--out", str(tmp_path)], capsys)
        assert code == 0, err
    code, out, err = _run(["lr-find", "booth", "--optimizer", "adam", "--steps", "20",
                           "--out", str(tmp_path)], capsys)
    assert code == 0, err
    assert out.splitlines()[-1] == f"wrote booth_lr_find_adam.png to {tmp_path}"
    assert {p.name for p in tmp_path.iterdir()} == {
        "booth_lr_find_sgd.png", "beale_lr_find_sgd.png", "booth_lr_find_adam.png"}


def _options(parser):
    for action in parser._actions:
        if action.dest not in ("help", "version", "command"):
            yield action


def test_every_option_has_help_with_its_default():
    parser = cli.build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert set(commands) == {"demo", "compare", "choose", "lr-find"}
    missing = []
    for name, command in [("optxform", parser), *commands.items()]:
        assert command.description, f"{name} has no description"
        for action in _options(command):
            text = action.help or ""
            if not text or (action.option_strings and "default" not in text):
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, f"options without help or default: {missing}"


def test_help_lists_the_optimizers_and_the_spec_syntax(capsys):
    for argv in (["--help"], ["choose", "--help"], ["lr-find", "--help"]):
        assert cli.main(argv) == 0
        text = " ".join(capsys.readouterr().out.split())  # undo the line wrapping
        assert "NAME[:KEY=VALUE,...]" in text and "adam:lr=0.1" in text
        for name in cli.explore.optimizer_names():
            assert f" {name}," in text or f" {name} (" in text, (argv, name)
    assert cli.main(["demo", "--help"]) == 0
    assert "Run the built-in tour" in capsys.readouterr().out


def test_progress_is_plain_lines_when_not_a_terminal(tmp_path, capsys):
    # capsys's stderr is not a terminal: one line per finished item, no carriage returns.
    code = cli.main(["choose", "booth", "--optimizers", "sgd", "adam", "--lrs", "0.01",
                     "--steps", "3", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "\r" not in err
    lines = err.splitlines()
    assert [line.split(" (")[0] for line in lines] == ["optimizers: 1/2 done",
                                                      "optimizers: 2/2 done"]


def test_progress_is_a_bar_on_a_terminal():
    import io

    from optxform.explore.progress import progress_bar

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    assert list(progress_bar(range(3), total=3, desc="work", stream=stream)) == [0, 1, 2]
    assert "\r" in stream.getvalue() and "work" in stream.getvalue()
