"""Pictures (the ``viz`` extra: matplotlib, Pillow, imported lazily inside each function)."""

from optxform.viz.animation import animate_paths as animate_paths
from optxform.viz.plots import plot_choice as plot_choice
from optxform.viz.plots import plot_losses as plot_losses
from optxform.viz.plots import plot_lr_range as plot_lr_range
from optxform.viz.plots import plot_paths as plot_paths
from optxform.viz.plots import plot_saddle as plot_saddle
from optxform.viz.plots import surface_grid as surface_grid

__all__ = [
    "animate_paths",
    "plot_choice",
    "plot_losses",
    "plot_lr_range",
    "plot_paths",
    "plot_saddle",
    "surface_grid",
]
