"""Problems to run optimizers on: 2-D test surfaces with known minima, small training tasks."""

from optxform.problems.catalog import *  # noqa: F401,F403
from optxform.problems.surfaces import *  # noqa: F401,F403
from optxform.problems.training import *  # noqa: F401,F403
from optxform.problems import catalog, surfaces, training  # noqa: E402

__all__ = [name for module in (catalog, surfaces, training) for name in module.__all__]
