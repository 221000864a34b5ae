"""Schedules ``step -> value`` (torch.optim.lr_scheduler, keras and optax) and reduce_on_plateau.

Modules, one family each: ``decay`` (constant, linear, polynomial, exponential, step,
multistep, piecewise, inverse-time), ``cosine`` (cosine decay and annealing, warm-up,
warm restarts), ``cycles`` (one-cycle and cyclic, with their momentum companions),
``combine`` (join_schedules), ``wsd`` (warm-up, stable, decay), ``plateau``
(reduce_on_plateau, a transform), and ``numerics`` (the shared exact arithmetic). See docs/schedules.md.
"""

from optxform.schedules.combine import join_schedules as join_schedules
from optxform.schedules.cosine import cosine_annealing as cosine_annealing
from optxform.schedules.cosine import cosine_annealing_warm_restarts as cosine_annealing_warm_restarts
from optxform.schedules.cosine import cosine_decay_restarts as cosine_decay_restarts
from optxform.schedules.cosine import cosine_decay_schedule as cosine_decay_schedule
from optxform.schedules.cosine import warmup_cosine_decay_schedule as warmup_cosine_decay_schedule
from optxform.schedules.cycles import cyclic as cyclic
from optxform.schedules.cycles import cyclic_momentum as cyclic_momentum
from optxform.schedules.cycles import one_cycle as one_cycle
from optxform.schedules.cycles import one_cycle_momentum as one_cycle_momentum
from optxform.schedules.decay import constant_schedule as constant_schedule
from optxform.schedules.decay import exponential_decay as exponential_decay
from optxform.schedules.decay import inverse_time_decay as inverse_time_decay
from optxform.schedules.decay import linear_schedule as linear_schedule
from optxform.schedules.decay import multistep_decay as multistep_decay
from optxform.schedules.decay import piecewise_constant_decay as piecewise_constant_decay
from optxform.schedules.decay import piecewise_constant_schedule as piecewise_constant_schedule
from optxform.schedules.decay import polynomial_schedule as polynomial_schedule
from optxform.schedules.decay import step_decay as step_decay
from optxform.schedules.decay import warmup_exponential_decay_schedule as warmup_exponential_decay_schedule
from optxform.schedules.plateau import reduce_on_plateau as reduce_on_plateau
from optxform.schedules.plateau import ReduceOnPlateauState as ReduceOnPlateauState
from optxform.schedules.wsd import wsd_schedule as wsd_schedule

__all__ = [
    "constant_schedule",
    "cosine_annealing",
    "cosine_annealing_warm_restarts",
    "cosine_decay_restarts",
    "cosine_decay_schedule",
    "cyclic",
    "cyclic_momentum",
    "exponential_decay",
    "inverse_time_decay",
    "join_schedules",
    "linear_schedule",
    "multistep_decay",
    "one_cycle",
    "one_cycle_momentum",
    "piecewise_constant_decay",
    "piecewise_constant_schedule",
    "polynomial_schedule",
    "reduce_on_plateau",
    "ReduceOnPlateauState",
    "step_decay",
    "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
    "wsd_schedule",
]
