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
from optxform.optimizers import adadelta, adafactor, adagrad, adam, asgd, lbfgs, lion, rmsprop, rprop, sgd  # noqa: E501

__all__ = [name for module in (adadelta, adafactor, adagrad, adam, asgd, lbfgs, lion, rmsprop,
                               rprop, sgd) for name in module.__all__]
