"""The protocol and the pieces every transform needs; imports nothing else from optxform."""

from optxform.core.apply import apply_updates as apply_updates
from optxform.core.base import EmptyState as EmptyState
from optxform.core.base import GradientTransformation as GradientTransformation
from optxform.core.base import OptState as OptState
from optxform.core.base import Params as Params
from optxform.core.base import ScalarOrSchedule as ScalarOrSchedule
from optxform.core.base import Schedule as Schedule
from optxform.core.base import Updates as Updates
from optxform.core.base import call_update as call_update
from optxform.core.base import chain as chain
from optxform.core.base import declares_hyperparameters as declares_hyperparameters
from optxform.core.base import identity as identity
from optxform.core.base import named_chain as named_chain
from optxform.core.interop import to_optax as to_optax
from optxform.core.trees import check_same_structure as check_same_structure
from optxform.core.trees import leaves_with_paths as leaves_with_paths
from optxform.core.trees import path_to_str as path_to_str

__all__ = [
    "EmptyState", "GradientTransformation", "OptState", "Params", "ScalarOrSchedule",
    "Schedule", "Updates", "apply_updates", "call_update", "chain", "check_same_structure",
    "declares_hyperparameters",
    "identity", "leaves_with_paths", "named_chain", "path_to_str", "to_optax",
]
