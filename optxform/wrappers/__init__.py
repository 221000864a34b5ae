"""Transforms that take a transform: masking, param groups, hyperparameter injection, ..."""

from optxform.wrappers.accumulation import MultiSteps as MultiSteps
from optxform.wrappers.accumulation import MultiStepsState as MultiStepsState
from optxform.wrappers.apply_if_finite import apply_if_finite as apply_if_finite
from optxform.wrappers.apply_if_finite import ApplyIfFiniteState as ApplyIfFiniteState
from optxform.wrappers.cautious import cautious as cautious
from optxform.wrappers.ema import ema as ema
from optxform.wrappers.ema import ema_params as ema_params
from optxform.wrappers.ema import EmaState as EmaState
from optxform.wrappers.flatten import flatten as flatten
from optxform.wrappers.inject import inject_hyperparams as inject_hyperparams
from optxform.wrappers.inject import InjectHyperparamsState as InjectHyperparamsState
from optxform.wrappers.lookahead import lookahead as lookahead
from optxform.wrappers.lookahead import LookaheadState as LookaheadState
from optxform.wrappers.low_memory import low_memory as low_memory
from optxform.wrappers.masked import masked as masked
from optxform.wrappers.masked import MaskedNode as MaskedNode
from optxform.wrappers.masked import MaskedState as MaskedState
from optxform.wrappers.multi_transform import freeze as freeze
from optxform.wrappers.multi_transform import multi_transform as multi_transform
from optxform.wrappers.multi_transform import MultiTransformState as MultiTransformState
from optxform.wrappers.router import param_labels as param_labels
from optxform.wrappers.router import ParamGroup as ParamGroup
from optxform.wrappers.router import route as route

__all__ = [
    "apply_if_finite",
    "ApplyIfFiniteState",
    "cautious",
    "ema",
    "low_memory",
    "ema_params",
    "EmaState",
    "flatten",
    "freeze",
    "inject_hyperparams",
    "InjectHyperparamsState",
    "lookahead",
    "LookaheadState",
    "masked",
    "MaskedNode",
    "MaskedState",
    "multi_transform",
    "MultiSteps",
    "MultiStepsState",
    "MultiTransformState",
    "param_labels",
    "ParamGroup",
    "route",
]
