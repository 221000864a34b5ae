"""Measure every number quoted in docs/choosing.md and write docs/figures/choosing_numbers.md.

Run from the repository root (needs the ``viz`` and ``examples`` extras; about two minutes
on a 2-core CPU):

    python docs/figures/choosing_numbers.py            # all sections, rewrites the .md
    python docs/figures/choosing_numbers.py surfaces   # print some sections only

Each section returns its tables (markdown, as choosing.md shows them) and its facts: short
phrases that choosing.md quotes word for word. Everything but the timings is deterministic
(float32 on the CPU, fixed seeds); tests/test_docs_numbers.py recomputes the sections and
compares them with the committed file, and checks that choosing.md quotes them. Timings
carry the date, the machine and its load.
"""

from __future__ import annotations

import datetime
import math
import os
import pathlib
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
import optxform  # noqa: E402

OUT = pathlib.Path(__file__).with_suffix(".md")
GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0)
TEN = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw", "nadam", "radam",
       "lion")
# The rates `optxform demo` draws Rosenbrock's paths with.
ROSENBROCK_DEMO = ("sgd:lr=2e-3", "momentum:lr=1e-3", "adagrad:lr=0.3", "rmsprop:lr=0.01",
                   "adam:lr=0.1", "lion:lr=0.03")
SIX = ("sgd", "momentum", "adagrad", "rmsprop", "adam", "lion")


# ------------------------------------------------------------------------------ format


def num(value: float, digits: int = 2) -> str:
    """``digits`` significant digits, short exponents (``7.6e-6``), ``NaN`` for nan."""
    if not math.isfinite(value):
        return "NaN" if math.isnan(value) else str(value)
    text = f"{value:.{digits}g}"
    return re.sub(r"e([+-])0*(\d)", lambda m: "e" + ("-" if m.group(1) == "-" else "") + m.group(2),
                  text)


def point(xy, digits: int = 3) -> str:
    return f"({num(float(xy[0]), digits)}, {num(float(xy[1]), digits)})"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def rate_range(rates: list[float]) -> str:
    lo, hi = min(rates), max(rates)
    return f"{lo:g}" if lo == hi else f"{lo:g} – {hi:g}"


# ---------------------------------------------------------------------------- surfaces


def runs_on(name: str, specs, steps: int | None = None):
    surface = optxform.SURFACES[name]
    return surface, optxform.trajectories(surface.fn, surface.start, list(specs),
                                          steps or surface.steps)


def inside(surface, run) -> bool:
    (x0, x1), (y0, y1) = surface.bounds
    path = np.asarray(run.params)
    return bool(np.isfinite(path).all() and (path[:, 0] >= x0).all() and (path[:, 0] <= x1).all()
                and (path[:, 1] >= y0).all() and (path[:, 1] <= y1).all())


def grid_runs(name: str, names, steps: int | None = None):
    """Every optimizer at every grid rate: ``{(name, lr): run}``."""
    specs = [f"{n}:lr={lr:g}" for n in names for lr in GRID]
    surface, runs = runs_on(name, specs, steps)
    keyed = {}
    for n in names:
        for lr in GRID:
            keyed[(n, lr)] = runs[optxform.parse_optimizer(f"{n}:lr={lr:g}").label]
    return surface, keyed


def best_on_grid(surface, keyed, name):
    """The tuning rule of ``optxform compare --tune``: lowest final loss inside the plot."""
    mine = [(lr, run) for (n, lr), run in keyed.items() if n == name]
    ok = [(lr, run) for lr, run in mine if inside(surface, run)] or mine
    finite = [(lr, run) for lr, run in ok if math.isfinite(run.final_loss)] or ok
    return min(finite, key=lambda item: item[1].final_loss)


def section_rosenbrock():
    surface, runs = runs_on("rosenbrock", ROSENBROCK_DEMO, 300)
    label = {"momentum": "momentum 0.9"}
    ordered = sorted(runs.values(), key=lambda r: r.final_loss)
    rows = []
    for i, run in enumerate(ordered):
        loss = num(run.final_loss, 2 if run.final_loss < 1 else 3)
        rows.append([f"{label.get(run.spec.name, run.spec.name)}, lr {run.spec.learning_rate:g}",
                     f"**{loss}**" if i == 0 else loss, point(run.final_params)])
    tables = [table(["optimizer", "final loss", "end point"], rows)]
    _, more = runs_on("rosenbrock", ["sgd:lr=1e-3", "sgd:lr=3e-3", "nesterov:lr=1e-3"], 300)
    sgd2 = runs["sgd(lr=0.002)"]
    sgd1, sgd3, nest = more["sgd(lr=0.001)"], more["sgd(lr=0.003)"], more["nesterov(lr=0.001)"]
    _, keyed = grid_runs("rosenbrock", ["sgd", "adam", "amsgrad"], 300)
    sgd_best = min(((lr, r) for (n, lr), r in keyed.items() if n == "sgd"
                    and math.isfinite(r.final_loss)), key=lambda item: item[1].final_loss)
    adam_lr, adam = min(((lr, r) for (n, lr), r in keyed.items() if n == "adam"
                         and math.isfinite(r.final_loss)), key=lambda item: item[1].final_loss)
    facts = [
        f"the loss spikes to ~{float(num(float(np.nanmax(sgd2.losses)), 1)):g} in the first steps",
        f"(final loss {num(sgd1.final_loss, 3)}); at 3e-3 it "
        + ("diverges to NaN" if sgd3.diverged else f"ends at {num(sgd3.final_loss, 3)}"),
        f"SGD's best is {sgd_best[0]:g} (loss {num(sgd_best[1].final_loss, 3)})",
        f"Nesterov at the same lr ends at {num(nest.final_loss)} (vs "
        f"{num(runs['momentum(lr=0.001)'].final_loss)})",
        f"Adam's best rate is {adam_lr:g} (final loss {num(adam.final_loss)}, AMSGrad "
        f"{num(keyed[('amsgrad', adam_lr)].final_loss)})",
    ]
    return tables, facts


def section_ill_conditioned():
    surface, runs = runs_on("ill_conditioned", ["sgd:lr=0.03", "momentum:lr=0.01",
                                                "lion:lr=0.05", "lion:lr=0.1"], 100)
    tuned = {n: surface.learning_rates[n] for n in ("adagrad", "rmsprop", "adam")}
    _, best = runs_on("ill_conditioned", [f"{n}:lr={lr:g}" for n, lr in tuned.items()], 100)
    sgd = runs["sgd(lr=0.03)"]
    x, y = (float(v) for v in sgd.final_params)
    ada, rms, adam = (best[f"{n}(lr={lr:g})"].final_loss for n, lr in tuned.items())
    facts = [
        f"x = -4.5 * 0.97^100 = {num(-4.5 * 0.97 ** 100, 3)}, exactly the measured end point "
        f"({num(x, 3)}, {num(y, 1)})",
        f"**Momentum** (lr 0.01) gets to {num(runs['momentum(lr=0.01)'].final_loss)}",
        f"Adagrad (lr {tuned['adagrad']:g}) and RMSprop (lr {tuned['rmsprop']:g}) reach "
        f"{num(ada, 1)} and {num(rms, 1)} in 100 steps, Adam (lr {tuned['adam']:g}) {num(adam, 1)}",
        f"(best loss {num(runs['lion(lr=0.05)'].best_loss, 1)}) and then oscillates around it "
        f"(final loss {num(runs['lion(lr=0.05)'].final_loss, 3)} at lr 0.05, "
        f"{num(runs['lion(lr=0.1)'].final_loss, 3)} at lr 0.1)",
    ]
    return [], facts


def nearest_minimum(surface, xy):
    minima = np.asarray(surface.minima)
    return tuple(minima[np.argmin(np.linalg.norm(minima - np.asarray(xy), axis=1))])


def section_himmelblau():
    specs = ("sgd:lr=0.01", "momentum:lr=3e-3", "adagrad:lr=1", "rmsprop:lr=0.1",
             "adam:lr=0.3", "lion:lr=0.1", "rmsprop:lr=1")
    surface, runs = runs_on("himmelblau", specs, 150)
    names = {"sgd": "SGD", "momentum": "momentum", "adagrad": "Adagrad", "rmsprop": "RMSprop",
             "adam": "Adam", "lion": "Lion"}
    groups: dict[tuple, list[str]] = {}
    for spec in specs[:-1]:
        run = runs[optxform.parse_optimizer(spec).label]
        groups.setdefault(nearest_minimum(surface, run.final_params), []).append(
            names[run.spec.name])
    sentences = []
    for minimum, members in groups.items():
        who = members[0] if len(members) == 1 else ", ".join(members[:-1]) + " and " + members[-1]
        sentences.append(f"{who} end nearest {point(minimum)}")
    facts = ["; ".join(sentences),
             f"RMSprop at lr 1 instead ends nearest "
             f"{point(nearest_minimum(surface, runs['rmsprop(lr=1)'].final_params))}"]
    return [], facts


def section_rastrigin():
    names = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamax", "nadam",
             "radam", "lion")
    surface, keyed = grid_runs("rastrigin", names)
    start_loss = float(surface.fn(np.asarray(surface.start, np.float32)))
    finals_in = [r.final_loss for r in keyed.values() if inside(surface, r)
                 and math.isfinite(r.final_loss)]
    out = sorted(((r.final_loss, n, lr) for (n, lr), r in keyed.items()
                  if not inside(surface, r) and math.isfinite(r.final_loss)
                  and r.final_loss < min(finals_in)))
    global_hit = any(r.final_loss < 1e-3 for r in keyed.values())
    facts = [
        f"the runs whose path stayed inside the plot ended no lower than "
        f"{num(min(finals_in), 3)} (start {num(start_loss, 3)}, global minimum 0)",
        f"{len(out)} of {len(keyed)} runs ended lower, all by jumping out of the window"
        # Where a run that left the window ends is chaotic (one rounding moves it from one
        # far-away basin to another), so only who it was is quoted, not the value.
        + (f" (lowest: {out[0][1]} at lr {out[0][2]:g})" if out else ""),
        "none reached the global minimum" if not global_hit else "some reached the global minimum",
    ]
    return [], facts


def distances(run, saddle=(0.0, 0.0)):
    path = np.asarray(run.params, np.float64)
    return np.hypot(path[:, 0] - saddle[0], path[:, 1] - saddle[1])


def first_step(mask) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else None


def section_saddles():
    specs = [f"{n}:lr=0.05" for n in SIX]
    surface, runs = runs_on("saddle", specs, 100)
    (x0, x1), (y0, y1) = surface.bounds
    edge = math.hypot(max(abs(x0), abs(x1)), max(abs(y0), abs(y1)))
    passed = {}
    for n in SIX:
        passed[n] = first_step(distances(runs[f"{n}(lr=0.05)"]) > edge)
    order = sorted(SIX, key=lambda n: (passed[n] is None, passed[n] or 0))
    tables = [table(order, [[str(passed[n]) if passed[n] is not None else "not in 100"
                             for n in order]])]
    sgd, mom = distances(runs["sgd(lr=0.05)"]), distances(runs["momentum(lr=0.05)"])
    adaptive = min(float(distances(runs[f"{n}(lr=0.05)"]).min()) for n in ("adam", "lion", "rmsprop"))
    _, monkey = runs_on("monkey_saddle", specs, 100)
    mom_path = np.asarray(monkey["momentum(lr=0.05)"].params)
    nan_step = first_step(~np.isfinite(mom_path).all(axis=1))
    monkey_passed = [first_step(distances(monkey[f"{n}(lr=0.05)"]) > edge)
                     for n in ("rmsprop", "adam", "lion")]
    facts = [
        f"the edge of the plot (distance {num(edge, 3)})",
        f"after 100 steps y = 0.001 * 1.1^100 = {num(float(runs['sgd(lr=0.05)'].final_params[1]), 3)}",
        f"comes within {num(float(sgd.min()))} of the saddle at step {int(sgd.argmin())}",
        f"(within {num(float(mom.min()))} at step {int(mom.argmin())})",
        f"(distance {num(float(mom[-1]))} after 100 steps)",
        f"never come closer than {num(adaptive)} to the saddle",
        f"plain SGD is still within {num(float(distances(monkey['sgd(lr=0.05)'])[-1]))} of the "
        "saddle after 100 steps",
        f"runs off to NaN at step {nan_step}" if nan_step is not None else "stays finite",
        f"(distance {num(edge, 3)} passed at steps "
        + ", ".join(str(s) for s in monkey_passed) + ")",
    ]
    return tables, facts


# ----------------------------------------------------------------------------- chooser

CHOOSER_PROBLEMS = (  # (problem, steps, batch size)
    ("mlp_spirals", 300, None),
    ("mlp_digits", 200, None),
    ("mlp_digits", 300, 64),
    ("logreg_breast_cancer", 200, None),
)


def race(problem: str, steps: int, batch_size: int | None):
    loss_fn, params, data = optxform.get_problem(problem).load()
    return optxform.choose(loss_fn, params, data, TEN, GRID, steps, batch_size=batch_size)


def windows(result) -> dict[str, list[float]]:
    """Per optimizer: the rates whose final loss is within 2x of its best."""
    out = {}
    for best in result.best_per_optimizer():
        rows = [r for r in result.rows if r.optimizer == best.optimizer and not r.diverged]
        out[best.optimizer] = [r.learning_rate for r in rows if r.final_loss <= 2 * best.final_loss]
    return out


def chooser_table(result, window: bool) -> str:
    wins = windows(result)
    header = ["optimizer", "best lr", "final loss"] + (["2x window"] if window else [])
    rows = [[b.optimizer, f"{b.learning_rate:g}", num(b.final_loss)]
            + ([rate_range(wins[b.optimizer])] if window else [])
            for b in result.best_per_optimizer()]
    return table(header if window else header[:2] + ["final loss (all data)"], rows)


def section_chooser():
    results = {key: race(*key) for key in CHOOSER_PROBLEMS}
    spirals, digits, mini, logreg = (results[k] for k in CHOOSER_PROBLEMS)
    tables = [chooser_table(spirals, True), chooser_table(digits, True),
              chooser_table(mini, False)]
    best = {k: {b.optimizer: b for b in r.best_per_optimizer()} for k, r in results.items()}
    ranks = {k: [b.optimizer for b in r.best_per_optimizer()] for k, r in results.items()}
    log_best = best[CHOOSER_PROBLEMS[3]]
    log_win = windows(logreg)
    adam_lrs = [best[k]["adam"].learning_rate for k in CHOOSER_PROBLEMS]
    lion_lrs = [best[k]["lion"].learning_rate for k in CHOOSER_PROBLEMS]
    ratios = [a / l for a, l in zip(adam_lrs, lion_lrs)]
    full, small = best[CHOOSER_PROBLEMS[1]], best[CHOOSER_PROBLEMS[2]]
    down = [full[n].learning_rate / small[n].learning_rate for n in TEN]
    adamw_above = sum(best[k]["adamw"].final_loss > best[k]["adam"].final_loss
                      for k in CHOOSER_PROBLEMS)
    ordinal = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth",
               "ninth", "tenth"]
    lion_from = ranks[CHOOSER_PROBLEMS[1]].index("lion")
    lion_to = ranks[CHOOSER_PROBLEMS[2]].index("lion")
    worst = max(log_best.values(), key=lambda b: b.final_loss)
    steady = ("adam", "momentum", "nesterov")  # the rates all three keep within 2x
    common = sorted(set.intersection(*(set(log_win[n]) for n in steady)))
    facts = [
        f"initial loss {num(spirals.initial_loss)}",
        f"initial {num(digits.initial_loss, 3)}",
        f"initial {num(logreg.initial_loss)}): all ten optimizers end between "
        f"{num(min(b.final_loss for b in log_best.values()))} and {num(worst.final_loss)}",
        f"Adam is within 2x of its best from {min(log_win['adam']):g} to {max(log_win['adam']):g}",
        f"SGD from {min(log_win['sgd']):g} to {max(log_win['sgd']):g}",
        f"Lion only from {min(log_win['lion']):g} to {max(log_win['lion']):g}",
        f"On the convex problem Adam, momentum and Nesterov stay within 2x of their best from "
        f"{common[0]:g} to {common[-1]:g}",
        f"the worst final loss is {worst.optimizer}'s ({num(worst.final_loss)})",
        f"Adam's best ranged from {min(adam_lrs):g} to {max(adam_lrs):g}",
        f"moved the best rates {'down' if min(down) > 1 else 'by'} {min(down):.2g}x to "
        f"{max(down):.3g}x",
        f"(momentum {full['momentum'].learning_rate:g} -> {small['momentum'].learning_rate:g}, "
        f"nadam {full['nadam'].learning_rate:g} -> {small['nadam'].learning_rate:g}, "
        f"lion {full['lion'].learning_rate:g} -> {small['lion'].learning_rate:g})",
        f"(Lion went from {ordinal[lion_from]} to {ordinal[lion_to]})",
        f"its best was {min(ratios):.2g}x to {max(ratios):.3g}x smaller on our four problems "
        f"({rate_range(lion_lrs)} against Adam's {rate_range(adam_lrs)})",
        f"ended above Adam in training loss on {adamw_above} of the four problems",
        f"(with minibatches: {num(small['adamw'].final_loss)} against "
        f"{num(small['adam'].final_loss)})",
    ]
    timing = [f"digits MLP, {len(GRID)} rates x 200 full-batch steps: "
              f"{min(r.time_s for r in digits.rows):.1f}–{max(r.time_s for r in digits.rows):.1f} s "
              f"per optimizer after a {min(r.compile_s for r in digits.rows):.1f}–"
              f"{max(r.compile_s for r in digits.rows):.1f} s compile"]
    return tables, facts, timing


def section_lr_range():
    loss_fn, params, data = optxform.get_problem("mlp_spirals").load()
    found = {n: optxform.lr_range_test(loss_fn, params, data, n, min_lr=1e-5, max_lr=10.0,
                                       steps=100) for n in ("sgd", "adam")}
    sgd, adam = found["sgd"], found["adam"]
    facts = [f"it suggested {num(sgd.suggestion)} for SGD (min/10: {num(sgd.min_loss_lr / 10)}) "
             f"and {num(adam.suggestion)} for Adam (min/10: {num(adam.min_loss_lr / 10)})"]
    return [], facts


def demo_timing() -> list[str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([sys.executable, "-m", "optxform", "demo", "--out", out], check=True,
                       capture_output=True, env=dict(os.environ, PYTHONPATH=str(ROOT),
                                                     MPLBACKEND="Agg"))
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return [f"optxform demo: {cpu:.0f} s of CPU time, {wall:.0f} s of wall time"]


# -------------------------------------------------------------------------------- main

SECTIONS = {
    "rosenbrock": section_rosenbrock,
    "ill_conditioned": section_ill_conditioned,
    "himmelblau": section_himmelblau,
    "rastrigin": section_rastrigin,
    "saddles": section_saddles,
    "chooser": section_chooser,
    "lr_range": section_lr_range,
}


def render(name: str, result) -> str:
    tables, facts = result[0], result[1]
    parts = [f"## {name}", ""]
    for t in tables:
        parts += [t, ""]
    parts += [f"- {f}" for f in facts] + [""]
    return "\n".join(parts)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        model = [ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                 if ln.startswith("model name")][0]
        cpu = model
    except (OSError, IndexError):
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()}; load average {load}"


def main(argv: list[str]) -> None:
    names = argv or list(SECTIONS)
    texts, timings = [], []
    for name in names:
        result = SECTIONS[name]()
        texts.append(render(name, result))
        if len(result) > 2:
            timings += result[2]
    if argv:
        print("\n".join(texts))
        return
    timings += demo_timing()
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = [
        "# The numbers behind choosing.md",
        "",
        "Written by `python docs/figures/choosing_numbers.py` (from the repository root).",
        "Every table and number in choosing.md is copied from here; the tests recompute the",
        "sections below from the current code and compare.",
        "",
    ]
    footer = ["## timings", "", f"Measured {stamp} on {machine()} (not checked by tests).",
              ""] + [f"- {t}" for t in timings] + [""]
    OUT.write_text("\n".join(header + texts + footer))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main(sys.argv[1:])
