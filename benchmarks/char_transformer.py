"""Matrix optimizers on a small real workload: a character-level transformer.

A GPT-style transformer of 863,488 parameters (6 layers, width 128, 4 heads, MLP width
256, context 64, byte vocabulary) learns to predict the next byte of Python's own
standard-library sources: a fixed, sorted list of ``.py`` files under
``sysconfig.get_paths()["stdlib"]``, split by file into train and validation text. The
script prints every file and its byte count (and a SHA-256 of each split), so the run is
reproducible on any machine with the same Python.

It compares four optimizers, each with its defaults apart from the learning rate (and
Shampoo's ``preconditioning_compute_steps``, see ``Config``):

* ``adamw``            ``optxform.adamw`` (torch's AdamW defaults)
* ``muon_with_adamw``  ``optxform.muon_with_adamw``: Muon on the hidden matrices, AdamW
  on the embeddings, the output head, biases and norms; the grid is Muon's learning rate,
  the AdamW groups run at AdamW's best rate from its own grid
* ``soap``             ``optxform.soap``
* ``shampoo``          ``optxform.shampoo``

Protocol: 150 steps of 8 windows of 64 bytes at a constant learning rate. Each optimizer
runs every learning rate of its 3-value grid with seed 0; the rate with the lowest final
validation loss is its best, and runs again with seeds 1-4 (a seed sets the initial params
and the order of the minibatches). Reported per optimizer: steps to the target validation
loss (median and range over the 5 seeds; validation loss is measured every ``eval_every``
steps), final validation loss, the median and the mean time of one training step (over
every step of the 5 seeds, after compilation, evaluation excluded; the mean includes the
steps that refresh SOAP's and Shampoo's preconditioners) and the compile time of that step
(one compiled step per optimizer: the learning rate is injected as an array, see
``optxform.inject_hyperparams``).

Outputs: a table on stdout, ``benchmarks/results/char_transformer.json`` (every number and
curve, the machine, the data), ``benchmarks/results/char_transformer.md`` (the table that
docs/optimizers.md quotes) and ``docs/figures/char_transformer.png`` (validation loss
against step, median over the seeds).

Run from the repository root (needs the ``bench`` extra for the plot)::

    python benchmarks/char_transformer.py           # the benchmark, in one process
    python benchmarks/char_transformer.py --quick --out /tmp/ct   # a tiny model

The committed numbers ran as separate processes, joined afterwards (on a shared 2-core
CPU, 25 minutes for AdamW and Muon, 13 for Shampoo; the SOAP runs hung, see
docs/optimizers.md)::

    python benchmarks/char_transformer.py --optimizers adamw muon_with_adamw --out /tmp/a
    python benchmarks/char_transformer.py --optimizers soap --out /tmp/b
    python benchmarks/char_transformer.py --optimizers shampoo --out /tmp/c
    python benchmarks/char_transformer.py --merge /tmp/{a,b,c}/char_transformer.json

``--rescore JSON --target X`` recomputes the steps to another target from the stored
curves. ``--quick`` trains a tiny model for a few steps (2 learning rates, 2 seeds) and
writes its outputs under ``--out``; the test suite runs it.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import inspect
import json
import math
import os
import pathlib
import platform
import statistics
import sys
import sysconfig
import time
from typing import Any, Callable

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# One XLA:CPU thread: on a shared machine per-step times stay comparable (with the default
# thread pool, contention with other jobs doubled the median step here). Set XLA_FLAGS to
# override.
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                      "intra_op_parallelism_threads=1")
# One OpenBLAS thread too, a precaution: a SOAP run (eigh and QR call LAPACK) hung here
# twice on a loaded machine, its threads waiting on each other and using no CPU.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import optxform  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the benchmarks' helpers
from common import cpu_name  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]

# The text: sorted file names, relative to the stdlib folder; the split is by file.
TRAIN_FILES = ("argparse.py", "ast.py", "base64.py", "calendar.py", "configparser.py",
               "contextlib.py", "copy.py", "csv.py", "dataclasses.py", "datetime.py",
               "difflib.py", "enum.py", "fractions.py", "functools.py", "heapq.py",
               "inspect.py", "random.py", "shlex.py", "shutil.py", "statistics.py",
               "string.py", "textwrap.py", "threading.py", "tokenize.py", "typing.py")
VAL_FILES = ("pprint.py", "traceback.py")

OPTIMIZERS = ("adamw", "muon_with_adamw", "soap", "shampoo")


@dataclasses.dataclass(frozen=True)
class Config:
    """Model, data and protocol sizes. ``Config()`` is the benchmark; ``Config.quick()`` the
    tiny smoke-test version."""

    layers: int = 6
    width: int = 128
    heads: int = 4
    mlp: int = 2
    context: int = 64
    batch: int = 8
    steps: int = 150
    eval_every: int = 10
    val_windows: int = 32
    seeds: int = 5
    target: float = 2.0
    # Shampoo's one argument besides the learning rate that is not its default: the default
    # (pytorch-optimizer's, 1) recomputes every inverse root (one SVD per axis of every
    # param, about 100 here) at every step, seconds per step on this CPU; every 20 steps is
    # between SOAP's default refresh period (10) and Distributed Shampoo's (100).
    shampoo_compute_steps: int = 20
    # XLA options of every compilation (the quick mode compiles without LLVM's costly
    # optimisations: its compile times are then not the benchmark's).
    compiler_options: tuple[tuple[str, Any], ...] = ()
    grids: tuple[tuple[str, tuple[float, ...]], ...] = (
        ("adamw", (3e-4, 1e-3, 3e-3)),
        ("muon_with_adamw", (0.01, 0.02, 0.05)),
        ("soap", (1e-3, 3e-3, 1e-2)),
        ("shampoo", (1e-3, 3e-3, 1e-2)))

    @classmethod
    def quick(cls) -> "Config":
        """One layer of width 32, context 16, 20 steps, 2 learning rates, 2 seeds."""
        return cls(layers=1, width=32, heads=2, context=16, batch=8, steps=20, eval_every=5,
                   val_windows=8, seeds=2, target=5.0, shampoo_compute_steps=5,
                   compiler_options=(("xla_backend_optimization_level", 0),
                                     ("xla_llvm_disable_expensive_passes", True)),
                   grids=(("adamw", (3e-3, 1e-2)), ("muon_with_adamw", (0.02, 0.05)),
                          ("soap", (3e-3, 1e-2)), ("shampoo", (1e-2, 3e-2))))

    def grid(self, name: str) -> tuple[float, ...]:
        return dict(self.grids)[name]

    def options(self, name: str) -> dict[str, Any]:
        """``name``'s arguments besides the learning rate that are not its defaults."""
        if name == "shampoo":
            return {"preconditioning_compute_steps": self.shampoo_compute_steps}
        return {}


# --- data ---------------------------------------------------------------------------------


def load_text() -> dict[str, Any]:
    """The train and validation bytes, and the files they came from with their sizes."""
    stdlib = pathlib.Path(sysconfig.get_paths()["stdlib"])
    files, splits = [], {"train": b"", "val": b""}
    for split, names in (("train", TRAIN_FILES), ("val", VAL_FILES)):
        for name in sorted(names):
            data = (stdlib / name).read_bytes()
            files.append({"file": name, "split": split, "bytes": len(data)})
            splits[split] += data
    return {"stdlib": str(stdlib), "files": files, "train": splits["train"],
            "val": splits["val"],
            "sha256": {k: hashlib.sha256(v).hexdigest() for k, v in splits.items()}}


def val_windows(val: np.ndarray, cfg: Config) -> np.ndarray:
    """``cfg.val_windows`` windows of ``context + 1`` bytes, evenly spaced over the text."""
    starts = np.linspace(0, len(val) - cfg.context - 1, cfg.val_windows).astype(np.int64)
    return np.stack([val[s:s + cfg.context + 1] for s in starts]).astype(np.int32)


def sample_batch(train: jax.Array, key: jax.Array, cfg: Config) -> jax.Array:
    """``cfg.batch`` random windows of ``context + 1`` bytes of the training text."""
    starts = jax.random.randint(key, (cfg.batch,), 0, train.shape[0] - cfg.context - 1)
    return jax.vmap(lambda s: jax.lax.dynamic_slice(train, (s,), (cfg.context + 1,)))(starts)


# --- model --------------------------------------------------------------------------------

VOCAB = 256


def init_params(cfg: Config, key: jax.Array) -> dict:
    """GPT-2-style init: normal(0.02), residual projections scaled by 1/sqrt(2 layers)."""
    d, keys = cfg.width, iter(jax.random.split(key, 3 + 4 * cfg.layers))

    def normal(shape, std=0.02):
        return std * jax.random.normal(next(keys), shape, jnp.float32)

    def norm():
        return {"scale": jnp.ones(d, jnp.float32), "bias": jnp.zeros(d, jnp.float32)}

    resid = 0.02 / math.sqrt(2 * cfg.layers)
    blocks = {str(i): {"ln1": norm(), "attn": {"qkv": normal((d, 3 * d)),
                                                "proj": normal((d, d), resid)},
                       "ln2": norm(), "mlp": {"up": normal((d, cfg.mlp * d)),
                                              "down": normal((cfg.mlp * d, d), resid)}}
              for i in range(cfg.layers)}
    return {"wte": normal((VOCAB, d)), "wpe": normal((cfg.context, d)), "blocks": blocks,
            "ln_f": norm(), "lm_head": {"kernel": normal((d, VOCAB))}}


def _layer_norm(x: jax.Array, p: dict) -> jax.Array:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + 1e-5) * p["scale"][None, None] + p["bias"][None, None]


def logits_fn(params: dict, tokens: jax.Array, heads: int) -> jax.Array:
    """Next-byte logits ``(batch, time, 256)`` of a pre-norm causal transformer."""
    b, t = tokens.shape
    x = params["wte"][tokens] + params["wpe"][None, :t]
    mask = jnp.tril(jnp.ones((t, t), bool))[None, None]
    for i in range(len(params["blocks"])):
        blk = params["blocks"][str(i)]
        q, k, v = jnp.split(_layer_norm(x, blk["ln1"]) @ blk["attn"]["qkv"], 3, axis=-1)
        q, k, v = (z.reshape(b, t, heads, -1).transpose(0, 2, 1, 3) for z in (q, k, v))
        scores = jnp.where(mask, q @ k.transpose(0, 1, 3, 2) / math.sqrt(q.shape[-1]),
                           -jnp.inf)
        att = jax.nn.softmax(scores, axis=-1) @ v
        x = x + att.transpose(0, 2, 1, 3).reshape(b, t, -1) @ blk["attn"]["proj"]
        h = jax.nn.gelu(_layer_norm(x, blk["ln2"]) @ blk["mlp"]["up"])
        x = x + h @ blk["mlp"]["down"]
    return _layer_norm(x, params["ln_f"]) @ params["lm_head"]["kernel"]


def loss_fn(params: dict, windows: jax.Array, heads: int = Config.heads) -> jax.Array:
    """Mean next-byte cross-entropy (nats) over ``windows`` of ``context + 1`` bytes."""
    logits = logits_fn(params, windows[:, :-1], heads)
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.take_along_axis(logp, windows[:, 1:, None], axis=-1).mean()


def count_params(params: dict) -> int:
    return sum(x.size for x in jax.tree.leaves(params))


def make_problem(cfg: Config, seed: int = 0, windows: int = 512
                 ) -> tuple[Callable, dict, jax.Array]:
    """``(loss_fn(params, data), params, data)`` for :func:`optxform.choose`: ``data`` is
    ``windows`` windows of the training text, evenly spaced; race with ``batch_size``."""
    text = np.frombuffer(load_text()["train"], np.uint8)
    starts = np.linspace(0, len(text) - cfg.context - 1, windows).astype(np.int64)
    data = jnp.asarray(np.stack([text[s:s + cfg.context + 1] for s in starts]), jnp.int32)
    return (lambda p, w: loss_fn(p, w, cfg.heads),
            init_params(cfg, jax.random.PRNGKey(seed)), data)


# --- optimizers ---------------------------------------------------------------------------


def factory(name: str) -> Callable[..., optxform.GradientTransformation]:
    fn = getattr(optxform, name, None)
    if fn is None:
        raise SystemExit(f"optxform.{name} is not available in this optxform "
                         f"({optxform.__file__}); this benchmark needs {', '.join(OPTIMIZERS)}")
    return fn


def build(name: str, learning_rate: float, options: dict[str, Any]
          ) -> optxform.GradientTransformation:
    """The optimizer with its defaults, the learning rate injected (an array in the state,
    so one compiled step serves every rate); every other argument stays static."""
    fn = factory(name)
    static = [p for p in inspect.signature(fn).parameters if p != "learning_rate"]
    return optxform.inject_hyperparams(fn, static_args=static)(learning_rate=learning_rate,
                                                               **options)


# --- training -----------------------------------------------------------------------------


@dataclasses.dataclass
class Run:
    lr: float
    seed: int
    eval_steps: list[int]
    val_loss: list[float]
    step_s: list[float]

    def steps_to(self, target: float) -> int | None:
        return next((s for s, v in zip(self.eval_steps, self.val_loss) if v <= target), None)


class Trainer:
    """One optimizer's compiled step (and the shared evaluation) for a config."""

    def __init__(self, cfg: Config, name: str, train: np.ndarray, val: np.ndarray,
                 adamw_lr: float | None = None):
        self.cfg, self.name, self.adamw_lr = cfg, name, adamw_lr
        self.train = jnp.asarray(train)
        self.val = jnp.asarray(val_windows(val, cfg))
        self.options = cfg.options(name)
        if adamw_lr is not None:
            self.options["adamw_learning_rate"] = adamw_lr
        tx = build(name, cfg.grid(name)[0], self.options)

        def step(params, state, key):
            batch = sample_batch(self.train, key, cfg)
            loss, grads = jax.value_and_grad(loss_fn)(params, batch, cfg.heads)
            updates, state = tx.update(grads, state, params)
            return optxform.apply_updates(params, updates), state, loss

        params = init_params(cfg, jax.random.PRNGKey(0))
        state = tx.init(params)
        options = dict(cfg.compiler_options) or None
        start = time.perf_counter()
        self.step = jax.jit(step, donate_argnums=(0, 1)).lower(
            params, state, jax.random.PRNGKey(0)).compile(options)
        self.compile_s = time.perf_counter() - start
        self.evaluate = jax.jit(lambda p: loss_fn(p, self.val, cfg.heads)).lower(
            params).compile(options)

    def run(self, lr: float, seed: int) -> Run:
        cfg = self.cfg
        init_key, data_key = jax.random.split(jax.random.PRNGKey(seed))
        params = init_params(cfg, init_key)
        state = build(self.name, lr, self.options).init(params)
        evals, losses, times = [0], [float(self.evaluate(params))], []
        for t in range(1, cfg.steps + 1):
            start = time.perf_counter()
            params, state, loss = self.step(params, state, jax.random.fold_in(data_key, t))
            loss.block_until_ready()
            times.append(time.perf_counter() - start)
            if t % cfg.eval_every == 0 or t == cfg.steps:
                evals.append(t)
                losses.append(float(self.evaluate(params)))
        return Run(lr, seed, evals, losses, times)


def _pick_best(runs: list[Run]) -> Run:
    """The run with the lowest final validation loss (a non-finite one never wins)."""
    def key(run):
        final = run.val_loss[-1]
        return final if math.isfinite(final) else math.inf
    return min(runs, key=key)


def benchmark(cfg: Config, names: tuple[str, ...] = OPTIMIZERS,
              log: Callable[[str], None] = print) -> dict:
    """Run the protocol for ``names``; returns the results (see the module docstring)."""
    text = load_text()
    train = np.frombuffer(text["train"], np.uint8)
    val = np.frombuffer(text["val"], np.uint8)
    log(f"text from {text['stdlib']}:")
    for f in text["files"]:
        log(f"  {f['split']:5s} {f['file']:20s} {f['bytes']:>8,d} bytes")
    log(f"  train {len(train):,d} bytes (sha256 {text['sha256']['train'][:16]}), "
        f"val {len(val):,d} bytes (sha256 {text['sha256']['val'][:16]})")
    n_params = count_params(init_params(cfg, jax.random.PRNGKey(0)))
    log(f"model: {n_params:,d} params; {cfg.steps} steps of {cfg.batch} x {cfg.context} "
        f"bytes; target validation loss {cfg.target}")

    host = machine()
    results: dict[str, Any] = {}
    adamw_lr = None
    for name in names:
        trainer = Trainer(cfg, name, train, val,
                          adamw_lr if name == "muon_with_adamw" else None)
        log(f"{name}: compiled in {trainer.compile_s:.2f} s")
        grid = [trainer.run(lr, 0) for lr in cfg.grid(name)]
        for run in grid:
            log(f"  lr {run.lr:g}, seed 0: final val loss {run.val_loss[-1]:.4f}, "
                f"steps to target {run.steps_to(cfg.target)}")
        best = _pick_best(grid)
        runs = [best] + [trainer.run(best.lr, seed) for seed in range(1, cfg.seeds)]
        if name == "adamw":
            adamw_lr = best.lr
        results[name] = summarize(name, trainer, grid, runs)
        log(f"  best lr {best.lr:g}: " + ", ".join(
            f"seed {r.seed} {r.val_loss[-1]:.4f}" for r in runs))
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": host, "config": dataclasses.asdict(cfg), "params": n_params,
            "data": {k: text[k] for k in ("stdlib", "files", "sha256")},
            "optimizers": results}


def score(results: dict, target: float) -> dict:
    """Set ``target`` and each optimizer's ``steps_to_target`` (per seed: the first evaluated
    step whose validation loss is at most ``target``, or None) from the stored curves."""
    results["target"] = target
    for r in results["optimizers"].values():
        finite = [c for c in r["val_loss"] if all(map(math.isfinite, c))]
        # the median curve of the seeds that stayed finite (a diverged seed is counted apart)
        r["median_val_loss"] = np.median(np.asarray(finite), axis=0).tolist() if finite else []
        r["steps_to_target"] = [next((s for s, v in zip(r["eval_steps"], curve) if v <= target),
                                     None) for curve in r["val_loss"]]
    return results


def summarize(name: str, trainer: Trainer, grid: list[Run], runs: list[Run]) -> dict:
    finals = [r.val_loss[-1] for r in runs]
    step_ms = [1e3 * s for r in runs for s in r.step_s[1:]]
    options = {"learning_rate": runs[0].lr, **trainer.options}
    return {
        "options": options,
        "grid": {f"{r.lr:g}": r.val_loss[-1] for r in grid},
        "best_lr": runs[0].lr,
        "seeds": [r.seed for r in runs],
        "final_val_loss": finals,
        "eval_steps": runs[0].eval_steps,
        "val_loss": [r.val_loss for r in runs],
        "step_ms": statistics.median(step_ms),
        "step_ms_mean": statistics.fmean(step_ms),
        "compile_s": trainer.compile_s,
    }


def machine() -> dict:
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "xla_flags": os.environ.get("XLA_FLAGS", ""),
            "load_avg_start": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(), "jax": jax.__version__,
            "platform": platform.platform()}


# --- reporting ----------------------------------------------------------------------------


def _steps_cell(reached: list[int | None]) -> tuple[str, str]:
    hits = sorted(s for s in reached if s is not None)
    if not hits:
        return "not reached", f"0/{len(reached)}"
    median = statistics.median(hits)
    return f"{median:g} ({hits[0]}-{hits[-1]})", f"{len(hits)}/{len(reached)}"


def markdown_table(results: dict) -> str:
    """The comparison table, as docs/optimizers.md quotes it."""
    lines = ["| optimizer | lr grid | best lr | steps to val loss "
             f"{results['target']:g}: median (range) | reached | final val loss: median "
             "(range) | step (ms): median, mean | compile (s) |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in results["optimizers"].items():
        steps, reached = _steps_cell(r["steps_to_target"])
        finals = [x for x in r["final_val_loss"] if math.isfinite(x)]
        diverged = len(r["final_val_loss"]) - len(finals)
        if diverged:
            reached += f" ({diverged} diverged)"
        final = (f"{statistics.median(finals):.3f} ({min(finals):.3f}-{max(finals):.3f})"
                 if finals else "diverged")
        grid = ", ".join(r["grid"])
        lines.append(f"| {name} | {grid} | {r['best_lr']:g} | {steps} | {reached} | {final} "
                     f"| {r['step_ms']:.0f}, {r['step_ms_mean']:.0f} | {r['compile_s']:.1f} |")
    return "\n".join(lines)


def stamp(results: dict) -> str:
    """When and where the numbers were measured."""
    m, c = results["machine"], results["config"]
    threads = ", one XLA thread" if "intra_op_parallelism_threads=1" in m["xla_flags"] else ""
    if m.get("processes", 1) > 1:
        threads += " per process, optimizers in parallel processes"
    return (f"Measured {results['date']} on {m['cpu']} ({m['cores']} cores, shared; load "
            f"average {m['load_avg_start'][0]:g} at the start, {m['load_avg_end'][0]:g} at "
            f"the end), Python {m['python']}, jax {m['jax']}{threads}: "
            f"{results['params']:,d} params, {c['steps']} steps of {c['batch']} x "
            f"{c['context']} bytes, {c['seeds']} seeds at the best learning rate.")


def plot(results: dict, path: pathlib.Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    for name, r in results["optimizers"].items():
        if r["median_val_loss"]:
            ax.plot(r["eval_steps"], r["median_val_loss"], label=f"{name} (lr {r['best_lr']:g})")
    ax.axhline(results["target"], color="gray", ls="--", lw=0.8, label="target")
    ax.set_xlabel("step")
    ax.set_ylabel("validation loss (nats/byte)")
    ax.set_ylim(top=min(ax.get_ylim()[1], 4.0))
    ax.set_title(f"char transformer, {results['params']:,d} params: median over seeds "
                 "(finite runs)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def write_outputs(results: dict, out: pathlib.Path | None) -> None:
    """The JSON, the markdown table and the plot, under ``out`` (default: the repository's
    benchmarks/results and docs/figures)."""
    results["table_md"] = table = markdown_table(results)
    json_path = (out or ROOT / "benchmarks" / "results") / "char_transformer.json"
    md_path = (out or ROOT / "benchmarks" / "results") / "char_transformer.md"
    png_path = (out or ROOT / "docs" / "figures") / "char_transformer.png"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=1) + "\n")
    md_path.write_text(stamp(results) + "\n\n" + table + "\n")
    plot(results, png_path)
    print(f"\n{stamp(results)}\n\n{table}\n\nwrote {json_path}, {md_path}, {png_path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny model, a few steps")
    parser.add_argument("--out", type=pathlib.Path, default=None,
                        help="folder for the JSON, markdown and plot (default: "
                        "benchmarks/results and docs/figures; required with --quick)")
    parser.add_argument("--target", type=float, default=None,
                        help="the target validation loss (default: the config's)")
    parser.add_argument("--optimizers", nargs="+", choices=OPTIMIZERS, default=OPTIMIZERS,
                        help="run only these (muon_with_adamw needs adamw before it); "
                        "join the parts with --merge")
    parser.add_argument("--grid", type=float, nargs="+", default=None, metavar="LR",
                        help="with one name in --optimizers: its learning-rate grid instead "
                        "of the config's")
    parser.add_argument("--merge", type=pathlib.Path, nargs="+", default=None, metavar="JSON",
                        help="train nothing: join the results JSONs of runs of "
                        "--optimizers subsets (the first gives the machine and config)")
    parser.add_argument("--rescore", type=pathlib.Path, default=None, metavar="JSON",
                        help="train nothing: recompute steps to --target from a results "
                        "JSON's curves and rewrite the outputs")
    args = parser.parse_args(argv)
    if args.quick and args.out is None:
        parser.error("--quick writes its outputs under --out (a folder)")
    cfg = Config.quick() if args.quick else Config()
    if args.grid is not None:
        if len(args.optimizers) != 1:
            parser.error("--grid needs exactly one name in --optimizers")
        grids = dict(cfg.grids, **{args.optimizers[0]: tuple(args.grid)})
        cfg = dataclasses.replace(cfg, grids=tuple(grids.items()))
    if args.merge is not None:
        parts = [json.loads(path.read_text()) for path in args.merge]
        results = parts[0]
        found = {k: v for part in parts for k, v in part["optimizers"].items()}
        results["optimizers"] = {k: found[k] for k in OPTIMIZERS if k in found}
        results["date"] = max(part["date"] for part in parts)
        results["machine"]["load_avg_end"] = max(
            (part["machine"]["load_avg_end"] for part in parts), key=lambda x: x[0])
        results["machine"]["processes"] = len(parts)
        target = results["target"] if args.target is None else args.target
    elif args.rescore is not None:
        results = json.loads(args.rescore.read_text())
        target = results["target"] if args.target is None else args.target
    else:
        if "muon_with_adamw" in args.optimizers and "adamw" not in args.optimizers:
            parser.error("muon_with_adamw runs its AdamW groups at AdamW's best learning "
                         "rate: list adamw before it")
        names = tuple(n for n in OPTIMIZERS if n in args.optimizers)
        results = benchmark(cfg, names, log=lambda s: print(s, flush=True))
        results["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
        target = cfg.target if args.target is None else args.target
    write_outputs(score(results, target), args.out)


if __name__ == "__main__":
    main(sys.argv[1:])
