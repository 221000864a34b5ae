"""Schedules ``step -> value`` (torch.optim.lr_scheduler, keras and optax) and reduce_on_plateau.

Modules, one family each: ``decay`` (constant, linear, polynomial, exponential, step,
multistep, piecewise, inverse-time), ``cosine`` (cosine decay and annealing, warm-up,
warm restarts), ``cycles`` (one-cycle and cyclic, with their momentum companions),
``combine`` (join_schedules), ``plateau`` (reduce_on_plateau, a transform), and
``numerics`` (the shared exact arithmetic). See docs/schedules.md.
"""

from optxform.schedules.combine import *  # noqa: F401,F403
from optxform.schedules.cosine import *  # noqa: F401,F403
from optxform.schedules.cycles import *  # noqa: F401,F403
from optxform.schedules.decay import *  # noqa: F401,F403
from optxform.schedules.plateau import *  # noqa: F401,F403
import sys as _sys  # noqa: E402

_MODULES = ("combine", "cosine", "cycles", "decay", "plateau")

__all__ = [name for module in _MODULES
           for name in _sys.modules[f"{__name__}.{module}"].__all__]
