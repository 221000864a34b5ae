"""The ``optxform`` command line (also ``python -m optxform``).

Subcommands::

    optxform demo [--out DIR]
        Runs the built-in tour (paths on Rosenbrock, Himmelblau and an ill-conditioned
        bowl, two saddles, the chooser and an LR range test on the spirals MLP) and writes
        its figures and tables, with results.md, to DIR (default ./optxform-demo).

    optxform compare PROBLEM [--optimizers SPEC ...] [--steps N] [--start X Y] [--out DIR]
        Runs optimizers on a 2-D surface; writes PROBLEM_paths.png and PROBLEM_loss.png
        (for a saddle: PROBLEM.png, paths and escape speed), PROBLEM.gif, and prints a
        table. A spec without a learning rate uses the one tuned for that surface (with
        --tune: the best of a grid raced first).

    optxform choose PROBLEM|MODULE:FUNCTION [--optimizers ...] [--lrs 1e-3,1e-2,...]
        Trains every (optimizer, learning rate) pair, prints the ranked table (first 10
        rows), writes PROBLEM_choose.png and PROBLEM_choose.csv. MODULE:FUNCTION names your
        own problem: a function of no arguments returning (loss_fn, params, data) with
        loss_fn(params, data) -> loss (or (loss_fn, params) with loss_fn(params) -> loss).

    optxform lr-find PROBLEM|MODULE:FUNCTION [--optimizer SPEC] [--min-lr] [--max-lr]
        The learning-rate range test (Smith 2017); prints the suggestion, writes
        PROBLEM_lr_find_OPTIMIZER.png.

Optimizer specs are ``name[:key=value,...]``, e.g. ``adam:lr=0.1`` or
``sgd:lr=0.01,momentum=0.9``.

Failing well: bad input (an unknown optimizer or problem, a bad learning-rate list, an
output folder that cannot be written, a loss that is nan at the start point) ends with
exit status 2 and one line on stderr. ``choose`` with no converged run says so and exits
with 1 (after writing its table and figure); so does an exception raised by your own
problem, shown with your frames only. Ctrl-C prints one line, keeps what finished and exits
with 130. A failed command leaves no empty output folder behind.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import math
import os
import pathlib
import re
import sys
import sysconfig
import tempfile
import time
import traceback
from typing import Any, Callable, Sequence

import numpy as np

from optxform import __version__, explore, problems
from optxform.explore.chooser import DEFAULT_LEARNING_RATES, format_table
from optxform.explore.progress import progress_bar

__all__ = ["main"]

PROG = "optxform"
DEFAULT_COMPARE = ("sgd", "momentum", "adagrad", "rmsprop", "adam", "lion")
DEFAULT_CHOOSE = ("sgd", "momentum", "adagrad", "rmsprop", "adam", "lion")
EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


class UsageError(Exception):
    """Bad input from the user: reported in one line with exit code 2."""


class Interrupted(Exception):
    """Ctrl-C, after the command kept what had finished (the message says what)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        raise UsageError(f"{message} (see `{self.prog} --help`)")


# ---------------------------------------------------------------------- output folder


class Output:
    """The output folder: checked before any work, removed again if a failure left it empty.

    ``written`` lists the files a command wrote there, in order.
    """

    def __init__(self, path: str):
        self.path = pathlib.Path(path)
        self.created: list[pathlib.Path] = []
        self.written: list[str] = []

    def prepare(self) -> pathlib.Path:
        """Create the folder if needed and check a file can be written there."""
        missing = [p for p in (self.path, *self.path.parents) if not p.exists()]
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self.created = missing
            with tempfile.NamedTemporaryFile(dir=self.path, prefix=".optxform-write-test-"):
                pass
        except OSError as err:
            self.created = [p for p in missing if p.exists()]
            raise UsageError(f"cannot write to output folder {str(self.path)!r}: "
                             f"{err.strerror or err}") from None
        return self.path

    def wrote(self, *names: str) -> None:
        self.written += names

    def remove_if_empty(self) -> None:
        """Remove the folders :meth:`prepare` created, deepest first, if they are empty."""
        for folder in self.created:
            try:
                folder.rmdir()
            except OSError:
                break

    def kept(self) -> str:
        if not self.written:
            return "nothing was written"
        return f"kept {', '.join(self.written)} in {self.path}"


def file_stem(problem: str) -> str:
    """A file-name-safe name for a problem (``mymodule:make`` -> ``mymodule_make``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", problem).strip("._") or "problem"


# ------------------------------------------------------------------ the user's own code


def _user_code(fn: Callable) -> Callable:
    """``fn``, with any exception it raises marked as the user's (see :func:`_user_frames`)."""
    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            try:
                err._optxform_user_code = True
            except (AttributeError, TypeError):
                pass
            raise
    return call


_USER_CALL = _user_code(lambda: None).__code__


def _library_folders() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    folders = {str(pathlib.Path(__file__).resolve().parent)}
    folders |= {os.path.realpath(paths[k]) for k in ("stdlib", "platstdlib", "purelib",
                                                     "platlib") if k in paths}
    return tuple(folder + os.sep for folder in folders)


def _user_frames(err: BaseException) -> traceback.StackSummary:
    """The frames of ``err``'s traceback in the user's files: below the user-code boundary
    when there is one, never optxform's, the standard library's or installed packages'."""
    frames = list(traceback.walk_tb(err.__traceback__))
    boundary = [i for i, (frame, _) in enumerate(frames) if frame.f_code is _USER_CALL]
    if boundary:
        frames = frames[boundary[0] + 1:]
    library = _library_folders()
    mine = [(frame, line) for frame, line in frames
            if not os.path.realpath(frame.f_code.co_filename).startswith(library)]
    return traceback.StackSummary.extract(mine)


def report_user_error(command: str, problem: str, err: BaseException) -> None:
    """Print ``err`` as an error in the user's problem, with the user's frames only."""
    frames = _user_frames(err)
    print(f"{command}: error in your problem {problem}:", file=sys.stderr)
    if frames:
        print("Traceback (your code only; optxform and library frames hidden):",
              file=sys.stderr)
        print("".join(traceback.format_list(frames)), end="", file=sys.stderr)
    # The message without jax's note about its own hidden frames (all library frames are).
    notes = getattr(err, "__notes__", None)
    if isinstance(notes, list):
        err.__notes__ = [note for note in notes if "JAX_TRACEBACK_FILTERING" not in note]
    print("".join(traceback.format_exception_only(type(err), err)), end="", file=sys.stderr)


# ----------------------------------------------------------------------------- helpers


def _parse_lrs(text: str) -> tuple[float, ...]:
    """``"1e-3,1e-2,0.1"`` -> floats, checked (positive, finite, distinct)."""
    items = [t.strip() for t in text.replace(" ", ",").split(",") if t.strip()]
    try:
        values = [float(t) for t in items]
    except ValueError:
        raise UsageError(f"bad --lrs {text!r}: expected comma-separated numbers such as "
                         "1e-3,1e-2,0.1") from None
    try:
        return explore.check_learning_rates(values, "--lrs")
    except ValueError as err:
        raise UsageError(f"bad --lrs {text!r}: {err}") from None


def _specs(texts: Sequence[str]) -> list[explore.OptimizerSpec]:
    try:
        return explore.parse_optimizers(texts)
    except ValueError as err:
        raise UsageError(str(err)) from None


def _surface(name: str) -> problems.Surface:
    if name not in problems.SURFACES:
        raise UsageError(f"unknown surface {name!r}; known surfaces: "
                         f"{', '.join(problems.problem_names('surface'))}")
    return problems.SURFACES[name]


def _with_surface_lrs(specs, surface: problems.Surface):
    """Give each spec without a learning rate the one tuned for ``surface``."""
    out = []
    for spec in specs:
        lr = surface.learning_rates.get(spec.name, surface.learning_rates.get(spec.alias))
        out.append(spec.with_options(learning_rate=lr)
                   if spec.learning_rate is None and lr is not None else spec)
    return out


def is_user_problem(name: str) -> bool:
    return ":" in name


def load_problem(name: str) -> tuple[Callable, Any, Any, str]:
    """``(loss_fn, params, data, title)`` for a built-in problem or ``module:function``.

    For ``module:function``, the function and the loss it returns are marked as the user's
    code, so that their exceptions are shown with the user's frames only.
    """
    if is_user_problem(name):
        module_name, _, function_name = name.partition(":")
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            function = getattr(importlib.import_module(module_name), function_name)
        except (ImportError, AttributeError) as err:
            raise UsageError(f"cannot load problem {name!r}: {err}") from None
        made = _user_code(function)()
        if not isinstance(made, tuple) or len(made) not in (2, 3) or not callable(made[0]):
            raise UsageError(f"{name} must return (loss_fn, params, data) or "
                             f"(loss_fn, params), got {type(made).__name__}")
        loss_fn, params, data = made if len(made) == 3 else (*made, None)
        return _user_code(loss_fn), params, data, name
    try:
        problem = problems.get_problem(name)
    except ValueError as err:
        raise UsageError(f"{err} (or MODULE:FUNCTION for your own)") from None
    if isinstance(problem, problems.Surface):
        return problem.fn, problem.start_array(), None, name
    loss_fn, params, data = problem.load()
    return loss_fn, params, data, f"{name}: {problem.description}"


def _say(message: str) -> None:
    print(message, flush=True)


def _fmt(value: float) -> str:
    return f"{value:.4g}" if math.isfinite(value) else str(value)


def compare_table(surface: problems.Surface, runs) -> str:
    """Final loss, best loss, end point and distance to the nearest minimum, per run."""
    header = ["optimizer", "final loss", "best loss", "end point", "to minimum", "diverged"]
    rows = []
    for run in runs.values():
        end = run.final_params
        rows.append([run.label, _fmt(run.final_loss), _fmt(run.best_loss),
                     f"({_fmt(float(end[0]))}, {_fmt(float(end[1]))})",
                     _fmt(surface.distance_to_minimum(end)) if surface.minima else "-",
                     "yes" if run.diverged else "no"])
    return format_table(header, rows)


TUNE_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0)


def _inside(surface: problems.Surface, run) -> bool:
    """Whether a run stayed finite and inside the plotting window all the way."""
    (x0, x1), (y0, y1) = surface.bounds
    path = run.params
    return bool(np.isfinite(path).all() and (path[:, 0] >= x0).all() and (path[:, 0] <= x1).all()
                and (path[:, 1] >= y0).all() and (path[:, 1] <= y1).all())


def tune_learning_rates(surface: problems.Surface, specs, steps: int, start=None, *,
                        grid: Sequence[float] = TUNE_GRID, progress: bool = False):
    """Give each spec without a learning rate its best grid value on ``surface``.

    Every (spec, rate) pair runs from the start point (one vmapped compile per optimizer);
    the best rate has the lowest final loss among the runs whose path stays finite and
    inside the plotting window (or, if none does, among all runs). A spec that sets its own
    rate keeps it. This is how ``Surface.learning_rates`` were picked.
    """
    todo = [spec for spec in specs if spec.learning_rate is None]
    trials = [(spec, lr, spec.with_options(learning_rate=lr)) for spec in todo for lr in grid]
    runs = explore.trajectories(surface.fn, surface.start_array(start),
                                [trial for _, _, trial in trials], steps, progress=progress)
    best = {}
    for spec in todo:
        mine = [(lr, runs[trial.label]) for s, lr, trial in trials if s is spec]
        ok = [(lr, run) for lr, run in mine if _inside(surface, run)] or mine
        finite = [(lr, run) for lr, run in ok if math.isfinite(run.final_loss)] or ok
        best[spec.label] = min(finite, key=lambda item: item[1].final_loss)[0]
    return [spec.with_options(learning_rate=best[spec.label])
            if spec.learning_rate is None else spec for spec in specs]


# ------------------------------------------------------------------------- subcommands


def run_compare(surface: problems.Surface, specs, steps: int, start, out: pathlib.Path, *,
                gif: bool = True, frames: int = 50, progress: bool = True,
                prefix: str | None = None, saddle: bool = False,
                tune: bool = False) -> tuple[dict, list[str]]:
    """Run ``specs`` on ``surface`` and write its figures; returns (runs, file names)."""
    from optxform import viz

    specs = (tune_learning_rates(surface, specs, steps, start, progress=progress) if tune
             else _with_surface_lrs(specs, surface))
    runs = explore.trajectories(surface.fn, surface.start_array(start), specs, steps,
                                progress=progress)
    prefix = prefix or surface.name
    written = []
    if saddle:
        viz.plot_saddle(surface, runs, out / f"{prefix}.png")
        written.append(f"{prefix}.png")
    else:
        viz.plot_paths(surface, runs, out / f"{prefix}_paths.png")
        viz.plot_losses(runs, out / f"{prefix}_loss.png", minimum=surface.minimum_value,
                        log=surface.minimum_value is not None,
                        title=f"{surface.name}: loss against step")
        written += [f"{prefix}_paths.png", f"{prefix}_loss.png"]
    if gif:
        viz.animate_paths(surface, runs, out / f"{prefix}.gif", frames=frames)
        written.append(f"{prefix}.gif")
    return runs, written



def cmd_compare(args) -> int:
    surface = _surface(args.problem)
    specs = _specs(args.optimizers or [n for n in DEFAULT_COMPARE
                                       if n in explore.optimizer_names()])
    if args.steps < 0:
        raise UsageError(f"--steps must be >= 1, got {args.steps}")
    explore.check_start_loss(float(surface.fn(surface.start_array(args.start))))
    out = args.output.prepare()
    steps = args.steps or surface.steps
    runs, written = run_compare(surface, specs, steps, args.start, out, gif=not args.no_gif,
                                frames=args.frames, progress=args.progress, tune=args.tune,
                                saddle=not surface.minima)
    args.output.wrote(*written)
    _say(f"{surface.name}: {surface.description}")
    _say(compare_table(surface, runs))
    _say(f"wrote {', '.join(written)} to {out}")
    return 0


def write_choice(result, out: pathlib.Path, stem: str, title: str) -> list[str]:
    """The chooser's figure and csv table, named after the problem; returns the names."""
    from optxform import viz

    viz.plot_choice(result, out / f"{stem}.png", title=title)
    (out / f"{stem}.csv").write_text(result.table("csv") + "\n")
    return [f"{stem}.png", f"{stem}.csv"]


def cmd_choose(args) -> int:
    lrs = _parse_lrs(args.lrs) if args.lrs else DEFAULT_LEARNING_RATES
    specs = _specs(args.optimizers or [n for n in DEFAULT_CHOOSE
                                       if n in explore.optimizer_names()])
    if args.steps < 1:
        raise UsageError(f"--steps must be >= 1, got {args.steps}")
    if args.top < 0:
        raise UsageError(f"--top must be >= 0, got {args.top}")
    out = args.output.prepare()
    loss_fn, params, data, title = load_problem(args.problem)
    stem = f"{file_stem(args.problem)}_choose"
    result = None
    try:
        for result in explore.iter_choose(loss_fn, params, data, specs, lrs, args.steps,
                                          batch_size=args.batch_size, progress=args.progress):
            pass
    except KeyboardInterrupt:
        if result is None:
            raise Interrupted("no optimizer had finished; nothing was written") from None
        args.output.wrote(*write_choice(result, out, stem, f"{title} (interrupted)"))
        raise Interrupted(f"{len(result.optimizers())} of {len(specs)} optimizers had "
                          f"finished; {args.output.kept()}") from None
    assert result is not None
    _say(f"{title}; {args.steps} steps, initial loss {_fmt(result.initial_loss)}")
    shown = args.top or len(result.rows)
    _say(result.table(limit=shown))
    if shown < len(result.rows):
        _say(f"({len(result.rows) - shown} more rows in {stem}.csv; --top 0 prints all)")
    if result.converged:
        best = result.best
        _say(f"best: {best.optimizer} with learning rate {best.learning_rate:g} "
             f"(final loss {_fmt(best.final_loss)})")
    else:
        _say(f"no run converged: all {len(result.rows)} runs diverged (the loss became nan "
             f"or inf, or ended above the start loss {_fmt(result.initial_loss)}), so there "
             "is no best learning rate; try smaller learning rates")
    for note in result.notes():
        _say(f"note: {note}")
    written = write_choice(result, out, stem, title)
    args.output.wrote(*written)
    _say(f"wrote {', '.join(written)} to {out}")
    return 0 if result.converged else EXIT_FAILED


def cmd_lr_find(args) -> int:
    spec = _specs([args.optimizer])[0]
    out = args.output.prepare()
    loss_fn, params, data, title = load_problem(args.problem)
    from optxform import viz

    result = explore.lr_range_test(loss_fn, params, data, spec, min_lr=args.min_lr,
                                   max_lr=args.max_lr, steps=args.steps,
                                   batch_size=args.batch_size)
    name = f"{file_stem(args.problem)}_lr_find_{file_stem(spec.name)}.png"
    _say(f"{title}")
    _say(str(result))
    viz.plot_lr_range(result, out / name, title=f"LR range test: {spec.label} on "
                      f"{args.problem}")
    args.output.wrote(name)
    _say(f"wrote {name} to {out}")
    return 0


# The tour `optxform demo` runs: (surface, optimizer specs, steps, start) per figure. The
# path figures use rates picked for readable pictures (each a good rate for that optimizer
# there; the tuned rates in Surface.learning_rates are the lowest-final-loss ones and can
# make wilder paths); on the saddles every optimizer gets the same rate.
_SIX = ("sgd", "momentum", "adagrad", "rmsprop", "adam", "lion")
DEMO_PATHS = (
    ("rosenbrock", ("sgd:lr=2e-3", "momentum:lr=1e-3", "adagrad:lr=0.3", "rmsprop:lr=0.01",
                    "adam:lr=0.1", "lion:lr=0.03"), 300, None),
    ("himmelblau", ("sgd:lr=0.01", "momentum:lr=3e-3", "adagrad:lr=1.0", "rmsprop:lr=0.1",
                    "adam:lr=0.3", "lion:lr=0.1"), 150, None),
    ("ill_conditioned", ("sgd:lr=0.03", "momentum:lr=0.01", "adagrad:lr=0.5",
                         "rmsprop:lr=0.03", "adam:lr=0.3", "lion:lr=0.05"), 100, None),
)
DEMO_SADDLES = (
    ("saddle", _SIX, 100, None),
    ("monkey_saddle", _SIX, 100, None),
)
DEMO_CHOOSE = ("mlp_spirals", _SIX, (1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0),
               300)
DEMO_LR_FIND = ("mlp_spirals", ("sgd", "adam"), 100)



def cmd_demo(args) -> int:
    out = args.output.prepare()
    from optxform import viz

    start = time.perf_counter()
    available = set(explore.optimizer_names())
    pick = lambda names: [n for n in names if n.partition(":")[0] in available]  # noqa: E731
    report = []
    stages = ([("paths", *s) for s in DEMO_PATHS] + [("saddle", *s) for s in DEMO_SADDLES]
              + [("choose",), ("lr_find",)])
    try:
        for stage in progress_bar(stages, total=len(stages), desc="demo",
                                  enabled=args.progress):
            if stage[0] in ("paths", "saddle"):
                _, name, names, steps, point = stage
                surface = problems.SURFACES[name]
                runs, files = run_compare(surface, _specs(pick(names)), steps, point, out,
                                          gif=(name == "rosenbrock"), progress=False,
                                          saddle=stage[0] == "saddle")
                report.append((f"{name} ({steps} steps from {surface.start})",
                               compare_table(surface, runs)))
            elif stage[0] == "choose":
                name, names, lrs, steps = DEMO_CHOOSE
                loss_fn, params, data, title = load_problem(name)
                result = explore.choose(loss_fn, params, data, _specs(pick(names)), lrs,
                                        steps)
                files = write_choice(result, out, "choose", title)
                report.append((f"choose: {title}, {steps} steps",
                               result.table(limit=12) + "\n\nbest per optimizer:\n"
                               + "\n".join(f"  {r.optimizer}: lr {r.learning_rate:g}, final "
                                           f"loss {_fmt(r.final_loss)}"
                                           for r in result.best_per_optimizer())
                               + "".join(f"\nnote: {note}" for note in result.notes())))
            else:
                name, names, steps = DEMO_LR_FIND
                loss_fn, params, data, title = load_problem(name)
                files, lines = [], []
                for spec in _specs(pick(names)):
                    result = explore.lr_range_test(loss_fn, params, data, spec, min_lr=1e-5,
                                                   max_lr=10.0, steps=steps)
                    viz.plot_lr_range(result, out / f"lr_find_{spec.name}.png",
                                      title=f"LR range test: {spec.label} on {name}")
                    files.append(f"lr_find_{spec.name}.png")
                    lines.append(str(result))
                report.append((f"lr range test: {title}", "\n".join(lines)))
            args.output.wrote(*files)
    except KeyboardInterrupt:
        if not report:
            raise Interrupted(f"no stage of the tour had finished; {args.output.kept()}"
                              ) from None
        write_report(out, report, f"interrupted after {len(report)} of {len(stages)} stages")
        args.output.wrote("results.md")
        raise Interrupted(f"{len(report)} of {len(stages)} stages had finished; "
                          f"{args.output.kept()}") from None
    write_report(out, report)
    args.output.wrote("results.md")
    for heading, body in report:
        _say(f"\n{heading}\n{body}")
    _say(f"\nwrote {len(args.output.written)} files to {out.resolve()} in "
         f"{time.perf_counter() - start:.1f}s: {', '.join(args.output.written)}")
    return 0


def write_report(out: pathlib.Path, report: list[tuple[str, str]], status: str = "") -> None:
    """``results.md``: one section (heading, fenced table) per finished stage of the tour."""
    text = "\n\n".join(f"## {heading}\n\n```\n{body}\n```" for heading, body in report)
    note = f"_{status}_\n\n" if status else ""
    (out / "results.md").write_text(f"# optxform demo results\n\n{note}{text}\n")


# ------------------------------------------------------------------------------ parser


class _Formatter(argparse.HelpFormatter):
    """Descriptions and epilogs keep their lines: each is wrapped on its own, and a line
    that starts ``label: ...`` gets its continuation lines indented (so a list reads as one)."""

    def __init__(self, prog):
        super().__init__(prog, max_help_position=30)

    def _fill_text(self, text, width, indent):
        import textwrap

        def fill(line):
            hanging = "  " if re.match(r"[a-z][\w -]*: ", line) else ""
            return textwrap.fill(line, width, initial_indent=indent,
                                 subsequent_indent=indent + hanging)

        return "\n".join(fill(line) if line else "" for line in text.splitlines())


def _spec_help() -> str:
    names = ", ".join(explore.optimizer_names())
    return (f"optimizers: {names} (momentum and nesterov are sgd with momentum 0.9, "
            "amsgrad is adam with amsgrad=true)\n\n"
            "optimizer specs: NAME[:KEY=VALUE,...], e.g. adam:lr=0.1 or "
            "sgd:lr=0.01,momentum=0.9. KEY is any argument of optxform.NAME (lr is short "
            "for learning_rate); VALUE is a number, true/false/none or a tuple such as "
            "rprop:etas=(0.4,1.3).\n\n"
            "exit status: 0 done; 1 no run converged, or your problem raised an exception; "
            "2 bad input; 130 interrupted (Ctrl-C keeps what finished)")


def _problem_help() -> str:
    return (f"built-in problems: {', '.join(problems.problem_names())}\n"
            "your own: MODULE:FUNCTION, a function of no arguments (in MODULE.py, found from "
            "the current folder) returning (loss_fn, params, data) with "
            "loss_fn(params, data) -> loss, or (loss_fn, params) with "
            "loss_fn(params) -> loss")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, formatter_class=_Formatter,
                     description="See and choose optimizers: paths on test surfaces, saddle "
                     "points, an optimizer/learning-rate chooser and a learning-rate range "
                     "test. `optxform COMMAND --help` describes each command.",
                     epilog=_spec_help())
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                        help="print the version and exit")
    progress_help = ("print no progress (default: a progress bar on a terminal, plain lines "
                     "otherwise)")
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help=progress_help)
    # --no-progress is accepted before or after the subcommand.
    common = _Parser(add_help=False)
    common.add_argument("--no-progress", dest="progress", action="store_false",
                        default=argparse.SUPPRESS, help=progress_help)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    surfaces = ", ".join(problems.problem_names("surface"))
    out_help = "output folder, created if needed (default: %(default)s)"

    def command(name, run, help, description, *, epilog=_spec_help(), out="optxform-out",
                training=False):
        """A subcommand with --out; ``training``: also PROBLEM|MODULE:FUNCTION (described
        after ``description``) and --batch-size."""
        if training:
            description = f"{description}\n\n{_problem_help()}"
        parser_ = sub.add_parser(name, parents=[common], help=help, description=description,
                                 epilog=epilog, formatter_class=_Formatter)
        parser_.set_defaults(run=run)
        parser_.add_argument("--out", default=out, help=out_help)
        if training:
            parser_.add_argument("problem",
                                 help="a built-in problem or MODULE:FUNCTION (see above)")
            parser_.add_argument("--batch-size", type=int, default=None, metavar="N",
                                 help="random minibatches of N rows of the data (default: "
                                 "full batch)")
        return parser_

    command("demo", cmd_demo, "run the built-in tour and write its figures",
                   "Run the built-in tour: six optimizers on Rosenbrock, Himmelblau and an "
                   "ill-conditioned bowl, two saddle points, the chooser and a learning-rate "
                   "range test on a small MLP. Writes every figure, the tables and "
                   "results.md to the output folder.",
                   epilog="exit status: 0 done; 130 interrupted (Ctrl-C keeps the finished "
                   "figures and their results.md)", out="optxform-demo")

    compare = command("compare", cmd_compare, "optimizer paths on a 2-D surface",
                      "Run optimizers from one start point on a 2-D test surface; write the "
                      "paths (PROBLEM_paths.png), the loss curves (PROBLEM_loss.png; for a "
                      "saddle, PROBLEM.png) and an animation (PROBLEM.gif), and print a "
                      f"table.\n\nsurfaces: {surfaces}")
    compare.add_argument("problem", help="a surface name (listed above)")
    compare.add_argument("--optimizers", nargs="+", metavar="SPEC",
                         help="optimizer specs, e.g. adam:lr=0.1 sgd:momentum=0.9; a spec "
                         "without lr gets the rate tuned for the surface (default: "
                         f"{' '.join(DEFAULT_COMPARE)})")
    compare.add_argument("--steps", type=int, default=0,
                         help="number of steps (default: the surface's own)")
    compare.add_argument("--start", nargs=2, type=float, metavar=("X", "Y"),
                         help="start point (default: the surface's own)")
    compare.add_argument("--tune", action="store_true",
                         help="pick each missing learning rate by racing a grid from 1e-4 to "
                         "10 first (default: off, use the surface's tuned rates)")
    compare.add_argument("--frames", type=int, default=50,
                         help="GIF frames (default: %(default)s)")
    compare.add_argument("--no-gif", action="store_true",
                         help="skip the animation (default: off, write it)")

    grid = ",".join(f"{lr:g}" for lr in DEFAULT_LEARNING_RATES)
    choose = command("choose", cmd_choose, "race optimizers x learning rates",
                     "Train every (optimizer, learning rate) pair from the same start for the "
                     "same steps; print the ranked table, write PROBLEM_choose.png and "
                     "PROBLEM_choose.csv. If no run converged there is no best: the command "
                     "says so and exits with status 1.", training=True)
    choose.add_argument("--optimizers", nargs="+", metavar="SPEC",
                        help="optimizer specs; one with its own lr runs only that rate "
                        f"(default: {' '.join(DEFAULT_CHOOSE)})")
    choose.add_argument("--lrs", metavar="LR,LR,...",
                        help=f"comma-separated learning rates (default: {grid})")
    choose.add_argument("--steps", type=int, default=200,
                        help="steps per run (default: %(default)s)")
    choose.add_argument("--top", type=int, default=10, metavar="N",
                        help="print the first N rows of the table; 0 prints all (default: "
                        "%(default)s; the csv has every row)")

    lr_find = command("lr-find", cmd_lr_find, "learning-rate range test (Smith 2017)",
                      "The learning-rate range test (Smith 2017): one run while the "
                      "learning rate grows exponentially from --min-lr to --max-lr; prints "
                      "the suggested rate (steepest descent of the smoothed loss) and writes "
                      "PROBLEM_lr_find_OPTIMIZER.png.", training=True)
    lr_find.add_argument("--optimizer", default="sgd", metavar="SPEC",
                         help="optimizer spec; its own lr is ignored (default: %(default)s)")
    lr_find.add_argument("--min-lr", type=float, default=1e-6, metavar="LR",
                         help="first learning rate of the sweep (default: %(default)g)")
    lr_find.add_argument("--max-lr", type=float, default=10.0, metavar="LR",
                         help="last learning rate of the sweep (default: %(default)g)")
    lr_find.add_argument("--steps", type=int, default=100,
                         help="steps of the sweep, one per rate (default: %(default)s)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    0: done. 1: no run converged, or the user's problem raised an exception (shown with the
    user's frames only). 2: bad input, one line on stderr. 130: interrupted (Ctrl-C); one
    line saying what was kept. A failed command removes the output folder it created if it
    is still empty.
    """
    parser = build_parser()
    command, args, output, code = PROG, None, None, EXIT_FAILED
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            code = EXIT_USAGE
            return code
        command = f"{PROG} {args.command}"
        output = args.output = Output(args.out)
        code = int(args.run(args))
    except UsageError as err:
        print(f"{command}: error: {err}", file=sys.stderr)
        code = EXIT_USAGE
    except Interrupted as err:
        print(f"{command}: interrupted; {err}", file=sys.stderr)
        code = EXIT_INTERRUPTED
    except KeyboardInterrupt:
        kept = output.kept() if output is not None else "nothing was written"
        print(f"{command}: interrupted; {kept}", file=sys.stderr)
        code = EXIT_INTERRUPTED
    except SystemExit as exit_:  # --help, --version
        code = int(exit_.code or 0)
    except Exception as err:
        # Raised by the user's code: their frames. Our ValueError about their input: one
        # line. Anything else while running their problem (e.g. jax rejecting a loss that
        # is not a scalar): their frames too. Anything else is a bug: the full traceback.
        problem = getattr(args, "problem", None) or ""
        if getattr(err, "_optxform_user_code", False):
            report_user_error(command, problem, err)
            code = EXIT_FAILED
        elif isinstance(err, (ValueError, ImportError)):
            print(f"{command}: error: {err}", file=sys.stderr)
            code = EXIT_USAGE
        elif is_user_problem(problem):
            report_user_error(command, problem, err)
            code = EXIT_FAILED
        else:
            raise
    finally:
        if code != 0 and output is not None:
            output.remove_if_empty()
    return code
