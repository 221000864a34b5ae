"""Optimizer aliases: validation + docstring + ``return chain(...)``, mirroring transforms/."""

from optxform.optimizers.adabelief import adabelief as adabelief
from optxform.optimizers.adadelta import adadelta as adadelta
from optxform.optimizers.adafactor import adafactor as adafactor
from optxform.optimizers.adagrad import adagrad as adagrad
from optxform.optimizers.adam import adam as adam
from optxform.optimizers.adam import adamax as adamax
from optxform.optimizers.adam import adamw as adamw
from optxform.optimizers.adam import nadam as nadam
from optxform.optimizers.adam import radam as radam
from optxform.optimizers.schedule_free import schedule_free_adamw as schedule_free_adamw
from optxform.optimizers.schedule_free import schedule_free_sgd as schedule_free_sgd
from optxform.optimizers.adam import sparse_adam as sparse_adam
from optxform.optimizers.adan import adan as adan
from optxform.optimizers.ademamix import ademamix as ademamix
from optxform.optimizers.adopt import adopt as adopt
from optxform.optimizers.asgd import asgd as asgd
from optxform.optimizers.cautious import cautious_adamw as cautious_adamw
from optxform.optimizers.dadapt import dadapt_adam as dadapt_adam
from optxform.optimizers.dadapt import dadapt_sgd as dadapt_sgd
from optxform.optimizers.dadapt import prodigy as prodigy
from optxform.optimizers.kron import kron as kron
from optxform.optimizers.lbfgs import lbfgs as lbfgs
from optxform.optimizers.lion import lion as lion
from optxform.optimizers.mars import mars as mars
from optxform.optimizers.muon import muon as muon
from optxform.optimizers.muon import muon_with_adamw as muon_with_adamw
from optxform.optimizers.rmsprop import rmsprop as rmsprop
from optxform.optimizers.rprop import rprop as rprop
from optxform.optimizers.sgd import sgd as sgd
from optxform.optimizers.shampoo import shampoo as shampoo
from optxform.optimizers.soap import soap as soap

__all__ = [
    "adabelief",
    "adadelta",
    "adafactor",
    "adagrad",
    "adam",
    "adamax",
    "adamw",
    "adan",
    "ademamix",
    "adopt",
    "asgd",
    "cautious_adamw",
    "dadapt_adam",
    "dadapt_sgd",
    "kron",
    "lbfgs",
    "lion",
    "mars",
    "muon",
    "muon_with_adamw",
    "nadam",
    "prodigy",
    "radam",
    "rmsprop",
    "rprop",
    "schedule_free_adamw",
    "schedule_free_sgd",
    "sgd",
    "shampoo",
    "soap",
    "sparse_adam",
]
