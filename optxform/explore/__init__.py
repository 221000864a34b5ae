"""Racing optimizers: paths on surfaces, an optimizer/learning-rate chooser, an LR range test."""

from optxform.explore.chooser import check_learning_rates as check_learning_rates
from optxform.explore.chooser import check_start_loss as check_start_loss
from optxform.explore.chooser import ChoiceResult as ChoiceResult
from optxform.explore.chooser import ChoiceRow as ChoiceRow
from optxform.explore.chooser import choose as choose
from optxform.explore.chooser import iter_choose as iter_choose
from optxform.explore.lr_finder import lr_range_test as lr_range_test
from optxform.explore.lr_finder import LRRangeResult as LRRangeResult
from optxform.explore.specs import optimizer_names as optimizer_names
from optxform.explore.specs import OptimizerSpec as OptimizerSpec
from optxform.explore.specs import parse_optimizer as parse_optimizer
from optxform.explore.specs import parse_optimizers as parse_optimizers
from optxform.explore.trajectory import run_optimizer as run_optimizer
from optxform.explore.trajectory import trajectories as trajectories
from optxform.explore.trajectory import Trajectory as Trajectory

__all__ = [
    "check_learning_rates",
    "check_start_loss",
    "ChoiceResult",
    "ChoiceRow",
    "choose",
    "iter_choose",
    "lr_range_test",
    "LRRangeResult",
    "optimizer_names",
    "OptimizerSpec",
    "parse_optimizer",
    "parse_optimizers",
    "run_optimizer",
    "trajectories",
    "Trajectory",
]
