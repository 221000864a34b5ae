"""The ``optxform`` command line (also ``python -m optxform``).

Subcommands::

    optxform demo [--out DIR]
        Runs the built-in tour (paths on Rosenbrock, Himmelblau and an ill-conditioned
        bowl, two saddles, the chooser and an LR range test on the spirals MLP) and writes
        its figures and tables to DIR (default ./optxform-demo).

    optxform compare PROBLEM [--optimizers SPEC ...] [--steps N] [--start X Y] [--out DIR]
        Runs optimizers on a 2-D surface; writes PROBLEM_paths.png and PROBLEM_loss.png
        (for a saddle: PROBLEM.png, paths and escape speed), PROBLEM.gif, and prints a
        table. A spec without a learning rate uses the one tuned for that surface (with
        --tune: the best of a grid raced first).

    optxform choose PROBLEM|MODULE:FUNCTION [--optimizers ...] [--lrs 1e-3,1e-2,...]
        Trains every (optimizer, learning rate) pair, prints the ranked table, writes
        choose.png and choose.csv. MODULE:FUNCTION names your own problem: a function of
        no arguments returning (loss_fn, params, data) with loss_fn(params, data) -> loss
        (or (loss_fn, params) with loss_fn(params) -> loss).

    optxform lr-find PROBLEM|MODULE:FUNCTION [--optimizer SPEC] [--min-lr] [--max-lr]
        The learning-rate range test (Smith 2017); prints the suggestion, writes
        lr_find.png.

Optimizer specs are ``name[:key=value,...]``, e.g. ``adam:lr=0.1`` or
``sgd:lr=0.01,momentum=0.9``. Bad input (an unknown optimizer or problem, a bad
learning-rate list, an output folder that cannot be written) ends with exit code 2 and one
line on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import pathlib
import sys
import tempfile
import time
from typing import Any, Callable, Sequence

import numpy as np

from optxform import __version__, explore, problems
from optxform.explore.chooser import DEFAULT_LEARNING_RATES, format_table
from optxform.explore.progress import progress_bar

__all__ = ["main"]

PROG = "optxform"
DEFAULT_COMPARE = ("sgd", "momentum", "adagrad", "rmsprop", "adam", "lion")
DEFAULT_CHOOSE = ("sgd", "momentum", "adagrad", "rmsprop", "adam", "lion")


class UsageError(Exception):
    """Bad input from the user: reported in one line with exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        raise UsageError(f"{message} (see `{self.prog} --help`)")


# ----------------------------------------------------------------------------- helpers


def _out_dir(path: str) -> pathlib.Path:
    """Create ``path`` if needed and check a file can be written there."""
    folder = pathlib.Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".optxform-write-test-"):
            pass
    except OSError as err:
        raise UsageError(f"cannot write to output folder {str(folder)!r}: "
                         f"{err.strerror or err}") from None
    return folder


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


def load_problem(name: str) -> tuple[Callable, Any, Any, str]:
    """``(loss_fn, params, data, title)`` for a built-in problem or ``module:function``."""
    if ":" in name:
        module_name, _, function_name = name.partition(":")
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            function = getattr(importlib.import_module(module_name), function_name)
        except (ImportError, AttributeError) as err:
            raise UsageError(f"cannot load problem {name!r}: {err}") from None
        made = function()
        if not isinstance(made, tuple) or len(made) not in (2, 3) or not callable(made[0]):
            raise UsageError(f"{name} must return (loss_fn, params, data) or "
                             f"(loss_fn, params), got {type(made).__name__}")
        loss_fn, params, data = made if len(made) == 3 else (*made, None)
        return loss_fn, params, data, name
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
    out = _out_dir(args.out)
    steps = args.steps or surface.steps
    runs, written = run_compare(surface, specs, steps, args.start, out, gif=not args.no_gif,
                                frames=args.frames, progress=args.progress, tune=args.tune,
                                saddle=not surface.minima)
    _say(f"{surface.name}: {surface.description}")
    _say(compare_table(surface, runs))
    _say(f"wrote {', '.join(written)} to {out}")
    return 0


def cmd_choose(args) -> int:
    lrs = _parse_lrs(args.lrs) if args.lrs else DEFAULT_LEARNING_RATES
    specs = _specs(args.optimizers or [n for n in DEFAULT_CHOOSE
                                       if n in explore.optimizer_names()])
    if args.steps < 1:
        raise UsageError(f"--steps must be >= 1, got {args.steps}")
    out = _out_dir(args.out)
    loss_fn, params, data, title = load_problem(args.problem)
    from optxform import viz

    result = explore.choose(loss_fn, params, data, specs, lrs, args.steps,
                            batch_size=args.batch_size, progress=args.progress)
    _say(f"{title}; {args.steps} steps, initial loss {_fmt(result.initial_loss)}")
    _say(result.table(limit=args.top))
    best = result.best
    _say(f"best: {best.optimizer} with learning rate {best.learning_rate:g} "
         f"(final loss {_fmt(best.final_loss)})")
    for note in result.notes():
        _say(f"note: {note}")
    viz.plot_choice(result, out / "choose.png", title=title)
    (out / "choose.csv").write_text(result.table("csv") + "\n")
    _say(f"wrote choose.png, choose.csv to {out}")
    return 0


def cmd_lr_find(args) -> int:
    spec = _specs([args.optimizer])[0]
    out = _out_dir(args.out)
    loss_fn, params, data, title = load_problem(args.problem)
    from optxform import viz

    result = explore.lr_range_test(loss_fn, params, data, spec, min_lr=args.min_lr,
                                   max_lr=args.max_lr, steps=args.steps,
                                   batch_size=args.batch_size)
    _say(f"{title}")
    _say(str(result))
    viz.plot_lr_range(result, out / "lr_find.png")
    _say(f"wrote lr_find.png to {out}")
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
    out = _out_dir(args.out)
    from optxform import viz

    start = time.perf_counter()
    available = set(explore.optimizer_names())
    pick = lambda names: [n for n in names if n.partition(":")[0] in available]  # noqa: E731
    written, report = [], []
    stages = ([("paths", *s) for s in DEMO_PATHS] + [("saddle", *s) for s in DEMO_SADDLES]
              + [("choose",), ("lr_find",)])
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
            result = explore.choose(loss_fn, params, data, _specs(pick(names)), lrs, steps)
            viz.plot_choice(result, out / "choose.png", title=title)
            (out / "choose.csv").write_text(result.table("csv") + "\n")
            files = ["choose.png", "choose.csv"]
            report.append((f"choose: {title}, {steps} steps",
                           result.table(limit=12) + "\n\nbest per optimizer:\n"
                           + "\n".join(f"  {r.optimizer}: lr {r.learning_rate:g}, final loss "
                                       f"{_fmt(r.final_loss)}"
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
        written += files
    text = "\n\n".join(f"## {heading}\n\n```\n{body}\n```" for heading, body in report)
    (out / "results.md").write_text(f"# optxform demo results\n\n{text}\n")
    written.append("results.md")
    for heading, body in report:
        _say(f"\n{heading}\n{body}")
    _say(f"\nwrote {len(written)} files to {out.resolve()} in "
         f"{time.perf_counter() - start:.1f}s: {', '.join(written)}")
    return 0


# ------------------------------------------------------------------------------ parser


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="See and choose optimizers: paths on test "
                     "surfaces, saddle points, and an optimizer/learning-rate chooser.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                        help="print the version and exit")
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="no progress bars")
    # --no-progress is accepted before or after the subcommand.
    common = _Parser(add_help=False)
    common.add_argument("--no-progress", dest="progress", action="store_false",
                        default=argparse.SUPPRESS, help="no progress bars")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    surfaces = ", ".join(problems.problem_names("surface"))
    every = ", ".join(problems.problem_names())

    demo = sub.add_parser("demo", parents=[common],
                          help="run the built-in tour and write its figures")
    demo.add_argument("--out", default="optxform-demo", help="output folder "
                      "(default: %(default)s)")
    demo.set_defaults(run=cmd_demo)

    compare = sub.add_parser("compare", parents=[common],
                             help="optimizer paths on a 2-D surface",
                             description=f"Surfaces: {surfaces}.")
    compare.add_argument("problem", help="a surface name")
    compare.add_argument("--optimizers", nargs="+", metavar="SPEC",
                         help="optimizer specs, e.g. adam:lr=0.1 sgd:momentum=0.9 "
                         f"(default: {' '.join(DEFAULT_COMPARE)})")
    compare.add_argument("--steps", type=int, default=0,
                         help="number of steps (default: the surface's own)")
    compare.add_argument("--start", nargs=2, type=float, metavar=("X", "Y"),
                         help="start point (default: the surface's own)")
    compare.add_argument("--tune", action="store_true",
                         help="pick each learning rate by racing a grid from 1e-4 to 10 first")
    compare.add_argument("--frames", type=int, default=50, help="GIF frames (default 50)")
    compare.add_argument("--no-gif", action="store_true", help="skip the animation")
    compare.add_argument("--out", default="optxform-out", help="output folder "
                         "(default: %(default)s)")
    compare.set_defaults(run=cmd_compare)

    choose = sub.add_parser("choose", parents=[common],
                            help="race optimizers x learning rates",
                            description=f"Problems: {every}; or MODULE:FUNCTION returning "
                            "(loss_fn, params, data).")
    choose.add_argument("problem", help="a problem name or MODULE:FUNCTION")
    choose.add_argument("--optimizers", nargs="+", metavar="SPEC",
                        help=f"optimizer specs (default: {' '.join(DEFAULT_CHOOSE)})")
    choose.add_argument("--lrs", help="comma-separated learning rates "
                        "(default: 1e-4,3e-4,...,1)")
    choose.add_argument("--steps", type=int, default=200, help="steps per run (default 200)")
    choose.add_argument("--batch-size", type=int, default=None,
                        help="random minibatches of this size (default: full batch)")
    choose.add_argument("--top", type=int, default=None, help="print only the first N rows")
    choose.add_argument("--out", default="optxform-out", help="output folder "
                        "(default: %(default)s)")
    choose.set_defaults(run=cmd_choose)

    lr_find = sub.add_parser("lr-find", parents=[common],
                             help="learning-rate range test (Smith 2017)",
                             description=f"Problems: {every}; or MODULE:FUNCTION.")
    lr_find.add_argument("problem", help="a problem name or MODULE:FUNCTION")
    lr_find.add_argument("--optimizer", default="sgd", metavar="SPEC",
                         help="optimizer spec (default: sgd)")
    lr_find.add_argument("--min-lr", type=float, default=1e-6)
    lr_find.add_argument("--max-lr", type=float, default=10.0)
    lr_find.add_argument("--steps", type=int, default=100)
    lr_find.add_argument("--batch-size", type=int, default=None)
    lr_find.add_argument("--out", default="optxform-out", help="output folder "
                         "(default: %(default)s)")
    lr_find.set_defaults(run=cmd_lr_find)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 bad input)."""
    parser = build_parser()
    command = "optxform"
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        command = f"optxform {args.command}"
        return int(args.run(args))
    except UsageError as err:
        print(f"{command}: error: {err}", file=sys.stderr)
        return 2
    except (ValueError, ImportError) as err:
        print(f"{command}: error: {err}", file=sys.stderr)
        return 2
    except SystemExit as exit_:  # --help
        return int(exit_.code or 0)
