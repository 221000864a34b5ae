"""Building blocks: one family of update rules per file, each a GradientTransformation."""

from optxform.transforms.adam import scale_by_adam as scale_by_adam
from optxform.transforms.adam import scale_by_adamax as scale_by_adamax
from optxform.transforms.adam import scale_by_nadam as scale_by_nadam
from optxform.transforms.adam import scale_by_radam as scale_by_radam
from optxform.transforms.adam import scale_by_sparse_adam as scale_by_sparse_adam
from optxform.transforms.adam import scale_by_transformers_adam as scale_by_transformers_adam
from optxform.transforms.adam import ScaleByAdamaxState as ScaleByAdamaxState
from optxform.transforms.adam import ScaleByAdamState as ScaleByAdamState
from optxform.transforms.adam import ScaleByNadamState as ScaleByNadamState
from optxform.transforms.adam import ScaleByRadamState as ScaleByRadamState
from optxform.transforms.adam import ScaleBySparseAdamState as ScaleBySparseAdamState
from optxform.transforms.adam import ScaleByTransformersAdamState as ScaleByTransformersAdamState
from optxform.transforms.adan import scale_by_adan as scale_by_adan
from optxform.transforms.adan import ScaleByAdanState as ScaleByAdanState
from optxform.transforms.ademamix import scale_by_ademamix as scale_by_ademamix
from optxform.transforms.ademamix import ScaleByAdemamixState as ScaleByAdemamixState
from optxform.transforms.adopt import scale_by_adopt as scale_by_adopt
from optxform.transforms.adopt import ScaleByAdoptState as ScaleByAdoptState
from optxform.transforms.averaging import asgd_average as asgd_average
from optxform.transforms.averaging import asgd_averaging as asgd_averaging
from optxform.transforms.averaging import asgd_averaging_weight as asgd_averaging_weight
from optxform.transforms.averaging import asgd_learning_rate as asgd_learning_rate
from optxform.transforms.averaging import AsgdAveragingState as AsgdAveragingState
from optxform.transforms.belief import scale_by_belief as scale_by_belief
from optxform.transforms.belief import ScaleByBeliefState as ScaleByBeliefState
from optxform.transforms.clipping import clip as clip
from optxform.transforms.clipping import clip_by_block_rms as clip_by_block_rms
from optxform.transforms.clipping import clip_by_global_norm as clip_by_global_norm
from optxform.transforms.clipping import zero_nans as zero_nans
from optxform.transforms.clipping import ZeroNansState as ZeroNansState
from optxform.transforms.constraints import keep_params_nonnegative as keep_params_nonnegative
from optxform.transforms.dadapt import scale_by_dadapt_adam as scale_by_dadapt_adam
from optxform.transforms.dadapt import scale_by_dadapt_sgd as scale_by_dadapt_sgd
from optxform.transforms.dadapt import scale_by_prodigy as scale_by_prodigy
from optxform.transforms.dadapt import ScaleByDadaptAdamState as ScaleByDadaptAdamState
from optxform.transforms.dadapt import ScaleByDadaptSgdState as ScaleByDadaptSgdState
from optxform.transforms.dadapt import ScaleByProdigyState as ScaleByProdigyState
from optxform.transforms.factored import scale_by_factored_rms as scale_by_factored_rms
from optxform.transforms.factored import ScaleByFactoredRmsState as ScaleByFactoredRmsState
from optxform.transforms.kron import precond_update_prob_schedule as precond_update_prob_schedule
from optxform.transforms.kron import scale_by_kron as scale_by_kron
from optxform.transforms.kron import ScaleByKronState as ScaleByKronState
from optxform.transforms.mars import scale_by_mars as scale_by_mars
from optxform.transforms.mars import ScaleByMarsState as ScaleByMarsState
from optxform.transforms.momentum import trace as trace
from optxform.transforms.momentum import TraceState as TraceState
from optxform.transforms.orthogonal import EmaMomentumState as EmaMomentumState
from optxform.transforms.orthogonal import orthogonalize_by_newton_schulz as orthogonalize_by_newton_schulz
from optxform.transforms.orthogonal import scale_by_ema_momentum as scale_by_ema_momentum
from optxform.transforms.orthogonal import scale_by_muon as scale_by_muon
from optxform.transforms.rms import scale_by_adadelta as scale_by_adadelta
from optxform.transforms.rms import scale_by_adagrad as scale_by_adagrad
from optxform.transforms.rms import scale_by_rms as scale_by_rms
from optxform.transforms.rms import ScaleByAdadeltaState as ScaleByAdadeltaState
from optxform.transforms.rms import ScaleByAdagradState as ScaleByAdagradState
from optxform.transforms.rms import ScaleByCenteredRmsState as ScaleByCenteredRmsState
from optxform.transforms.rms import ScaleByRmsState as ScaleByRmsState
from optxform.transforms.scaling import scale as scale
from optxform.transforms.scaling import scale_by_learning_rate as scale_by_learning_rate
from optxform.transforms.scaling import scale_by_schedule as scale_by_schedule
from optxform.transforms.scaling import ScaleByLearningRateState as ScaleByLearningRateState
from optxform.transforms.scaling import ScaleByScheduleState as ScaleByScheduleState
from optxform.transforms.schedule_free import scale_by_bias_corrected_rms as scale_by_bias_corrected_rms
from optxform.transforms.schedule_free import scale_by_schedule_free as scale_by_schedule_free
from optxform.transforms.schedule_free import ScaleByBiasCorrectedRmsState as ScaleByBiasCorrectedRmsState
from optxform.transforms.schedule_free import ScaleByScheduleFreeState as ScaleByScheduleFreeState
from optxform.transforms.schedule_free import schedule_free_eval_params as schedule_free_eval_params
from optxform.transforms.shampoo import scale_by_shampoo as scale_by_shampoo
from optxform.transforms.shampoo import ShampooState as ShampooState
from optxform.transforms.sign import scale_by_lion as scale_by_lion
from optxform.transforms.sign import scale_by_rprop as scale_by_rprop
from optxform.transforms.sign import ScaleByLionState as ScaleByLionState
from optxform.transforms.sign import ScaleByRpropState as ScaleByRpropState
from optxform.transforms.soap import scale_by_soap as scale_by_soap
from optxform.transforms.soap import SoapState as SoapState
from optxform.transforms.weight_decay import add_decayed_weights as add_decayed_weights
from optxform.transforms.weight_decay import add_decoupled_weight_decay as add_decoupled_weight_decay
from optxform.transforms.weight_decay import add_decoupled_weight_decay_after_step as add_decoupled_weight_decay_after_step
from optxform.transforms.weight_decay import add_proximal_weight_decay as add_proximal_weight_decay
from optxform.transforms.weight_decay import DecoupledWeightDecayState as DecoupledWeightDecayState
from optxform.transforms.weight_decay import ProximalWeightDecayState as ProximalWeightDecayState
from optxform.tree.masks import resolve_mask as resolve_mask

__all__ = [
    "add_decayed_weights",
    "add_decoupled_weight_decay",
    "add_decoupled_weight_decay_after_step",
    "add_proximal_weight_decay",
    "asgd_average",
    "asgd_averaging",
    "asgd_averaging_weight",
    "asgd_learning_rate",
    "AsgdAveragingState",
    "clip",
    "clip_by_block_rms",
    "clip_by_global_norm",
    "DecoupledWeightDecayState",
    "EmaMomentumState",
    "keep_params_nonnegative",
    "orthogonalize_by_newton_schulz",
    "precond_update_prob_schedule",
    "ProximalWeightDecayState",
    "resolve_mask",
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
    "schedule_free_eval_params",
    "ShampooState",
    "SoapState",
    "trace",
    "TraceState",
    "zero_nans",
    "ZeroNansState",
]
