"""Problems to run optimizers on: 2-D test surfaces with known minima, small training tasks."""

from optxform.problems.catalog import get_problem as get_problem
from optxform.problems.catalog import problem_names as problem_names
from optxform.problems.surfaces import beale as beale
from optxform.problems.surfaces import booth as booth
from optxform.problems.surfaces import himmelblau as himmelblau
from optxform.problems.surfaces import ill_conditioned_quadratic as ill_conditioned_quadratic
from optxform.problems.surfaces import monkey_saddle as monkey_saddle
from optxform.problems.surfaces import rastrigin as rastrigin
from optxform.problems.surfaces import rosenbrock as rosenbrock
from optxform.problems.surfaces import saddle as saddle
from optxform.problems.surfaces import Surface as Surface
from optxform.problems.surfaces import SURFACES as SURFACES
from optxform.problems.training import logistic_regression_loss as logistic_regression_loss
from optxform.problems.training import mlp_loss as mlp_loss
from optxform.problems.training import TRAINING_PROBLEMS as TRAINING_PROBLEMS
from optxform.problems.training import TrainingProblem as TrainingProblem

__all__ = [
    "beale",
    "booth",
    "get_problem",
    "himmelblau",
    "ill_conditioned_quadratic",
    "logistic_regression_loss",
    "mlp_loss",
    "monkey_saddle",
    "problem_names",
    "rastrigin",
    "rosenbrock",
    "saddle",
    "Surface",
    "SURFACES",
    "TRAINING_PROBLEMS",
    "TrainingProblem",
]
