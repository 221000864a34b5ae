"""Static figures: paths on contours, the saddle comparison, loss curves, chooser, LR test.

Matplotlib is imported inside each function (the ``viz`` extra: ``pip install
optxform[viz]``), and figures are built with ``matplotlib.figure.Figure`` directly, so no
GUI backend or pyplot global state is involved. Every function returns the Figure and, given
``path``, also writes it there (PNG, or any format matplotlib knows from the suffix).

Optimizer ``i`` (in the order given) has its own color, marker and line style, so ten
optimizers stay apart even in grey; legends sit outside the plotting area.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from optxform.explore import ChoiceResult, LRRangeResult, Trajectory
from optxform.problems import Surface

__all__ = ["plot_choice", "plot_losses", "plot_lr_range", "plot_paths", "plot_saddle",
           "surface_grid"]

# One color per optimizer, in the order given (matplotlib's tab10).
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf")


# Markers and dashes of optimizer i; no stars or crosses (those mark minima, saddles and
# diverged runs).
MARKERS = ("o", "s", "^", "D", "v", "P", "h", "<", ">", "p")
LINESTYLES = ("-", "--", "-.", ":", (0, (6, 2)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 1)),
              (0, (6, 2, 1, 2)), (0, (10, 3)), (0, (2, 2, 6, 2)))


def color(i: int) -> str:
    return COLORS[i % len(COLORS)]


def style(i: int) -> dict:
    """Matplotlib line properties of optimizer ``i``: color, marker and line style."""
    return {"color": color(i), "marker": MARKERS[i % len(MARKERS)],
            "linestyle": LINESTYLES[i % len(LINESTYLES)]}


def legend_outside(fig, handles=None) -> None:
    """The figure's legend to the right of its axes (constrained layout makes room)."""
    fig.legend(handles=handles, loc="outside right upper", fontsize=8, framealpha=0.9)


def rgb(hex_color: str) -> tuple[int, int, int]:
    return tuple(int(hex_color[i:i + 2], 16) for i in (1, 3, 5))


def palette_image():
    """A fixed 256-color palette for PNG/GIF output: the path colors (pure and blended with
    white and grey, for anti-aliased edges), gold, and a ramp of greys. An adaptive palette
    would merge a thin colored line into the greys around it."""
    from PIL import Image

    colors = []
    for c in COLORS + ("#ffd700",):
        r, g, b = rgb(c)
        colors += [(r, g, b), ((r + 255) // 2, (g + 255) // 2, (b + 255) // 2),
                   ((r + 160) // 2, (g + 160) // 2, (b + 160) // 2)]
    greys = np.linspace(0, 255, 256 - len(colors)).round().astype(int)
    colors += [(int(v), int(v), int(v)) for v in greys]
    palette = Image.new("P", (1, 1))
    palette.putpalette([v for c in colors for v in c])
    return palette


def _figure(width: float, height: float, ncols: int = 1, *, axes: bool = True):
    """A constrained-layout Figure with ``ncols`` axes in a row (or none: ``(fig, None)``)."""
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError("plotting needs matplotlib: pip install 'optxform[viz]'") from err
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, fig.subplots(1, ncols) if axes else None


def _save(fig, path):
    """Write ``fig`` to ``path``; a PNG is stored with a 256-color palette (a third the size)."""
    if path is None:
        return fig
    if str(path).lower().endswith(".png"):
        import io

        from PIL import Image

        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        buffer.seek(0)
        with Image.open(buffer) as image:
            image.convert("RGB").quantize(palette=palette_image(), dither=Image.Dither.NONE
                                          ).save(path, optimize=True)
    else:
        fig.savefig(path)
    return fig


def surface_grid(surface: Surface, resolution: int = 160) -> tuple[np.ndarray, ...]:
    """``(X, Y, Z)`` of ``surface`` on its bounds; ``Z`` is ``log(1 + f - f*)`` if log-scaled."""
    (x0, x1), (y0, y1) = surface.bounds
    xs = np.linspace(x0, x1, resolution, dtype=np.float32)
    ys = np.linspace(y0, y1, resolution, dtype=np.float32)
    X, Y = np.meshgrid(xs, ys)
    points = jnp.stack([jnp.asarray(X.ravel()), jnp.asarray(Y.ravel())], axis=1)
    Z = np.asarray(jax.jit(jax.vmap(surface.fn))(points), np.float64).reshape(X.shape)
    if surface.log_scale:
        Z = np.log1p(np.maximum(Z - (surface.minimum_value or 0.0), 0.0))
    return X, Y, Z


def finite_prefix(points: np.ndarray) -> np.ndarray:
    """The rows of a path before its first non-finite value (a diverged run stops there)."""
    points = np.asarray(points, np.float64).reshape(len(points), -1)
    bad = ~np.isfinite(points).all(axis=1)
    return points[: int(np.argmax(bad))] if bad.any() else points


def draw_surface(ax, surface: Surface, *, resolution: int = 160, filled: bool = True) -> None:
    """Contours of ``surface`` with its minima (stars) and saddle points (crosses)."""
    X, Y, Z = surface_grid(surface, resolution)
    if filled:
        ax.contourf(X, Y, Z, levels=30, cmap="Greys", alpha=0.45)
    ax.contour(X, Y, Z, levels=30, colors="0.45", linewidths=0.5)
    for mx, my in surface.minima:
        ax.plot(mx, my, marker="*", markersize=13, color="gold", markeredgecolor="k",
                zorder=5)
    for sx, sy in surface.saddles:
        ax.plot(sx, sy, marker="X", markersize=9, color="w", markeredgecolor="k", zorder=5)
    (x0, x1), (y0, y1) = surface.bounds
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("x")
    ax.set_ylabel("y")


def draw_paths(ax, runs: Sequence[Trajectory], *, upto: int | None = None) -> None:
    """Each run's path in its style, its marker at the last point (a run whose path became
    nan or inf stops at its last finite point and says so in its label)."""
    for i, run in enumerate(runs):
        points = finite_prefix(run.params)[: None if upto is None else upto + 1]
        if len(points) == 0:
            continue
        broken = len(finite_prefix(run.params)) < len(run.losses)
        # Earlier runs are drawn wider, so a run hidden under a later one still shows.
        ax.plot(points[:, 0], points[:, 1], **style(i), markevery=[len(points) - 1],
                label=run.label + (" (became nan/inf)" if broken else ""),
                linewidth=max(3.2 - 0.2 * i, 1.4), alpha=0.95, markersize=6,
                markeredgecolor="k", markeredgewidth=0.5)
    if runs:
        start = np.asarray(runs[0].params)[0]
        ax.plot(start[0], start[1], "o", color="k", markersize=6, zorder=6)


def plot_paths(surface: Surface, runs: Mapping[str, Trajectory] | Sequence[Trajectory],
               path=None, *, title: str | None = None, size: tuple[float, float] = (7.5, 5)):
    """Every optimizer's path on the contours of ``surface`` (start: black dot)."""
    runs = list(runs.values()) if isinstance(runs, Mapping) else list(runs)
    fig, ax = _figure(*size)
    draw_surface(ax, surface)
    draw_paths(ax, runs)
    steps = len(runs[0].losses) - 1 if runs else 0
    ax.set_title(title or f"{surface.name}: {steps} steps from {tuple(surface_start(runs))}")
    legend_outside(fig)
    return _save(fig, path)


def surface_start(runs: Sequence[Trajectory]) -> tuple[float, ...]:
    if not runs:
        return ()
    return tuple(round(float(v), 3) for v in np.asarray(runs[0].params)[0])


def _excess(losses: np.ndarray, floor: float | None) -> np.ndarray:
    losses = np.asarray(losses, np.float64)
    return losses - floor if floor is not None else losses


def plot_losses(runs: Mapping[str, Trajectory] | Sequence[Trajectory], path=None, *,
                minimum: float | None = None, log: bool = True, title: str | None = None,
                size: tuple[float, float] = (7.5, 4), ax=None):
    """Loss against step for each run; with ``minimum``, plots ``loss - minimum`` (log y).

    Given ``ax``, draws there (legend to its right) and returns its figure.
    """
    runs = list(runs.values()) if isinstance(runs, Mapping) else list(runs)
    own = ax is None
    fig, ax = _figure(*size) if own else (ax.figure, ax)
    positive = False
    for i, run in enumerate(runs):
        y = _excess(run.losses, minimum)
        if log:
            y = np.where(y > 0, y, np.nan)
        positive = positive or bool(np.any(np.isfinite(y) & (y > 0)))
        ax.plot(np.arange(len(y)), y, **style(i), markevery=_marks(len(y), i), markersize=4,
                linewidth=1.5, label=run.label)
    if log and positive:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss - minimum" if minimum is not None else "loss")
    ax.grid(True, which="major", alpha=0.3)
    if title:
        ax.set_title(title)
    if own:
        legend_outside(fig)
    else:
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, framealpha=0.9)
    return _save(fig, path)


def _marks(n: int, i: int = 0, count: int = 8) -> list[int]:
    """About ``count`` evenly spaced marker positions on a curve of ``n`` points, shifted a
    little for optimizer ``i`` so that the markers of different curves do not stack."""
    spacing = max(n - 1, 0) / (count - 1)
    shift = (i % len(MARKERS)) * spacing / len(MARKERS)
    return sorted({min(int(round(k + shift)), n - 1)
                   for k in np.linspace(0, max(n - 1, 0), count)})


def plot_saddle(surface: Surface, runs: Mapping[str, Trajectory] | Sequence[Trajectory],
                path=None, *, title: str | None = None,
                size: tuple[float, float] = (12.5, 4.6)):
    """How fast each optimizer leaves a saddle: the paths, and the distance from the saddle.

    Left: paths on the contours (the saddle is the white cross). Right: the distance from the
    saddle point against step on a log scale; a straight rising line is exponential escape
    along the negative-curvature direction, a flat start means the optimizer was stuck.
    """
    runs = list(runs.values()) if isinstance(runs, Mapping) else list(runs)
    fig, (left, right) = _figure(*size, ncols=2)
    draw_surface(left, surface)
    draw_paths(left, runs)
    left.set_title(f"{surface.name}: paths from {surface_start(runs)}")
    centre = np.asarray(surface.saddles[0] if surface.saddles else (0.0, 0.0))
    for i, run in enumerate(runs):
        points = finite_prefix(run.params)
        distance = np.linalg.norm(points - centre[None, :], axis=1)
        right.plot(np.arange(len(distance)), distance, **style(i), linewidth=1.5,
                   markevery=_marks(len(distance), i), markersize=4)
    (x0, x1), (y0, y1) = surface.bounds
    edge = math.hypot(max(abs(x0), abs(x1)), max(abs(y0), abs(y1)))
    right.axhline(edge, color="0.5", linestyle=":", linewidth=1)
    right.set_yscale("log")
    right.set_ylim(top=30.0 * edge)  # escaping runs keep going; the plot stops at 30x
    right.set_xlabel("step")
    right.set_ylabel("distance from the saddle point")
    right.set_title("escape from the saddle (dotted: edge of the left plot)")
    right.grid(True, which="major", alpha=0.3)
    legend_outside(fig)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def _log_axis(values) -> bool:
    """Whether ``values`` (the finite ones) can go on a log axis: some, all positive."""
    finite = [float(v) for v in values if math.isfinite(float(v))]
    return bool(finite) and min(finite) > 0.0


def plot_choice(result: ChoiceResult, path=None, *, title: str | None = None,
                size: tuple[float, float] = (12.5, 5.2)):
    """The chooser's results: every run's fate, final loss against learning rate, and the
    best runs' curves.

    Top left: the runs that diverged, one row per optimizer: a cross where the loss became
    nan or inf, an open circle where it ended above the start loss. Below: the final loss of
    the other runs against learning rate (log-log; dotted: the start loss). Right: the loss
    curve of each optimizer at its best learning rate. When no run converged, the titles
    say so.
    """
    from matplotlib.lines import Line2D

    fig, _ = _figure(*size, axes=False)
    labels = result.optimizers()
    grid = fig.add_gridspec(2, 2, height_ratios=(1.0 + 0.12 * len(labels), 4.0))
    fates = fig.add_subplot(grid[0, 0])
    left = fig.add_subplot(grid[1, 0], sharex=fates)
    right = fig.add_subplot(grid[:, 1])
    kept = [r.final_loss for r in result.rows if not r.diverged]
    log = _log_axis([*kept, result.initial_loss])
    best = {row.optimizer: row for row in result.best_per_optimizer()}
    handles = []
    for i, label in enumerate(labels):
        rows = sorted((r for r in result.rows if r.optimizer == label),
                      key=lambda r: r.learning_rate)
        ok = [r for r in rows if not r.diverged]
        left.plot([r.learning_rate for r in ok], [r.final_loss for r in ok], **style(i),
                  markersize=5, linewidth=1.4)
        for fate, marker, face in (("non-finite", "x", color(i)), ("rose", "o", "none")):
            lrs = [r.learning_rate for r in rows if r.fate == fate]
            fates.plot(lrs, [i] * len(lrs), linestyle="none", marker=marker, markersize=7,
                       color=color(i), markerfacecolor=face, markeredgewidth=1.6)
        row = best[label]
        curve = result.curves[(row.optimizer, row.learning_rate)]
        shown = np.where(np.isfinite(curve) & ((curve > 0) | (not log)), curve, np.nan)
        right.plot(np.arange(len(curve)), shown, **style(i), markevery=_marks(len(curve), i),
                   markersize=4, linewidth=1.4)
        handles.append(Line2D([], [], **style(i), linewidth=1.4, markersize=5,
                              label=f"{label} (lr {row.learning_rate:g}, diverged)"
                              if row.diverged else f"{label} (best lr {row.learning_rate:g})"))
    handles += [Line2D([], [], color="0.3", marker="x", linestyle="none", markersize=7,
                       label="loss became nan/inf"),
                Line2D([], [], color="0.3", marker="o", markerfacecolor="none",
                       linestyle="none", markersize=7, label="ended above the start"),
                Line2D([], [], color="0.5", linestyle=":", label="start loss")]
    diverged = sum(r.diverged for r in result.rows)
    fates.set_yticks(range(len(labels)), labels, fontsize=7)
    fates.set_ylim(len(labels) - 0.5, -0.5)
    fates.tick_params(labelbottom=False)
    fates.grid(True, axis="x", which="major", alpha=0.3)
    fates.set_title(f"diverged: {diverged} of {len(result.rows)} runs", fontsize=10)
    if math.isfinite(result.initial_loss):
        left.axhline(result.initial_loss, color="0.5", linestyle=":", linewidth=1)
    left.set_xscale("log")
    if log:
        left.set_yscale("log")
        right.set_yscale("log")
    left.set_xlabel("learning rate")
    left.set_ylabel(f"final loss after {result.steps} steps")
    left.set_title("final loss of the runs that converged" if result.converged
                   else "no run converged: every run diverged", fontsize=10)
    left.grid(True, which="major", alpha=0.3)
    right.set_xlabel("step")
    right.set_ylabel("loss")
    right.set_title("each optimizer at its best learning rate" if result.converged
                    else "the least bad run of each optimizer (none converged)")
    right.grid(True, which="major", alpha=0.3)
    legend_outside(fig, handles)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_lr_range(result: LRRangeResult, path=None, *, title: str | None = None,
                  size: tuple[float, float] = (6.5, 4)):
    """The LR range test: loss (raw and smoothed) against learning rate, suggestion marked.

    The loss axis is logarithmic (when every loss is positive) and clipped to the useful
    range: from just below the lowest smoothed loss to a little above the start, so a single
    spike of the raw loss cannot flatten the curve.
    """
    fig, ax = _figure(*size)
    ax.plot(result.learning_rates, result.losses, color="0.6", linewidth=1, label="loss")
    ax.plot(result.learning_rates, result.smoothed, color=color(0), linewidth=2,
            label="smoothed")
    ax.axvline(result.suggestion, color=color(3), linestyle="--", linewidth=1.2,
               label=f"suggestion {result.suggestion:.3g} (steepest)")
    ax.axvline(result.min_loss_lr / 10, color=color(2), linestyle=":", linewidth=1.2,
               label=f"min-loss lr / 10 = {result.min_loss_lr / 10:.3g}")
    ax.set_xscale("log")
    low = float(np.min(result.smoothed))
    high = float(max(result.smoothed[0], result.smoothed[-1]))
    if _log_axis(result.losses):
        ax.set_yscale("log")
        span = max(high / low, 1.05)
        ax.set_ylim(low / span ** 0.15, high * span ** 0.25)
    else:
        span = max(high - low, 1e-12)
        ax.set_ylim(low - 0.15 * span, high + 0.25 * span)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.set_title(title or f"learning-rate range test: {result.optimizer}")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="best", fontsize=8, framealpha=0.85)
    return _save(fig, path)
