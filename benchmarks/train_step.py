"""Whole training steps (forward + backward + update): the two-line path vs optax.

Run: ``python benchmarks/train_step.py [--quick] [--only NAME ...]`` from the
``benchmarks`` folder (CPU; the default set takes about 4 minutes on an idle 2-core
machine, most of it compiling the tree variants of the 1,000-leaf model). The 3,000-leaf
model runs only when asked for (``--only mlp_3k``, best with ``--copies 1``): optax's tree
step alone takes 40 s to compile there on an idle machine, minutes on a loaded one. Prints one markdown table per workload and writes
``benchmarks/results/train_step[_<names>].json``.

Every variant is a jitted ``train_step(state, batch) -> (state, loss)`` with the state
donated, written as the framework's users write it:

* ``optax``: flax's ``TrainState`` (or equinox's ``(model, opt_state)`` loop) with
  ``optax.adam``: the params are a tree.
* ``optxform (tree)``: the same loop with ``optxform.adam``.
* ``optxform (two-line)``: the same loop with ``optxform.TrainState`` (params packed
  across steps; the model still sees its tree). For equinox: ``optxform (TrainState)``
  (the step written against the state) and ``optxform (pack_model)`` / ``optax
  (pack_model)``: equinox's own loop, unchanged, on ``optxform.pack_model(model)`` with
  ``optxform.adam`` / ``optax.adam``.
* ``model only``: forward + backward without an optimizer (the tree's ``value_and_grad``):
  the part of compile and step time that no optimizer can remove.

Columns: compile = trace + lower + XLA compile of the step (seconds; the fastest of the
variant's compiles); step = median milliseconds over interleaved rounds (every variant runs
``reps`` steps per round, in turn); peak = XLA's own accounting of the compiled step
(arguments + outputs - aliased + temporaries); ratios are against optax, measured in the
same run. Every variant is built, compiled and timed in processes of its own (``--copies``,
default 2, each a fresh first compile; ``--one-process``: all in this one, each compiled a
second time in reverse order; ``--aa``: a second optax variant, an A/A check). See
benchmarks/common.py for why.
"""

from __future__ import annotations

import sys
import time
from typing import Callable

import common as C  # noqa: N812 - benchmarks are scripts run from this folder
import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax.training.train_state import TrainState as FlaxTrainState

import optxform

LR = 1e-3


# --- models -------------------------------------------------------------------------------


def mlp_workload(num_leaves: int, width: int = 32, batch: int = 16):
    """A residual tanh MLP as a plain params dict: ``num_leaves / 2`` layers of (w, b)."""
    layers = num_leaves // 2
    key = jax.random.PRNGKey(0)
    params = {f"layer{i:04d}": {"w": 0.1 * jax.random.normal(jax.random.fold_in(key, i),
                                                             (width, width)),
                                "b": jnp.zeros(width)} for i in range(layers)}

    def apply_fn(variables, x):
        h = x
        for layer in variables["params"].values():
            h = h + jnp.tanh(h @ layer["w"] + layer["b"])
        return h

    x = jax.random.normal(jax.random.PRNGKey(1), (batch, width))
    y = jax.random.normal(jax.random.PRNGKey(2), (batch, width))
    return apply_fn, params, (x, y), lambda out, y: jnp.mean((out - y) ** 2)


class MnistCNN(nn.Module):
    """The CNN of flax's MNIST example (two conv layers, two dense layers; 8 leaves)."""

    @nn.compact
    def __call__(self, x):
        x = nn.avg_pool(nn.relu(nn.Conv(32, (3, 3))(x)), (2, 2), strides=(2, 2))
        x = nn.avg_pool(nn.relu(nn.Conv(64, (3, 3))(x)), (2, 2), strides=(2, 2))
        x = nn.relu(nn.Dense(256)(x.reshape((x.shape[0], -1))))
        return nn.Dense(10)(x)


def cnn_workload(batch: int = 32):
    model = MnistCNN()
    x = jax.random.normal(jax.random.PRNGKey(1), (batch, 28, 28, 1))
    y = jax.random.randint(jax.random.PRNGKey(2), (batch,), 0, 10)
    params = model.init(jax.random.PRNGKey(0), x)["params"]

    def loss(logits, y):
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return model.apply, params, (x, y), loss


# --- variants -----------------------------------------------------------------------------


def _timed_compile(fn, *args):
    """Compile ``fn`` for ``args``: the executable, the seconds it took, its peak bytes."""
    start = time.perf_counter()
    compiled = fn.lower(*args).compile()
    seconds = time.perf_counter() - start
    stats = compiled.memory_analysis()
    peak = None if stats is None else (stats.argument_size_in_bytes + stats.output_size_in_bytes
                                       - stats.alias_size_in_bytes + stats.temp_size_in_bytes)
    return compiled, seconds, peak


def _with_recompile(variant: C.Variant, fn, donate, *args) -> C.Variant:
    """Keep a way to compile the variant again (timed), for a second, interleaved timing:
    a new function object, so that nothing of the first trace or compile is reused."""
    def recompile() -> float:
        jitted = jax.jit(lambda *a: fn(*a), donate_argnums=donate)
        with jax.numpy_dtype_promotion("standard"):
            return _timed_compile(jitted, *args)[1]
    variant.recompile = recompile
    return variant


def model_only_variant(apply_fn, params, batch, loss) -> C.Variant:
    """Forward + backward alone: ``jax.value_and_grad`` of the loss, no update."""
    def grad_step(params, x, y):
        return jax.value_and_grad(lambda p: loss(apply_fn({"params": p}, x), y))(params)

    compiled, seconds, peak = _timed_compile(jax.jit(grad_step), params, *batch)

    def step():
        jax.block_until_ready(compiled(params, *batch))

    step()
    return _with_recompile(C.Variant("model only", step, seconds, peak), grad_step, (),
                           params, *batch)


def flax_variant(name: str, state_cls, tx, apply_fn, params, batch, loss) -> C.Variant:
    """flax's training loop: ``state.apply_gradients(grads=jax.grad(...)(state.params))``."""
    params = jax.tree.map(jnp.copy, params)
    state = state_cls.create(apply_fn=apply_fn, params=params, tx=tx)

    def train_step(state, x, y):
        def loss_fn(params):
            return loss(state.apply_fn({"params": params}, x), y)
        value, grads = jax.value_and_grad(loss_fn)(state.params)
        return state.apply_gradients(grads=grads), value

    jitted = jax.jit(train_step, donate_argnums=0)
    with jax.numpy_dtype_promotion("standard"):  # optax mixes dtypes in places
        compiled, seconds, peak = _timed_compile(jitted, state, *batch)
    box = [state]

    def step():
        box[0], value = compiled(box[0], *batch)
        jax.block_until_ready(value)

    step()
    return _with_recompile(C.Variant(name, step, seconds, peak), train_step, 0, state,
                           *batch)


class EqxMLP(eqx.Module):
    mlp: eqx.nn.MLP

    def __init__(self, key, depth: int):
        self.mlp = eqx.nn.MLP(64, 10, 128, depth, activation=jax.nn.gelu, key=key)

    def __call__(self, x):
        return jax.vmap(self.mlp)(x)


def _eqx_loss(model, x, y):
    return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()


def eqx_loop_variant(name: str, model, tx, x, y) -> C.Variant:
    """equinox's usual loop ``(model, opt_state)``, as its docs write it, jitted with both
    donated. ``model`` is the plain model or ``optxform.pack_model(model)`` (the one added
    line: the loop is the same)."""
    opt_state = tx.init(eqx.filter(model, eqx.is_array))

    def make_step(model, opt_state, x, y):
        value, grads = eqx.filter_value_and_grad(_eqx_loss)(model, x, y)
        updates, opt_state = tx.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state, value

    # eqx.filter_jit(donate="all") as jax.jit of the array part (to time the compile)
    params, static = eqx.partition(model, eqx.is_array)

    def array_step(params, opt_state, x, y):
        model, opt_state, value = make_step(eqx.combine(params, static), opt_state, x, y)
        return eqx.filter(model, eqx.is_array), opt_state, value

    jitted = jax.jit(array_step, donate_argnums=(0, 1))
    with jax.numpy_dtype_promotion("standard"):
        compiled, seconds, peak = _timed_compile(jitted, params, opt_state, x, y)
    box = [params, opt_state]

    def step():
        box[0], box[1], value = compiled(box[0], box[1], x, y)
        jax.block_until_ready(value)

    step()
    return _with_recompile(C.Variant(name, step, seconds, peak), array_step, (0, 1),
                           params, opt_state, x, y)


def eqx_builders(depth: int = 8, batch: int = 64) -> dict[str, Callable[[], C.Variant]]:
    """equinox's loop for optax and optxform on the model and on ``pack_model(model)``;
    ``optxform.TrainState``: each variant's builder, by name."""
    x = jax.random.normal(jax.random.PRNGKey(1), (batch, 64))
    y = jax.random.randint(jax.random.PRNGKey(2), (batch,), 0, 10)

    def model():
        return EqxMLP(jax.random.PRNGKey(0), depth)

    def train_state_variant() -> C.Variant:
        state = optxform.TrainState.create(params=model(), tx=optxform.adam(LR))
        arrays, static = eqx.partition(state, eqx.is_array)

        def packed_step(arrays, x, y):
            state = eqx.combine(arrays, static)
            value, grads = eqx.filter_value_and_grad(_eqx_loss)(state.params, x, y)
            return eqx.filter(state.apply_gradients(grads=grads), eqx.is_array), value

        jitted = jax.jit(packed_step, donate_argnums=0)
        compiled, seconds, peak = _timed_compile(jitted, arrays, x, y)
        box = [arrays]

        def step():
            box[0], value = compiled(box[0], x, y)
            jax.block_until_ready(value)

        step()
        return _with_recompile(C.Variant("optxform (TrainState)", step, seconds, peak),
                               packed_step, 0, arrays, x, y)

    return {
        "optax": lambda: eqx_loop_variant("optax", model(), optax.adam(LR), x, y),
        "optxform (tree)": lambda: eqx_loop_variant("optxform (tree)", model(),
                                                    optxform.adam(LR), x, y),
        "optxform (TrainState)": train_state_variant,
        "optxform (pack_model)": lambda: eqx_loop_variant(
            "optxform (pack_model)", optxform.pack_model(model()), optxform.adam(LR), x, y),
        "optax (pack_model)": lambda: eqx_loop_variant(
            "optax (pack_model)", optxform.pack_model(model()), optax.adam(LR), x, y),
    }


# --- workloads ----------------------------------------------------------------------------

WORKLOADS = {
    "mlp_100": ("residual MLP, 100 leaves (50 layers of 32x32)", lambda: mlp_workload(100)),
    "mlp_300": ("residual MLP, 300 leaves", lambda: mlp_workload(300)),
    "mlp_1k": ("residual MLP, 1,000 leaves", lambda: mlp_workload(1_000)),
    "mlp_3k": ("residual MLP, 3,000 leaves", lambda: mlp_workload(3_000)),
    "cnn": ("flax MNIST CNN (8 leaves, 0.8M params), batch 32", cnn_workload),
    "eqx_mlp": ("equinox MLP (depth 8, width 128; 18 leaves), batch 64", None),
}
QUICK = ("mlp_100", "mlp_300", "cnn", "eqx_mlp")
#: Workloads whose tree variants take minutes to compile: run only with ``--only``, and
#: without optxform's own tree path and the model-only row (measured at 1,000 leaves).
NO_TREE = ("mlp_3k",)


def builders_for(key: str) -> dict[str, Callable[[], C.Variant]]:
    """The variants of a workload, each as a builder, by name (optax first)."""
    if key == "eqx_mlp":
        return eqx_builders()
    apply_fn, params, batch, loss = WORKLOADS[key][1]()

    def flax(name, state_cls, tx):
        return lambda: flax_variant(name, state_cls, tx, apply_fn, params, batch, loss)

    out = {"optax": flax("optax", FlaxTrainState, optax.adam(LR))}
    if key not in NO_TREE:
        out["optxform (tree)"] = flax("optxform (tree)", FlaxTrainState, optxform.adam(LR))
    out["optxform (two-line)"] = flax("optxform (two-line)", optxform.TrainState,
                                      optxform.adam(LR))
    if key not in NO_TREE:
        out["model only"] = lambda: model_only_variant(apply_fn, params, batch, loss)
    return out


def build_variant(key: str, name: str) -> C.Variant:
    """One variant of one workload (in the worker process that times it)."""
    return builders_for(key)[name]()


def run_workload(key: str, rounds: int, reps: int, one_process: bool = False,
                 aa: bool = False, copies: int = 2) -> dict:
    name = WORKLOADS[key][0]
    print(f"\n### {name}", flush=True)
    names = list(builders_for(key)) + (["optax"] if aa else [])
    variants = C.built("train_step", key, names, 0 if one_process else copies)
    # Compile times cannot be interleaved step by step. In one process each variant is
    # compiled a second time, in reverse order, after all first compiles, and the faster of
    # the two is kept; in worker processes each copy compiles once and the fastest is kept.
    if one_process and key not in NO_TREE:  # minutes each there
        for v in reversed(variants):
            v.compile_s = min(v.compile_s, v.recompile())
    C.interleave(variants, rounds, reps)
    base = variants[0]
    rows = []
    for v in variants:
        rows.append({"variant": v.name, "compile_s": v.compile_s, "step_ms": v.median_ms(),
                     "compile_ratio": v.compile_s / base.compile_s,
                     "step_ratio": v.median_ms() / base.median_ms(),
                     "peak_mb": None if v.peak_bytes is None else v.peak_bytes / 1e6})
        v.close()
    result = {"workload": name, "key": key, "rows": rows}
    print_table(result)
    return result


def print_table(result: dict) -> None:
    print("| variant | compile (s) | step (ms) | compile / optax | step / optax | peak MB |")
    print("|---|---|---|---|---|---|")
    for r in result["rows"]:
        peak = "—" if r["peak_mb"] is None else f"{r['peak_mb']:.2f}"
        print(f"| {r['variant']} | {C.fmt_s(r['compile_s'])} | {C.fmt_ms(r['step_ms'])} | "
              f"{r['compile_ratio']:.2f} | {r['step_ratio']:.2f} | {peak} |")
    sys.stdout.flush()


def main(argv=None) -> None:
    parser = C.workload_parser(__doc__, WORKLOADS, QUICK)
    args = parser.parse_args(argv)
    keys = args.only or (QUICK if args.quick else [k for k in WORKLOADS if k not in NO_TREE])
    info = C.machine_info()
    print(f"machine: {info['cpu']}, {info['cores']} cores, {info['uptime']}; jax {info['jax']}, "
          f"optax {info['optax']}; {info['date']}")
    start = time.perf_counter()
    results = [run_workload(k, args.rounds, args.reps, args.one_process, args.aa, args.copies)
               for k in keys]
    info_end = C.machine_info()
    suffix = ("" if not args.only else "_" + "_".join(args.only)) + (
        "_one_process" if args.one_process else "")
    path = C.save_results("train_step" + suffix, {"machine": info, "uptime_end": info_end["uptime"],
                                         "seconds": time.perf_counter() - start,
                                         "one_process": args.one_process,
                                         "copies": args.copies, "results": results})
    print(f"\n{info_end['uptime']}; total {time.perf_counter() - start:.0f} s; results: {path}")


if __name__ == "__main__":
    main()
