"""Optimizer aliases: validation + docstring + ``return chain(...)``, mirroring transforms/."""

from optxform.optimizers.adadelta import *  # noqa: F401,F403
from optxform.optimizers.adafactor import *  # noqa: F401,F403
from optxform.optimizers.adagrad import *  # noqa: F401,F403
from optxform.optimizers.adam import *  # noqa: F401,F403
from optxform.optimizers.asgd import *  # noqa: F401,F403
from optxform.optimizers.lbfgs import *  # noqa: F401,F403
from optxform.optimizers.lion import *  # noqa: F401,F403
from optxform.optimizers.rmsprop import *  # noqa: F401,F403
from optxform.optimizers.rprop import *  # noqa: F401,F403
from optxform.optimizers.sgd import *  # noqa: F401,F403
import sys as _sys  # noqa: E402

# Modules by sys.modules: each module's name is also the alias it exports, so the
# package attribute now holds the function, not the module.
_MODULES = ("adadelta", "adafactor", "adagrad", "adam", "asgd", "lbfgs", "lion", "rmsprop",
            "rprop", "sgd")

__all__ = [name for module in _MODULES
           for name in _sys.modules[f"{__name__}.{module}"].__all__]
