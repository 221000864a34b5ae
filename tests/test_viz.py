"""Figures stay readable: ten optimizers apart, legends outside, diverged runs not stacked."""

from __future__ import annotations

import math

import numpy as np
import pytest

import optxform
from optxform import viz
from optxform.explore.chooser import ChoiceResult, ChoiceRow
from optxform.explore.lr_finder import analyze_sweep

TEN = ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw", "nadam",
       "radam", "lion"]


def _extent(artist, fig):
    return artist.get_window_extent(fig.canvas.get_renderer())


def _draw(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()  # would raise on an axis that cannot be log-scaled
    return fig


def _assert_legend_outside(fig):
    _draw(fig)
    (legend,) = fig.legends
    box = _extent(legend, fig)
    figure_box = fig.bbox
    assert figure_box.x0 <= box.x0 and box.x1 <= figure_box.x1 + 1  # fully visible
    for ax in fig.axes:
        assert ax.get_legend() is None
        assert not box.overlaps(_extent(ax, fig)), "the legend covers a plot"


@pytest.fixture(scope="module")
def ten_runs():
    specs = [f"{name}:lr=0.01" for name in TEN]
    return optxform.trajectories(optxform.booth, [-5.0, -5.0], specs, steps=10)


def test_ten_optimizers_have_distinct_styles_and_an_outside_legend(ten_runs):
    fig = viz.plot_paths(optxform.SURFACES["booth"], ten_runs)
    lines = [line for line in fig.axes[0].lines if not line.get_label().startswith("_")]
    assert len(lines) == 10
    assert len({line.get_marker() for line in lines}) == 10
    assert {line.get_linestyle() for line in lines} >= {"-", "--", "-.", ":"}
    assert len({line.get_color() for line in lines}) == 10
    _assert_legend_outside(fig)


def test_loss_and_saddle_figures_put_their_legend_outside(ten_runs):
    _assert_legend_outside(viz.plot_losses(ten_runs, minimum=0.0))
    _assert_legend_outside(viz.plot_saddle(optxform.SURFACES["saddle"], ten_runs))


def _result(fates: dict[tuple[str, float], float], initial: float = 1.0) -> ChoiceResult:
    rows = [ChoiceRow(0, name, lr, loss, min(loss, initial) if math.isfinite(loss) else
                      initial, not (math.isfinite(loss) and loss <= initial), 0.0, 0.0)
            for (name, lr), loss in fates.items()]
    rows = [row._replace(rank=i + 1) for i, row in
            enumerate(sorted(rows, key=lambda r: (r.diverged, r.final_loss
                                                  if math.isfinite(r.final_loss) else 1e300)))]
    curves = {key: np.linspace(initial, loss if math.isfinite(loss) else np.nan, 6)
              for key, loss in fates.items()}
    return ChoiceResult(rows, curves, initial, 5)


def test_choice_figure_marks_every_diverged_run_in_its_own_place():
    # Every optimizer diverges at the same two rates: their marks must not coincide.
    fates = {}
    for name in TEN:
        fates.update({(name, 0.01): 0.5, (name, 1.0): math.nan, (name, 10.0): 5.0})
    fig = viz.plot_choice(_result(fates))
    fates_ax = fig.axes[0]
    points = [(x, y) for line in fates_ax.lines
              for x, y in zip(line.get_xdata(), line.get_ydata())]
    assert len(points) == 20 and len(set(points)) == 20
    markers = {line.get_marker() for line in fates_ax.lines if len(line.get_xdata())}
    assert markers == {"x", "o"}  # nan/inf and "ended above the start" look different
    assert [t.get_text() for t in fates_ax.get_yticklabels()] == TEN
    assert fates_ax.get_title() == "diverged: 20 of 30 runs"
    _assert_legend_outside(fig)


def test_choice_figure_when_nothing_converged_says_so():
    fig = viz.plot_choice(_result({("sgd", 1.0): math.nan, ("sgd", 10.0): math.inf,
                                   ("adam", 1.0): 7.0}))
    _draw(fig)
    titles = [ax.get_title() for ax in fig.axes]
    assert "no run converged: every run diverged" in titles
    assert "the least bad run of each optimizer (none converged)" in titles


def test_lr_range_plot_is_log_scaled_and_clipped_to_the_useful_range():
    lrs = np.logspace(-4, 0, 41)
    losses = 1.0 - 0.5 * np.tanh(3 * (np.log10(lrs) + 2))
    losses[20] = 1e4  # one spike
    result = analyze_sweep(lrs, losses, smoothing=0.0, stop_factor=1e6)
    ax = viz.plot_lr_range(result).axes[0]
    assert ax.get_yscale() == "log"
    bottom, top = ax.get_ylim()
    assert bottom < float(result.smoothed.min()) and top > float(result.smoothed[0])
    assert top < 10.0  # the spike is clipped, not the scale of the axis


def test_lr_range_plot_of_negative_losses_stays_linear():
    lrs = np.logspace(-4, 0, 30)
    result = analyze_sweep(lrs, -np.linspace(1.0, 2.0, 30), smoothing=0.0)
    ax = viz.plot_lr_range(result).axes[0]
    assert ax.get_yscale() == "linear"
    bottom, top = ax.get_ylim()
    assert bottom < -2.0 and -1.0 < top < 0.0
