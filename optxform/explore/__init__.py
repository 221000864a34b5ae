"""Racing optimizers: paths on surfaces, an optimizer/learning-rate chooser, an LR range test."""

from optxform.explore.chooser import *  # noqa: F401,F403
from optxform.explore.lr_finder import *  # noqa: F401,F403
from optxform.explore.specs import *  # noqa: F401,F403
from optxform.explore.trajectory import *  # noqa: F401,F403
from optxform.explore import chooser, lr_finder, specs, trajectory  # noqa: E402

__all__ = [name for module in (chooser, lr_finder, specs, trajectory) for name in module.__all__]
