"""Transforms that take a transform: masking, param groups, hyperparameter injection, ..."""

from optxform.wrappers.accumulation import *  # noqa: F401,F403
from optxform.wrappers.apply_if_finite import *  # noqa: F401,F403
from optxform.wrappers.ema import *  # noqa: F401,F403
from optxform.wrappers.flatten import *  # noqa: F401,F403
from optxform.wrappers.inject import *  # noqa: F401,F403
from optxform.wrappers.lookahead import *  # noqa: F401,F403
from optxform.wrappers.masked import *  # noqa: F401,F403
from optxform.wrappers.multi_transform import *  # noqa: F401,F403
import sys as _sys  # noqa: E402

# Modules by sys.modules: each module's name is also the alias it exports, so the
# package attribute now holds the function, not the module.
_MODULES = ("accumulation", "apply_if_finite", "ema", "flatten", "inject", "lookahead", "masked",
            "multi_transform")

__all__ = [name for module in _MODULES
           for name in _sys.modules[f"{__name__}.{module}"].__all__]
