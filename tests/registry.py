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
    alias: str                       # optxform attribute name, e.g. "adam", or a test-side
                                     # factory "module:function" (a chain of blocks)
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
        if ":" in self.alias:
            import importlib

            module, _, name = self.alias.partition(":")
            return getattr(importlib.import_module(module), name)
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


def _combinations(base: dict, options: dict[str, list],
                  skip: Callable[[dict], bool]) -> list[dict]:
    """``base`` updated with every combination of ``options``, except those ``skip`` drops."""
    names = list(options)
    every = (dict(base, **dict(zip(names, values)))
             for values in itertools.product(*(options[n] for n in names)))
    return [kwargs for kwargs in every if not skip(kwargs)]


def _grid(alias: str, torch_cls: str, base: dict, options: dict[str, list],
          skip: Callable[[dict], bool] = lambda kw: False, **extra) -> list[AliasCase]:
    return [AliasCase(alias, kwargs, torch_cls, _to_torch(kwargs), **extra)
            for kwargs in _combinations(base, options, skip)]


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
    # optax's eps_root and nesterov on adam and adamw (optax's conventions when set). With
    # b2 = 0.999 the float32 trajectories of two correct orders of rounding part by up to
    # 9x the tolerance at lr 0.01 (float64: 1e-13): b2 = 0.99 keeps the rows well
    # conditioned; tests/test_cautious.py checks the b2 = 0.999 rows in float64.
    *[AliasCase(alias, dict(base, eps_root=eps_root, nesterov=nesterov), optax_alias=alias,
                optax_kwargs=dict(base, eps_root=eps_root, nesterov=nesterov))
      for alias, base in (("adam", {"learning_rate": 0.01, "b2": 0.99}),
                          ("adamw", {"learning_rate": 0.01, "b2": 0.99, "weight_decay": 0.05}))
      for eps_root, nesterov in ((1e-8, False), (0.0, True), (1e-6, True))],
    AliasCase("adam", {"learning_rate": 0.01, "b1": 0.5, "b2": 0.9, "eps": 1e-6,
                       "nesterov": True}, optax_alias="adam",
              optax_kwargs={"learning_rate": 0.01, "b1": 0.5, "b2": 0.9, "eps": 1e-6,
                            "nesterov": True}),
]

class StepPower:
    """``step -> scale * step ** power`` with a stable repr (test ids): a clip bound that
    both a reference (a Python int step) and optxform (a JAX scalar step) can call."""

    def __init__(self, scale: float, power: float):
        self.scale, self.power = scale, power

    def __call__(self, step):
        return self.scale * step ** self.power

    def __repr__(self) -> str:
        return f"{self.scale}*step**{self.power}"


def _reference_rows(alias: str, reference: str, base: dict, rows: list[dict],
                    betas: tuple[str, ...] = ("b1", "b2")) -> list[AliasCase]:
    """Rows against ``reference``: ``learning_rate`` is its ``lr``; ``b1``, ``b2``, ...
    (all of ``betas`` or none) its ``betas`` tuple; every other argument keeps its name."""
    cases = []
    for row in rows:
        kwargs = dict(base, **row)
        ref = {_TORCH_NAMES.get(k, k): v for k, v in kwargs.items() if k not in betas}
        if any(b in kwargs for b in betas):
            ref["betas"] = tuple(kwargs[b] for b in betas)
        cases.append(AliasCase(alias, kwargs, reference=reference, reference_kwargs=ref,
                               steps=100))
    return cases


# pytorch-optimizer's weight decay: none, coupled (L2 in the gradient), decoupled
# (theta *= 1 - lr wd) and fixed (theta *= 1 - wd).
_DECAYS = [{"weight_decay": 0.0},
           {"weight_decay": 0.05, "weight_decouple": False},
           {"weight_decay": 0.05, "weight_decouple": True},
           {"weight_decay": 0.05, "weight_decouple": True, "fixed_decay": True}]


def _with_decays(rows: list[dict]) -> list[dict]:
    return [dict(row, **decay) for row in rows for decay in _DECAYS]


# Optimizers beyond torch.optim, each against its authors' code or a well-kept package
# (installed by the ``test`` extra): float32 within 1e-5 relative and float64 within 1e-10
# over ``steps`` updates (tests/test_aliases.py). ``reference`` is "module:Class".
def _reference_grid(alias: str, reference: str, base: dict, options: dict[str, list],
                    skip: Callable[[dict], bool] = lambda kw: False,
                    renamed: dict[str, str] | None = None, steps: int = 100) -> list[AliasCase]:
    """Rows for every combination of ``options`` against ``reference`` ("module:Class"),
    whose keyword arguments are torch's names (``betas``, ``lr``) and ``renamed``'s."""
    renamed = renamed or {}
    return [AliasCase(alias, kwargs, reference=reference, steps=steps,
                      reference_kwargs={renamed.get(k, k): v
                                        for k, v in _to_torch(kwargs).items()})
            for kwargs in _combinations(base, options, skip)]


# D-Adaptation and Prodigy rows take learning rates below their default of 1: at 1 the
# estimated step is so large on this problem that the trajectory is chaotic (a 1e-16
# difference in the estimate's sums doubles every few steps, in float64 too), and no two
# summation orders agree over 100 steps. Prodigy starts from d0=1e-4, so that its estimate
# grows within 100 steps at the smaller learning rate.
_PRODIGY = "prodigyopt:Prodigy"
_DADAPT_ADAM = "dadaptation:DAdaptAdam"
_DADAPT_SGD = "dadaptation:DAdaptSGD"
_PRODIGY_BASE = {"learning_rate": 0.03, "d0": 1e-4}

def _to_reference(kwargs: dict, betas: dict[str, tuple[tuple[str, float], ...]]) -> dict:
    """optxform keyword arguments as a ``pytorch-optimizer`` class takes them: ``lr``, and
    each ``betas``-like tuple (``betas``, ``betas_1d``) from its ``b*`` names and defaults."""
    out = {_TORCH_NAMES.get(k, k): v for k, v in kwargs.items()
           if not any(k == name for group in betas.values() for name, _ in group)}
    for tuple_name, group in betas.items():
        if any(name in kwargs for name, _ in group):
            out[tuple_name] = tuple(kwargs.get(name, default) for name, default in group)
    return out


def _reference_grid_with_betas(alias: str, reference: str, betas: dict, base: dict,
                    options: dict[str, list], skip: Callable[[dict], bool] = lambda kw: False,
                    steps: int = 100) -> list[AliasCase]:
    cases = []
    names = list(options)
    for values in itertools.product(*(options[n] for n in names)):
        kwargs = dict(base, **dict(zip(names, values)))
        if not skip(kwargs):
            cases.append(AliasCase(alias, kwargs, reference=reference,
                                   reference_kwargs=_to_reference(kwargs, betas), steps=steps))
    return cases


_ADAN_BETAS = {"betas": (("b1", 0.98), ("b2", 0.92), ("b3", 0.99))}
_MARS_BETAS = {"betas": (("b1", 0.95), ("b2", 0.99)), "betas_1d": (("b1_1d", 0.9), ("b2_1d", 0.95))}

REFERENCE_CASES: list[AliasCase] = [
    # schedulefree 1.4.1: params are the training point y (the package in train mode).
    *_reference_grid("schedule_free_adamw", "schedulefree:AdamWScheduleFree",
                     {"learning_rate": 0.01},
                     {"weight_decay": [0.0, 0.05], "warmup_steps": [0, 10], "r": [0.0, 1.0]}),
    *_reference_grid("schedule_free_adamw", "schedulefree:AdamWScheduleFree",
                     {"learning_rate": 0.01, "b1": 0.8, "b2": 0.99, "eps": 1e-6,
                      "weight_lr_power": 1.0}, {}),
    *_reference_grid("schedule_free_sgd", "schedulefree:SGDScheduleFree",
                     {"learning_rate": 0.1},
                     {"weight_decay": [0.0, 0.05], "warmup_steps": [0, 10], "r": [0.0, 1.0]}),
    *_reference_grid("schedule_free_sgd", "schedulefree:SGDScheduleFree",
                     {"learning_rate": 0.1, "momentum": 0.5, "weight_lr_power": 0.0}, {}),
    *_reference_rows("adopt", "pytorch_optimizer:ADOPT", {"learning_rate": 0.01},
                     _with_decays([{}, {"clip_lambda": None}]) + [
                         {"maximize": True},
                         {"clip_lambda": StepPower(0.5, 0.5), "b1": 0.8, "b2": 0.99,
                          "eps": 1e-3}]),
    *_reference_rows("ademamix", "pytorch_optimizer:AdEMAMix", {"learning_rate": 0.01},
                     _with_decays([{}, {"t_alpha_beta3": 40.0}]) + [
                         {"maximize": True},
                         {"alpha": 2.0, "t_alpha_beta3": 150.0, "b1": 0.8, "b2": 0.99,
                          "b3": 0.999, "eps": 1e-6}],
                     betas=("b1", "b2", "b3")),
    *_reference_rows("adabelief", "pytorch_optimizer:AdaBelief", {"learning_rate": 0.01},
                     [dict(o, weight_decay=0.05) for o in (
                         {}, {"ams_bound": True}, {"rectify": True},
                         {"rectify": True, "ams_bound": True},
                         {"rectify": True, "degenerated_to_sgd": False},
                         {"rectify": True, "degenerated_to_sgd": False, "ams_bound": True},
                         {"rectify": True, "n_sma_threshold": 8},
                         {"weight_decouple": False}, {"fixed_decay": True},
                         # maximize at lr 0.01 saturates the tanh units: the gradient's
                         # spread s_t (eps 1e-16) collapses and amplifies rounding to 0.97
                         # of the tolerance; at 3e-3 it stays at 0.02
                         {"maximize": True, "learning_rate": 3e-3},
                         {"b1": 0.8, "b2": 0.99, "eps": 1e-8})]),
    # C-Optim's c_adamw.AdamW has no package: tests/reference_cautious.py implements it
    # from the algorithm.
    *[AliasCase("cautious_adamw", kw, reference="tests.reference_cautious:CAdamW",
                reference_kwargs=_to_torch(kw), steps=100)
      for kw in [dict(base, **opt) for base in ({"learning_rate": 0.01},)
                 for opt in ({}, {"weight_decay": 0.1}, {"correct_bias": False},
                             {"weight_decay": 0.1, "correct_bias": False},
                             {"b1": 0.5, "b2": 0.9, "eps": 1e-8})]],
    # cautious(tx) over Lion's direction, against pytorch-optimizer's cautious=True.
    *[AliasCase("tests.reference_cautious:cautious_lion", kw, reference="pytorch_optimizer:Lion",
                reference_kwargs=dict(_to_torch(kw), cautious=True), steps=100)
      for kw in [{"learning_rate": 1e-3, "weight_decay": wd, "maximize": mx}
                 for wd in (0.0, 0.1) for mx in TF]
      + [{"learning_rate": 1e-3, "b1": 0.8, "b2": 0.95, "weight_decay": 0.1}]],
    *_reference_grid("prodigy", _PRODIGY, _PRODIGY_BASE,
                     {"weight_decay": [0.0, 0.05], "decouple": TF,
                      "use_bias_correction": TF, "safeguard_warmup": TF},
                     skip=lambda kw: kw["weight_decay"] == 0 and not kw["decouple"]),
    *_reference_grid("prodigy", _PRODIGY, _PRODIGY_BASE, {"growth_rate": [1.02]}),
    *_reference_grid("prodigy", _PRODIGY, dict(_PRODIGY_BASE, b3=0.9),
                     {"b1": [0.0, 0.8]}, renamed={"b3": "beta3"}),
    *_reference_grid("prodigy", _PRODIGY, {"learning_rate": 0.01, "d0": 1e-4, "d_coef": 2.0},
                     {"b1": [0.0]}),
    *_reference_grid("prodigy", _PRODIGY, dict(_PRODIGY_BASE, b2=0.99, eps=1e-6), {}),
    *_reference_grid("dadapt_adam", _DADAPT_ADAM, {"learning_rate": 0.1},
                     {"weight_decay": [0.0, 0.05], "decouple": TF,
                      "use_bias_correction": TF},
                     skip=lambda kw: kw["weight_decay"] == 0 and kw["decouple"]),
    *_reference_grid("dadapt_adam", _DADAPT_ADAM, {"learning_rate": 0.1, "growth_rate": 1.02},
                     {"d0": [1e-6, 1e-4]}),
    *_reference_grid("dadapt_adam", _DADAPT_ADAM,
                     {"learning_rate": 0.1, "b1": 0.8, "b2": 0.99, "eps": 1e-6}, {}),
    *_reference_grid("dadapt_sgd", _DADAPT_SGD, {"learning_rate": 0.2},
                     {"momentum": [0.0, 0.9], "weight_decay": [0.0, 0.05]}),
    *_reference_grid("dadapt_sgd", _DADAPT_SGD, {"learning_rate": 0.5, "growth_rate": 1.02},
                     {"d0": [1e-6, 1e-4]}),
    # Adan: max_grad_norm rows are in tests/test_adan_mars.py (the reference's float32
    # clip ratio uses torch's float32 sqrt, which is not correctly rounded, so float64
    # runs with an active clip differ by one float32 ulp of the ratio).
    *_reference_grid_with_betas("adan", "pytorch_optimizer:Adan", _ADAN_BETAS,
                                {"learning_rate": 0.01},
                     {"weight_decay": [0.0, 0.05], "weight_decouple": TF, "maximize": TF},
                     skip=lambda kw: kw["weight_decouple"] and kw["weight_decay"] == 0),
    *_reference_grid_with_betas("adan", "pytorch_optimizer:Adan", _ADAN_BETAS,
                     {"learning_rate": 0.01, "b1": 0.9, "b2": 0.8, "b3": 0.999, "eps": 1e-6},
                     {}),
    # MARS: mars_type="shampoo" (bfloat16 Newton-Schulz) is in tests/test_adan_mars.py.
    *_reference_grid_with_betas("mars", "pytorch_optimizer:MARS", _MARS_BETAS,
                                {"weight_decay": 0.05},
                     {"mars_type": ["adamw", "lion"], "optimize_1d": TF, "cautious": TF}),
    *_reference_grid_with_betas("mars", "pytorch_optimizer:MARS", _MARS_BETAS,
                     {"weight_decay": 0.05, "ams_bound": True},
                     {"weight_decouple": TF, "fixed_decay": TF},
                     skip=lambda kw: not kw["weight_decouple"] and kw["fixed_decay"]),
    *_reference_grid_with_betas("mars", "pytorch_optimizer:MARS", _MARS_BETAS,
                     {"weight_decay": 0.05, "weight_decouple": False, "maximize": True},
                     {"mars_type": ["adamw", "lion"]}),
    *_reference_grid_with_betas("mars", "pytorch_optimizer:MARS", _MARS_BETAS,
                     {"learning_rate": 5e-3, "lr_1d": 1e-3, "b1": 0.9, "b2": 0.95,
                      "b1_1d": 0.8, "b2_1d": 0.9, "gamma": 0.05, "weight_decay_1d": 0.2,
                      "eps": 1e-6}, {}),
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
    AliasCase("schedule_free_adamw", {}),
    AliasCase("schedule_free_sgd", {}),
    AliasCase("adopt", {}),
    AliasCase("ademamix", {}),
    AliasCase("adabelief", {}),
    AliasCase("cautious_adamw", {}),
    AliasCase("prodigy", {}),
    AliasCase("dadapt_adam", {}),
    AliasCase("dadapt_sgd", {}),
    AliasCase("adan", {}),
    AliasCase("mars", {}),
    # kron and soap on the smallest problem with a matrix, a 3-D param and a vector (SOAP
    # needs square statistics: a non-square matrix's null-space bases are arbitrary).
    AliasCase("kron", {"learning_rate": 0.01}, problem="square"),
    AliasCase("soap", {}, problem="square"),
    AliasCase("shampoo", {}, problem="matrices"),
    AliasCase("lookahead", {"inner": optxform.adam(1e-2), "sync_period": 5, "alpha": 0.5}),
]
