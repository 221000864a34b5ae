"""The one registry of optimizers that the generic tests iterate over.

Each ``AliasCase`` names an optxform alias with keyword arguments, the oracle it must match
(``torch.optim`` class and kwargs, or an optax alias), and the test problem it runs on.
Adding an optimizer means adding rows here; tests/test_aliases.py does the rest.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Callable

import optxform


@dataclasses.dataclass(frozen=True)
class AliasCase:
    alias: str                       # optxform attribute name, e.g. "adam"
    kwargs: dict                     # optxform keyword arguments
    torch_cls: str | None = None     # torch.optim class name
    torch_kwargs: dict | None = None
    optax_alias: str | None = None   # when torch has no equivalent
    optax_kwargs: dict | None = None
    reference: str | None = None     # "module:Class", a torch optimizer from another package
    reference_kwargs: dict | None = None
    problem: str = "mlp"             # "mlp" (dense grads) or "embedding" (row-sparse grads)
    steps: int = 120

    @property
    def make(self) -> Callable[..., Any]:
        return getattr(optxform, self.alias)

    def build(self):
        return self.make(**self.kwargs)

    @property
    def id(self) -> str:
        opts = ",".join(f"{k}={v}" for k, v in sorted(self.kwargs.items()))
        return f"{self.alias}({opts})"


_TORCH_NAMES = {"learning_rate": "lr"}


def _to_torch(kwargs: dict) -> dict:
    out = {}
    for key, value in kwargs.items():
        if key in ("b1", "b2"):
            continue
        out[_TORCH_NAMES.get(key, key)] = value
    if "b1" in kwargs or "b2" in kwargs:
        out["betas"] = (kwargs.get("b1", 0.9), kwargs.get("b2", 0.999))
    return out


def _grid(alias: str, torch_cls: str, base: dict, options: dict[str, list],
          skip: Callable[[dict], bool] = lambda kw: False, **extra) -> list[AliasCase]:
    cases = []
    names = list(options)
    for values in itertools.product(*(options[n] for n in names)):
        kwargs = dict(base, **dict(zip(names, values)))
        if skip(kwargs):
            continue
        cases.append(AliasCase(alias, kwargs, torch_cls, _to_torch(kwargs), **extra))
    return cases


TF = [False, True]

TORCH_CASES: list[AliasCase] = [
    # Learning rates are chosen so that every row is well conditioned: torch's own
    # trajectory with and without FMA/vectorised kernels (ATEN_CPU_CAPABILITY=default vs
    # the native one) stays within a tenth of the parity tolerance. SGD at lr 0.05 with
    # momentum 0.9 and maximize, and RMSprop at lr 1e-2 or centered with alpha 0.9, are
    # chaotic at the 1-ulp level: torch disagrees with itself there by up to 1e4x the
    # tolerance (a sqrt that is not correctly rounded, an FMA or not, suffices).
    *_grid("sgd", "SGD", {"learning_rate": 0.01},
           {"momentum": [0.0, 0.9], "dampening": [0.0, 0.3], "nesterov": TF,
            "weight_decay": [0.0, 0.05], "maximize": TF},
           skip=lambda kw: kw["nesterov"] and (kw["momentum"] == 0 or kw["dampening"] != 0)),
    *_grid("asgd", "ASGD", {"learning_rate": 0.05},
           {"lambd": [1e-4, 1e-2], "t0": [1e6, 10.0], "alpha": [0.75],
            "weight_decay": [0.0, 0.05], "maximize": TF}),
    *_grid("adagrad", "Adagrad", {"learning_rate": 0.05},
           {"lr_decay": [0.0, 0.01], "weight_decay": [0.0, 0.05],
            "initial_accumulator_value": [0.0, 0.1], "maximize": TF}),
    *_grid("adadelta", "Adadelta", {},
           {"rho": [0.9, 0.5], "weight_decay": [0.0, 0.05], "maximize": TF}),
    *_grid("rmsprop", "RMSprop", {"learning_rate": 3e-4},
           {"alpha": [0.99, 0.9], "momentum": [0.0, 0.9], "centered": TF,
            "weight_decay": [0.0, 0.05], "maximize": TF},
           skip=lambda kw: kw["centered"] and kw["alpha"] == 0.9),
    *_grid("adam", "Adam", {"learning_rate": 0.01},
           {"weight_decay": [0.0, 0.05], "amsgrad": TF, "maximize": TF}),
    *_grid("adam", "Adam", {"learning_rate": 0.01, "b1": 0.5, "b2": 0.9, "eps": 1e-6}, {}),
    *_grid("adamw", "AdamW", {"learning_rate": 0.01},
           {"weight_decay": [0.0, 0.05], "amsgrad": TF, "maximize": TF}),
    *_grid("adamax", "Adamax", {"learning_rate": 0.01},
           {"weight_decay": [0.0, 0.05], "maximize": TF}),
    *_grid("nadam", "NAdam", {"learning_rate": 0.01},
           {"weight_decay": [0.0, 0.05], "decoupled_weight_decay": TF,
            "momentum_decay": [4e-3, 1e-2], "maximize": TF}),
    *_grid("radam", "RAdam", {"learning_rate": 0.01},
           {"weight_decay": [0.0, 0.05], "decoupled_weight_decay": TF, "maximize": TF}),
    *_grid("rprop", "Rprop", {"learning_rate": 0.01},
           {"etas": [(0.5, 1.2), (0.3, 1.5)], "step_sizes": [(1e-6, 50.0), (1e-3, 0.1)],
            "maximize": TF}),
    *_grid("sparse_adam", "SparseAdam", {"learning_rate": 0.01}, {"maximize": TF},
           problem="embedding"),
    *_grid("adafactor", "Adafactor", {"learning_rate": 0.01},
           {"beta2_decay": [-0.8, -0.5], "d": [1.0, 1.25], "weight_decay": [0.0, 0.05],
            "maximize": TF}),
    *_grid("adafactor", "Adafactor", {"learning_rate": 0.01, "eps": (1e-30, 1e-3)}, {}),
]

OPTAX_CASES: list[AliasCase] = [
    AliasCase("lion", {"learning_rate": 1e-3}, optax_alias="lion",
              optax_kwargs={"learning_rate": 1e-3, "weight_decay": 0.0}),
    AliasCase("lion", {"learning_rate": 1e-3, "b1": 0.8, "b2": 0.95, "weight_decay": 0.1},
              optax_alias="lion",
              optax_kwargs={"learning_rate": 1e-3, "b1": 0.8, "b2": 0.95, "weight_decay": 0.1}),
]

# Optimizers beyond torch.optim, each against its authors' code or a well-kept package
# (installed by the ``test`` extra): float32 within 1e-5 relative and float64 within 1e-10
# over ``steps`` updates (tests/test_aliases.py). ``reference`` is "module:Class".
REFERENCE_CASES: list[AliasCase] = [
]


# One case per alias with its default options: what jit/vmap/pmap/dtype tests iterate over.
DEFAULT_CASES: list[AliasCase] = [
    AliasCase("sgd", {"learning_rate": 0.05, "momentum": 0.9}),
    AliasCase("asgd", {}),
    AliasCase("adagrad", {}),
    AliasCase("adadelta", {}),
    AliasCase("rmsprop", {"centered": True, "momentum": 0.5}),
    AliasCase("adam", {}),
    AliasCase("adamw", {}),
    AliasCase("adamax", {}),
    AliasCase("nadam", {}),
    AliasCase("radam", {}),
    AliasCase("rprop", {}),
    AliasCase("sparse_adam", {}, problem="embedding"),
    AliasCase("adafactor", {}),
    AliasCase("lion", {}),
    AliasCase("muon", {"ns_dtype": "float32"}, problem="matrices"),  # bf16: rounding flips
    AliasCase("soap", {}, problem="square"),  # non-square: arbitrary null-space bases
    AliasCase("shampoo", {}, problem="matrices"),
    AliasCase("lookahead", {"inner": optxform.adam(1e-2), "sync_period": 5, "alpha": 0.5}),
]
