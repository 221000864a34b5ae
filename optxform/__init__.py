"""optxform: composable gradient transformations for JAX.

Every optimizer is a chain of small, pure ``(init, update)`` transforms; see
``optxform.core.base`` for the protocol and the ``docs/`` folder of the repository for
the guides. Everything below is re-exported explicitly; ``optxform.tree`` (tree math) and
``optxform.viz`` (plots, needs the ``viz`` extra) are subpackages.
"""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("optxform")
except _metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

from optxform.core import apply_updates as apply_updates
from optxform.core import chain as chain
from optxform.core import declares_hyperparameters as declares_hyperparameters
from optxform.core import EmptyState as EmptyState
from optxform.core import GradientTransformation as GradientTransformation
from optxform.core import identity as identity
from optxform.core import named_chain as named_chain
from optxform.core import to_optax as to_optax
from optxform.explore import check_learning_rates as check_learning_rates
from optxform.explore import ChoiceResult as ChoiceResult
from optxform.explore import ChoiceRow as ChoiceRow
from optxform.explore import choose as choose
from optxform.explore import lr_range_test as lr_range_test
from optxform.explore import LRRangeResult as LRRangeResult
from optxform.explore import optimizer_names as optimizer_names
from optxform.explore import OptimizerSpec as OptimizerSpec
from optxform.explore import parse_optimizer as parse_optimizer
from optxform.explore import parse_optimizers as parse_optimizers
from optxform.explore import run_optimizer as run_optimizer
from optxform.explore import trajectories as trajectories
from optxform.explore import Trajectory as Trajectory
from optxform.fused import label_mask as label_mask
from optxform.fused import pack_model as pack_model
from optxform.fused import pack_state as pack_state
from optxform.fused import packed as packed
from optxform.fused import packed_layout as packed_layout
from optxform.fused import PackedLayout as PackedLayout
from optxform.fused import PackedModel as PackedModel
from optxform.fused import PackedState as PackedState
from optxform.fused import unpack_state as unpack_state
from optxform.fused import TrainState as TrainState
from optxform.linesearch import backtracking_linesearch as backtracking_linesearch
from optxform.linesearch import BacktrackingLinesearchState as BacktrackingLinesearchState
from optxform.linesearch import zoom_linesearch as zoom_linesearch
from optxform.linesearch import ZoomLinesearchState as ZoomLinesearchState
from optxform.optimizers import adabelief as adabelief
from optxform.optimizers import adadelta as adadelta
from optxform.optimizers import adafactor as adafactor
from optxform.optimizers import adagrad as adagrad
from optxform.optimizers import adam as adam
from optxform.optimizers import adamax as adamax
from optxform.optimizers import adamw as adamw
from optxform.optimizers import adan as adan
from optxform.optimizers import ademamix as ademamix
from optxform.optimizers import adopt as adopt
from optxform.optimizers import asgd as asgd
from optxform.optimizers import cautious_adamw as cautious_adamw
from optxform.optimizers import dadapt_adam as dadapt_adam
from optxform.optimizers import dadapt_sgd as dadapt_sgd
from optxform.optimizers import kron as kron
from optxform.optimizers import lbfgs as lbfgs
from optxform.optimizers import lion as lion
from optxform.optimizers import mars as mars
from optxform.optimizers import muon as muon
from optxform.optimizers import muon_with_adamw as muon_with_adamw
from optxform.optimizers import nadam as nadam
from optxform.optimizers import prodigy as prodigy
from optxform.optimizers import radam as radam
from optxform.optimizers import rmsprop as rmsprop
from optxform.optimizers import rprop as rprop
from optxform.optimizers import schedule_free_adamw as schedule_free_adamw
from optxform.optimizers import schedule_free_sgd as schedule_free_sgd
from optxform.optimizers import sgd as sgd
from optxform.optimizers import shampoo as shampoo
from optxform.optimizers import soap as soap
from optxform.optimizers import sparse_adam as sparse_adam
from optxform.parallel import bytes_per_device as bytes_per_device
from optxform.parallel import constrain_sharding as constrain_sharding
from optxform.parallel import gather_to_host as gather_to_host
from optxform.parallel import load_sharded_state as load_sharded_state
from optxform.parallel import place_on as place_on
from optxform.parallel import replicated_sharding as replicated_sharding
from optxform.parallel import save_sharded_state as save_sharded_state
from optxform.parallel import sharded_init as sharded_init
from optxform.parallel import sharded_template as sharded_template
from optxform.parallel import state_shardings as state_shardings
from optxform.parallel import zero1 as zero1
from optxform.parallel import zero1_init as zero1_init
from optxform.parallel import zero1_spec as zero1_spec
from optxform.parallel import zero1_state_shardings as zero1_state_shardings
from optxform.problems import beale as beale
from optxform.problems import booth as booth
from optxform.problems import get_problem as get_problem
from optxform.problems import himmelblau as himmelblau
from optxform.problems import ill_conditioned_quadratic as ill_conditioned_quadratic
from optxform.problems import logistic_regression_loss as logistic_regression_loss
from optxform.problems import mlp_loss as mlp_loss
from optxform.problems import monkey_saddle as monkey_saddle
from optxform.problems import problem_names as problem_names
from optxform.problems import rastrigin as rastrigin
from optxform.problems import rosenbrock as rosenbrock
from optxform.problems import saddle as saddle
from optxform.problems import Surface as Surface
from optxform.problems import SURFACES as SURFACES
from optxform.problems import TRAINING_PROBLEMS as TRAINING_PROBLEMS
from optxform.problems import TrainingProblem as TrainingProblem
from optxform.quasi_newton import lbfgs_iterations as lbfgs_iterations
from optxform.quasi_newton import LbfgsIterationsState as LbfgsIterationsState
from optxform.quasi_newton import LbfgsMemory as LbfgsMemory
from optxform.quasi_newton import scale_by_lbfgs as scale_by_lbfgs
from optxform.quasi_newton import ScaleByLbfgsState as ScaleByLbfgsState
from optxform.schedules import constant_schedule as constant_schedule
from optxform.schedules import cosine_annealing as cosine_annealing
from optxform.schedules import cosine_annealing_warm_restarts as cosine_annealing_warm_restarts
from optxform.schedules import cosine_decay_restarts as cosine_decay_restarts
from optxform.schedules import cosine_decay_schedule as cosine_decay_schedule
from optxform.schedules import cyclic as cyclic
from optxform.schedules import cyclic_momentum as cyclic_momentum
from optxform.schedules import exponential_decay as exponential_decay
from optxform.schedules import inverse_time_decay as inverse_time_decay
from optxform.schedules import join_schedules as join_schedules
from optxform.schedules import linear_schedule as linear_schedule
from optxform.schedules import multistep_decay as multistep_decay
from optxform.schedules import one_cycle as one_cycle
from optxform.schedules import one_cycle_momentum as one_cycle_momentum
from optxform.schedules import piecewise_constant_decay as piecewise_constant_decay
from optxform.schedules import piecewise_constant_schedule as piecewise_constant_schedule
from optxform.schedules import polynomial_schedule as polynomial_schedule
from optxform.schedules import reduce_on_plateau as reduce_on_plateau
from optxform.schedules import ReduceOnPlateauState as ReduceOnPlateauState
from optxform.schedules import step_decay as step_decay
from optxform.schedules import warmup_cosine_decay_schedule as warmup_cosine_decay_schedule
from optxform.schedules import warmup_exponential_decay_schedule as warmup_exponential_decay_schedule
from optxform.schedules import wsd_schedule as wsd_schedule
from optxform.state import CheckpointError as CheckpointError
from optxform.tree.quantize import QuantizedBlocks as QuantizedBlocks
from optxform.tree.quantize import StateStorage as StateStorage
from optxform.state import extend_state as extend_state
from optxform.state import float32_state as float32_state
from optxform.state import load_state as load_state
from optxform.state import load_state_dict as load_state_dict
from optxform.state import save_state as save_state
from optxform.state import state_dict as state_dict
from optxform.state import state_keys as state_keys
from optxform.state import tree_get as tree_get
from optxform.state import tree_set as tree_set
from optxform.transforms import add_decayed_weights as add_decayed_weights
from optxform.transforms import add_decoupled_weight_decay as add_decoupled_weight_decay
from optxform.transforms import add_decoupled_weight_decay_after_step as add_decoupled_weight_decay_after_step
from optxform.transforms import add_proximal_weight_decay as add_proximal_weight_decay
from optxform.transforms import asgd_average as asgd_average
from optxform.transforms import asgd_averaging as asgd_averaging
from optxform.transforms import asgd_averaging_weight as asgd_averaging_weight
from optxform.transforms import asgd_learning_rate as asgd_learning_rate
from optxform.transforms import AsgdAveragingState as AsgdAveragingState
from optxform.transforms import clip as clip
from optxform.transforms import clip_by_block_rms as clip_by_block_rms
from optxform.transforms import clip_by_global_norm as clip_by_global_norm
from optxform.transforms import DecoupledWeightDecayState as DecoupledWeightDecayState
from optxform.transforms import EmaMomentumState as EmaMomentumState
from optxform.transforms import keep_params_nonnegative as keep_params_nonnegative
from optxform.transforms import orthogonalize_by_newton_schulz as orthogonalize_by_newton_schulz
from optxform.transforms import precond_update_prob_schedule as precond_update_prob_schedule
from optxform.transforms import ProximalWeightDecayState as ProximalWeightDecayState
from optxform.transforms import resolve_mask as resolve_mask
from optxform.transforms import scale as scale
from optxform.transforms import scale_by_adadelta as scale_by_adadelta
from optxform.transforms import scale_by_adagrad as scale_by_adagrad
from optxform.transforms import scale_by_adam as scale_by_adam
from optxform.transforms import scale_by_adamax as scale_by_adamax
from optxform.transforms import scale_by_adan as scale_by_adan
from optxform.transforms import scale_by_ademamix as scale_by_ademamix
from optxform.transforms import scale_by_adopt as scale_by_adopt
from optxform.transforms import scale_by_belief as scale_by_belief
from optxform.transforms import scale_by_bias_corrected_rms as scale_by_bias_corrected_rms
from optxform.transforms import scale_by_dadapt_adam as scale_by_dadapt_adam
from optxform.transforms import scale_by_dadapt_sgd as scale_by_dadapt_sgd
from optxform.transforms import scale_by_ema_momentum as scale_by_ema_momentum
from optxform.transforms import scale_by_factored_rms as scale_by_factored_rms
from optxform.transforms import scale_by_kron as scale_by_kron
from optxform.transforms import scale_by_learning_rate as scale_by_learning_rate
from optxform.transforms import scale_by_lion as scale_by_lion
from optxform.transforms import scale_by_mars as scale_by_mars
from optxform.transforms import scale_by_muon as scale_by_muon
from optxform.transforms import scale_by_nadam as scale_by_nadam
from optxform.transforms import scale_by_prodigy as scale_by_prodigy
from optxform.transforms import scale_by_radam as scale_by_radam
from optxform.transforms import scale_by_rms as scale_by_rms
from optxform.transforms import scale_by_rprop as scale_by_rprop
from optxform.transforms import scale_by_schedule as scale_by_schedule
from optxform.transforms import scale_by_schedule_free as scale_by_schedule_free
from optxform.transforms import scale_by_shampoo as scale_by_shampoo
from optxform.transforms import scale_by_soap as scale_by_soap
from optxform.transforms import scale_by_sparse_adam as scale_by_sparse_adam
from optxform.transforms import scale_by_transformers_adam as scale_by_transformers_adam
from optxform.transforms import ScaleByAdadeltaState as ScaleByAdadeltaState
from optxform.transforms import ScaleByAdagradState as ScaleByAdagradState
from optxform.transforms import ScaleByAdamaxState as ScaleByAdamaxState
from optxform.transforms import ScaleByAdamState as ScaleByAdamState
from optxform.transforms import ScaleByAdanState as ScaleByAdanState
from optxform.transforms import ScaleByAdemamixState as ScaleByAdemamixState
from optxform.transforms import ScaleByAdoptState as ScaleByAdoptState
from optxform.transforms import ScaleByBeliefState as ScaleByBeliefState
from optxform.transforms import ScaleByBiasCorrectedRmsState as ScaleByBiasCorrectedRmsState
from optxform.transforms import ScaleByCenteredRmsState as ScaleByCenteredRmsState
from optxform.transforms import ScaleByDadaptAdamState as ScaleByDadaptAdamState
from optxform.transforms import ScaleByDadaptSgdState as ScaleByDadaptSgdState
from optxform.transforms import ScaleByFactoredRmsState as ScaleByFactoredRmsState
from optxform.transforms import ScaleByKronState as ScaleByKronState
from optxform.transforms import ScaleByLearningRateState as ScaleByLearningRateState
from optxform.transforms import ScaleByLionState as ScaleByLionState
from optxform.transforms import ScaleByMarsState as ScaleByMarsState
from optxform.transforms import ScaleByNadamState as ScaleByNadamState
from optxform.transforms import ScaleByProdigyState as ScaleByProdigyState
from optxform.transforms import ScaleByRadamState as ScaleByRadamState
from optxform.transforms import ScaleByRmsState as ScaleByRmsState
from optxform.transforms import ScaleByRpropState as ScaleByRpropState
from optxform.transforms import ScaleByScheduleFreeState as ScaleByScheduleFreeState
from optxform.transforms import ScaleByScheduleState as ScaleByScheduleState
from optxform.transforms import ScaleBySparseAdamState as ScaleBySparseAdamState
from optxform.transforms import ScaleByTransformersAdamState as ScaleByTransformersAdamState
from optxform.transforms import schedule_free_eval_params as schedule_free_eval_params
from optxform.transforms import ShampooState as ShampooState
from optxform.transforms import SoapState as SoapState
from optxform.transforms import trace as trace
from optxform.transforms import TraceState as TraceState
from optxform.transforms import zero_nans as zero_nans
from optxform.transforms import ZeroNansState as ZeroNansState
from optxform.wrappers import apply_if_finite as apply_if_finite
from optxform.wrappers import low_memory as low_memory
from optxform.wrappers import ApplyIfFiniteState as ApplyIfFiniteState
from optxform.wrappers import cautious as cautious
from optxform.wrappers import ema as ema
from optxform.wrappers import ema_params as ema_params
from optxform.wrappers import EmaState as EmaState
from optxform.wrappers import flatten as flatten
from optxform.wrappers import freeze as freeze
from optxform.wrappers import inject_hyperparams as inject_hyperparams
from optxform.wrappers import InjectHyperparamsState as InjectHyperparamsState
from optxform.wrappers import lookahead as lookahead
from optxform.wrappers import LookaheadState as LookaheadState
from optxform.wrappers import masked as masked
from optxform.wrappers import MaskedNode as MaskedNode
from optxform.wrappers import MaskedState as MaskedState
from optxform.wrappers import multi_transform as multi_transform
from optxform.wrappers import MultiSteps as MultiSteps
from optxform.wrappers import MultiStepsState as MultiStepsState
from optxform.wrappers import MultiTransformState as MultiTransformState
from optxform.wrappers import param_labels as param_labels
from optxform.wrappers import ParamGroup as ParamGroup
from optxform.wrappers import route as route

from optxform import tree as tree
from optxform import viz as viz

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "adabelief",
    "adadelta",
    "adafactor",
    "adagrad",
    "adam",
    "adamax",
    "adamw",
    "adan",
    "add_decayed_weights",
    "add_decoupled_weight_decay",
    "add_decoupled_weight_decay_after_step",
    "add_proximal_weight_decay",
    "ademamix",
    "adopt",
    "apply_if_finite",
    "apply_updates",
    "ApplyIfFiniteState",
    "asgd",
    "asgd_average",
    "asgd_averaging",
    "asgd_averaging_weight",
    "asgd_learning_rate",
    "AsgdAveragingState",
    "backtracking_linesearch",
    "BacktrackingLinesearchState",
    "beale",
    "booth",
    "bytes_per_device",
    "cautious",
    "cautious_adamw",
    "chain",
    "check_learning_rates",
    "CheckpointError",
    "ChoiceResult",
    "ChoiceRow",
    "choose",
    "clip",
    "clip_by_block_rms",
    "clip_by_global_norm",
    "constant_schedule",
    "constrain_sharding",
    "cosine_annealing",
    "cosine_annealing_warm_restarts",
    "cosine_decay_restarts",
    "cosine_decay_schedule",
    "cyclic",
    "declares_hyperparameters",
    "cyclic_momentum",
    "dadapt_adam",
    "dadapt_sgd",
    "DecoupledWeightDecayState",
    "ema",
    "ema_params",
    "EmaMomentumState",
    "EmaState",
    "EmptyState",
    "exponential_decay",
    "extend_state",
    "float32_state",
    "flatten",
    "freeze",
    "gather_to_host",
    "get_problem",
    "GradientTransformation",
    "himmelblau",
    "identity",
    "ill_conditioned_quadratic",
    "inject_hyperparams",
    "InjectHyperparamsState",
    "inverse_time_decay",
    "join_schedules",
    "keep_params_nonnegative",
    "label_mask",
    "kron",
    "lbfgs",
    "lbfgs_iterations",
    "LbfgsIterationsState",
    "LbfgsMemory",
    "linear_schedule",
    "lion",
    "load_sharded_state",
    "load_state",
    "load_state_dict",
    "logistic_regression_loss",
    "lookahead",
    "low_memory",
    "LookaheadState",
    "lr_range_test",
    "LRRangeResult",
    "mars",
    "masked",
    "MaskedNode",
    "MaskedState",
    "mlp_loss",
    "monkey_saddle",
    "multi_transform",
    "multistep_decay",
    "MultiSteps",
    "MultiStepsState",
    "MultiTransformState",
    "muon",
    "muon_with_adamw",
    "nadam",
    "named_chain",
    "one_cycle",
    "one_cycle_momentum",
    "optimizer_names",
    "OptimizerSpec",
    "orthogonalize_by_newton_schulz",
    "precond_update_prob_schedule",
    "pack_model",
    "pack_state",
    "packed",
    "packed_layout",
    "PackedLayout",
    "PackedModel",
    "PackedState",
    "param_labels",
    "ParamGroup",
    "parse_optimizer",
    "parse_optimizers",
    "piecewise_constant_decay",
    "piecewise_constant_schedule",
    "place_on",
    "polynomial_schedule",
    "prodigy",
    "problem_names",
    "ProximalWeightDecayState",
    "radam",
    "rastrigin",
    "reduce_on_plateau",
    "ReduceOnPlateauState",
    "replicated_sharding",
    "resolve_mask",
    "rmsprop",
    "rosenbrock",
    "route",
    "rprop",
    "run_optimizer",
    "saddle",
    "save_sharded_state",
    "save_state",
    "scale",
    "scale_by_adadelta",
    "scale_by_adagrad",
    "scale_by_adam",
    "scale_by_adamax",
    "scale_by_adan",
    "scale_by_ademamix",
    "scale_by_adopt",
    "scale_by_belief",
    "scale_by_bias_corrected_rms",
    "scale_by_dadapt_adam",
    "scale_by_dadapt_sgd",
    "scale_by_ema_momentum",
    "scale_by_factored_rms",
    "scale_by_kron",
    "scale_by_lbfgs",
    "scale_by_learning_rate",
    "scale_by_lion",
    "scale_by_mars",
    "scale_by_muon",
    "scale_by_nadam",
    "scale_by_prodigy",
    "scale_by_radam",
    "scale_by_rms",
    "scale_by_rprop",
    "scale_by_schedule",
    "scale_by_schedule_free",
    "scale_by_shampoo",
    "scale_by_soap",
    "scale_by_sparse_adam",
    "scale_by_transformers_adam",
    "QuantizedBlocks",
    "ScaleByAdadeltaState",
    "ScaleByAdagradState",
    "ScaleByAdamaxState",
    "ScaleByAdamState",
    "ScaleByAdanState",
    "ScaleByAdemamixState",
    "ScaleByAdoptState",
    "ScaleByBeliefState",
    "ScaleByBiasCorrectedRmsState",
    "ScaleByCenteredRmsState",
    "ScaleByDadaptAdamState",
    "ScaleByDadaptSgdState",
    "ScaleByFactoredRmsState",
    "ScaleByKronState",
    "ScaleByLbfgsState",
    "ScaleByLearningRateState",
    "ScaleByLionState",
    "ScaleByMarsState",
    "ScaleByNadamState",
    "ScaleByProdigyState",
    "ScaleByRadamState",
    "ScaleByRmsState",
    "ScaleByRpropState",
    "ScaleByScheduleFreeState",
    "ScaleByScheduleState",
    "ScaleBySparseAdamState",
    "ScaleByTransformersAdamState",
    "schedule_free_adamw",
    "schedule_free_eval_params",
    "schedule_free_sgd",
    "sgd",
    "shampoo",
    "ShampooState",
    "sharded_init",
    "sharded_template",
    "soap",
    "SoapState",
    "sparse_adam",
    "state_dict",
    "StateStorage",
    "state_keys",
    "state_shardings",
    "step_decay",
    "Surface",
    "SURFACES",
    "to_optax",
    "trace",
    "TraceState",
    "TRAINING_PROBLEMS",
    "TrainingProblem",
    "TrainState",
    "trajectories",
    "Trajectory",
    "tree_get",
    "tree_set",
    "unpack_state",
    "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
    "wsd_schedule",
    "zero1",
    "zero1_init",
    "zero1_spec",
    "zero1_state_shardings",
    "zero_nans",
    "ZeroNansState",
    "zoom_linesearch",
    "ZoomLinesearchState",
]
