"""An animated GIF of optimizers moving together on a surface.

The contour background (with legend) is drawn once by matplotlib; each frame then draws the
paths so far with Pillow, mapping data coordinates to pixels through the axes transform.
That keeps a 60-frame GIF to well under a second of drawing. Pillow and matplotlib are
imported inside the function (the ``viz`` extra).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from optxform.explore import Trajectory
from optxform.problems import Surface
from optxform.viz.plots import (color, draw_surface, finite_prefix, legend_outside,
                                palette_image, rgb, surface_start)

__all__ = ["animate_paths"]


def animate_paths(surface: Surface, runs: Mapping[str, Trajectory] | Sequence[Trajectory],
                  path, *, frames: int = 50, duration_ms: int = 80, hold_ms: int = 1500,
                  size: tuple[int, int] = (600, 400), title: str | None = None) -> str:
    """Write a looping GIF of the optimizers' paths growing step by step; returns ``path``.

    Args:
      surface: the surface the runs were made on.
      runs: trajectories (e.g. from ``optxform.trajectories``).
      path: the output file (``.gif``).
      frames: the number of frames (steps are sampled evenly; the last frame is the end).
      duration_ms: the time per frame; the last frame stays ``hold_ms``.
      size: ``(width, height)`` in pixels.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        from PIL import Image, ImageDraw
    except ImportError as err:
        raise ImportError("animations need matplotlib and Pillow: "
                          "pip install 'optxform[viz]'") from err
    runs = list(runs.values()) if isinstance(runs, Mapping) else list(runs)
    if not runs:
        raise ValueError("animate_paths needs at least one trajectory")
    if int(frames) < 2:
        raise ValueError(f"Invalid frames: {frames!r} (frames must be >= 2)")
    width, height = size
    fig = Figure(figsize=(width / 100, height / 100), dpi=100, layout="constrained")
    ax = fig.subplots()
    draw_surface(ax, surface, resolution=120)
    legend_outside(fig, [Line2D([], [], color=color(i), linewidth=2, label=run.label)
                         for i, run in enumerate(runs)])
    ax.set_title(title or f"{surface.name} from {surface_start(runs)}", fontsize=10)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    background = Image.frombuffer("RGBA", canvas.get_width_height(),
                                  bytes(canvas.buffer_rgba())).convert("RGB")
    _, canvas_height = canvas.get_width_height()
    box = ax.get_window_extent()

    def to_pixels(points: np.ndarray) -> list[tuple[float, float]]:
        # Far-away points (a run heading off to infinity) are clamped, then masked out.
        xy = np.clip(ax.transData.transform(points), -10 * width, 10 * width)
        return [(float(x), float(canvas_height - y)) for x, y in xy]

    clip = (box.x0, canvas_height - box.y1, box.x1, canvas_height - box.y0)
    paths = [to_pixels(finite_prefix(run.params)) for run in runs]
    palette = palette_image()
    steps = len(runs[0].losses) - 1
    marks = np.unique(np.linspace(0, steps, int(frames)).round().astype(int))
    images = []
    for mark in marks:
        layer = Image.new("RGBA", background.size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(layer)
        for i, points in enumerate(paths):
            shown = points[: mark + 1]
            if not shown:
                continue
            fill = rgb(color(i)) + (255,)
            if len(shown) > 1:
                draw.line(shown, fill=fill, width=max(4 - i // 2, 2), joint="curve")
            x, y = shown[-1]
            draw.ellipse((x - 4, y - 4, x + 4, y + 4), fill=fill, outline=(0, 0, 0, 255))
        mask = Image.new("L", background.size, 0)
        ImageDraw.Draw(mask).rectangle(clip, fill=255)
        alpha = Image.fromarray(np.minimum(np.asarray(layer.getchannel("A")),
                                           np.asarray(mask)).astype(np.uint8))
        layer.putalpha(alpha)
        frame = background.copy()
        frame.paste(layer, (0, 0), layer)
        ImageDraw.Draw(frame).text((clip[0] + 6, clip[1] + 4), f"step {mark}", fill=(0, 0, 0))
        images.append(frame.quantize(palette=palette, dither=Image.Dither.NONE))
    durations = [int(duration_ms)] * (len(images) - 1) + [int(hold_ms)]
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations,
                   loop=0, optimize=True, disposal=1)
    return str(path)
