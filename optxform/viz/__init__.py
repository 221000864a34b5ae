"""Pictures (the ``viz`` extra: matplotlib, Pillow, imported lazily inside each function)."""

from optxform.viz.animation import *  # noqa: F401,F403
from optxform.viz.plots import *  # noqa: F401,F403
from optxform.viz import animation, plots  # noqa: E402

__all__ = [name for module in (animation, plots) for name in module.__all__]
