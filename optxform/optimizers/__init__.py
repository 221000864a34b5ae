"""Optimizer aliases: validation + docstring + ``return chain(...)``, mirroring transforms/."""

from optxform.optimizers.adadelta import adadelta as adadelta
from optxform.optimizers.adafactor import adafactor as adafactor
from optxform.optimizers.adagrad import adagrad as adagrad
from optxform.optimizers.adam import adam as adam
from optxform.optimizers.adam import adamax as adamax
from optxform.optimizers.adam import adamw as adamw
from optxform.optimizers.adam import nadam as nadam
from optxform.optimizers.adam import radam as radam
from optxform.optimizers.adam import sparse_adam as sparse_adam
from optxform.optimizers.asgd import asgd as asgd
from optxform.optimizers.lbfgs import lbfgs as lbfgs
from optxform.optimizers.lion import lion as lion
from optxform.optimizers.muon import muon as muon
from optxform.optimizers.shampoo import shampoo as shampoo
from optxform.optimizers.soap import soap as soap
from optxform.optimizers.rmsprop import rmsprop as rmsprop
from optxform.optimizers.rprop import rprop as rprop
from optxform.optimizers.sgd import sgd as sgd

__all__ = [
    "adadelta",
    "adafactor",
    "adagrad",
    "adam",
    "adamax",
    "adamw",
    "asgd",
    "lbfgs",
    "lion",
    "muon",
    "nadam",
    "radam",
    "rmsprop",
    "rprop",
    "sgd",
    "sparse_adam",
    "shampoo",
    "soap",
]
