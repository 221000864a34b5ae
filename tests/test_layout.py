"""The architecture holds: dependencies point one way, optional packages are imported lazily."""

from __future__ import annotations

import ast
import pathlib

import optxform

ROOT = pathlib.Path(optxform.__file__).parent

# STYLE.md: core <- tree <- rules <- transforms, schedules <- wrappers, linesearch <- quasi_newton
# <- optimizers <- state <- parallel, fused <- problems <- explore <- viz <- cli.
RANK = {
    "core": 0, "tree": 1, "rules": 1.5, "transforms": 2, "schedules": 2, "wrappers": 3, "linesearch": 3,
    "quasi_newton": 3.5, "optimizers": 4, "state": 5, "parallel": 6, "fused": 6,
    "problems": 7, "explore": 8, "viz": 9, "cli": 10, "__main__": 11,
}
OPTIONAL = {"torch", "optax", "matplotlib", "PIL", "tqdm", "rich", "sklearn", "scipy",
            "orbax", "flax", "safetensors"}


def _imports(tree: ast.Module, module_level_only: bool):
    nodes = tree.body if module_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            if node.module == "optxform":
                for alias in node.names:
                    yield f"optxform.{alias.name}"


def _package_of(path: pathlib.Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 or rel.stem != "__init__" \
        else "__init__"


def test_dependencies_point_one_way():
    bad = []
    for path in ROOT.rglob("*.py"):
        package = _package_of(path)
        if package not in RANK:
            continue
        for name in _imports(ast.parse(path.read_text()), module_level_only=False):
            parts = name.split(".")
            if parts[0] != "optxform" or len(parts) < 2 or parts[1] not in RANK:
                continue
            if parts[1] != package and RANK[parts[1]] >= RANK[package]:
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "imports against the layout:\n" + "\n".join(bad)


def test_optional_packages_are_imported_lazily():
    bad = []
    for path in ROOT.rglob("*.py"):
        for name in _imports(ast.parse(path.read_text()), module_level_only=True):
            if name.split(".")[0] in OPTIONAL:
                bad.append(f"{path.relative_to(ROOT)} imports {name} at module level")
    assert not bad, "\n".join(bad)


def test_every_public_name_in_the_api_contract_exists():
    names = """GradientTransformation apply_updates chain named_chain identity
    sgd asgd asgd_average adagrad adadelta rmsprop adam adamw adamax nadam radam rprop
    sparse_adam adafactor lbfgs lion lookahead
    scale scale_by_learning_rate scale_by_schedule trace add_decayed_weights scale_by_rms
    scale_by_adam scale_by_adamax scale_by_nadam scale_by_radam scale_by_adagrad
    scale_by_adadelta scale_by_rprop scale_by_lion scale_by_factored_rms clip
    clip_by_global_norm clip_by_block_rms zero_nans keep_params_nonnegative
    constant_schedule exponential_decay linear_schedule polynomial_schedule step_decay
    multistep_decay piecewise_constant_schedule cosine_decay_schedule
    warmup_cosine_decay_schedule warmup_exponential_decay_schedule
    cosine_annealing_warm_restarts one_cycle cyclic inverse_time_decay join_schedules
    reduce_on_plateau scale_by_lbfgs zoom_linesearch backtracking_linesearch
    masked multi_transform freeze inject_hyperparams apply_if_finite MultiSteps ema flatten
    state_dict load_state_dict save_state load_state extend_state tree_get tree_set""".split()
    missing = [n for n in names if not hasattr(optxform, n)]
    assert not missing, f"missing from optxform: {missing}"
