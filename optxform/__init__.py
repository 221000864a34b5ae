"""optxform: composable gradient transformations for JAX.

Every optimizer is a chain of small, pure ``(init, update)`` transforms; see
``optxform.core.base`` for the protocol and ../docs for the guides.
"""

from optxform.core import EmptyState as EmptyState
from optxform.core import GradientTransformation as GradientTransformation
from optxform.core import apply_updates as apply_updates
from optxform.core import chain as chain
from optxform.core import identity as identity
from optxform.core import named_chain as named_chain
from optxform.explore import *  # noqa: F401,F403
from optxform.fused import *  # noqa: F401,F403
from optxform.linesearch import *  # noqa: F401,F403
from optxform.optimizers import *  # noqa: F401,F403
from optxform.parallel import *  # noqa: F401,F403
from optxform.problems import *  # noqa: F401,F403
from optxform.quasi_newton import *  # noqa: F401,F403
from optxform.schedules import *  # noqa: F401,F403
from optxform.state import *  # noqa: F401,F403
from optxform.transforms import *  # noqa: F401,F403
from optxform.wrappers import *  # noqa: F401,F403

__version__ = "0.1.0"
