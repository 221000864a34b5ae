"""Low-memory optimizer state: final loss of each storage policy vs float32 moments.

Run: ``PYTHONPATH=. python benchmarks/low_memory.py`` (CPU, a few minutes).
Writes ``benchmarks/results/low_memory.json`` and prints a markdown table.

AdamW with its two moments stored as float32 (the baseline), bfloat16 rounded to nearest,
bfloat16 with stochastic rounding, and 8-bit block-wise codes (block 256) rounded to the
nearest code (as bitsandbytes) or stochastically, on

* the chooser's training problems that need nothing beyond optxform's dependencies
  (``logreg_spirals``, ``mlp_spirals``; the scikit-learn datasets run too where
  scikit-learn is installed), full batch;
* a tiny character-level transformer (2 layers, width 64, context 32) on text from the
  Python standard library's own source files, minibatches of 32.

5 seeds each (the seed sets the initial params and, for the transformer, the batches).
Reported: the mean final loss, its relative difference from float32 (mean and the worst
seed), and the state bytes per parameter.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import optxform  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                       "low_memory.json")
POLICIES = {"float32": None, "bfloat16": jnp.bfloat16, "bfloat16_sr": "bfloat16_sr",
            "int8_blockwise": "int8_blockwise", "int8_blockwise_sr": "int8_blockwise_sr"}
SEEDS = 5


def optimizer(policy, learning_rate: float, steps: int):
    schedule = optxform.warmup_cosine_decay_schedule(0.0, learning_rate, steps // 10, steps)
    return optxform.adamw(schedule, weight_decay=0.01, mu_dtype=policy, nu_dtype=policy)


def state_bytes_per_param(tx, params) -> float:
    state = jax.eval_shape(tx.init, params)
    n = sum(x.size for x in jax.tree.leaves(params))
    nbytes = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(state) if x.ndim > 0)
    return nbytes / n


def trainer(loss_fn, batches, tx, steps: int):
    """A jitted ``(params, seed_data) -> params`` running ``steps`` steps of ``tx`` (one
    compile, reused for every seed); ``batches(seed_data, t)`` is step ``t``'s batch."""

    def run(params, seed_data):
        def one(carry, t):
            p, s = carry
            grads = jax.grad(loss_fn)(p, batches(seed_data, t))
            u, s = tx.update(grads, s, p)
            return (optxform.apply_updates(p, u), s), None

        return jax.lax.scan(one, (params, tx.init(params)), jnp.arange(steps))[0][0]

    return jax.jit(run)


# --- the chooser's problems ------------------------------------------------------------


def problems():
    out = []
    for name, problem in optxform.TRAINING_PROBLEMS.items():
        if problem.needs_sklearn:
            try:
                import sklearn  # noqa: F401
            except ImportError:
                continue
        out.append((name, problem))
    return out


def run_problem(problem, policy, seeds: int) -> tuple[list[float], float]:
    loss_fn, _, data = problem.load()
    tx = optimizer(policy, 0.01, problem.steps)
    run = trainer(loss_fn, lambda d, t: d, tx, problem.steps)
    losses = []
    for seed in range(seeds):
        _, params, _ = problem.load(seed=seed)
        losses.append(float(loss_fn(run(params, data), data)))
    return losses, state_bytes_per_param(tx, params)


# --- a tiny character transformer ------------------------------------------------------

CONTEXT, WIDTH, HEADS, LAYERS, BATCH, CHAR_STEPS = 32, 64, 4, 2, 32, 400


def corpus() -> np.ndarray:
    """ASCII text of a few standard-library modules, as byte codes (fixed, offline)."""
    import collections
    import dataclasses
    import functools
    import inspect
    import textwrap
    text = "".join(inspect.getsource(m) for m in (textwrap, functools, collections,
                                                   dataclasses))
    return np.frombuffer(text.encode("ascii", "ignore"), np.uint8) % 128


def char_params(key, vocab: int = 128) -> dict:
    keys = iter(jax.random.split(key, 4 + 4 * LAYERS))
    dense = lambda k, a, b: jax.random.normal(k, (a, b)) / np.sqrt(a)  # noqa: E731
    params = {"embed": jax.random.normal(next(keys), (vocab, WIDTH)) * 0.02,
              "pos": jax.random.normal(next(keys), (CONTEXT, WIDTH)) * 0.02,
              "head": dense(next(keys), WIDTH, vocab), "layers": []}
    for _ in range(LAYERS):
        params["layers"].append({
            "qkv": dense(next(keys), WIDTH, 3 * WIDTH), "out": dense(next(keys), WIDTH, WIDTH),
            "up": dense(next(keys), WIDTH, 4 * WIDTH), "down": dense(next(keys), 4 * WIDTH, WIDTH),
            "ln1": jnp.ones(WIDTH), "ln2": jnp.ones(WIDTH)})
    return params


def _norm(x, scale):
    return scale * (x - x.mean(-1, keepdims=True)) / jnp.sqrt(x.var(-1, keepdims=True) + 1e-5)


def char_loss(params, batch):
    tokens = batch[:, :-1]
    x = params["embed"][tokens] + params["pos"][None]
    mask = jnp.tril(jnp.ones((CONTEXT, CONTEXT), bool))
    for layer in params["layers"]:
        q, k, v = jnp.split(_norm(x, layer["ln1"]) @ layer["qkv"], 3, axis=-1)
        split = lambda a: a.reshape(a.shape[0], CONTEXT, HEADS, -1)  # noqa: E731
        scores = jnp.einsum("bqhd,bkhd->bhqk", split(q), split(k)) / np.sqrt(WIDTH // HEADS)
        attn = jax.nn.softmax(jnp.where(mask, scores, -1e9), axis=-1)
        x = x + jnp.einsum("bhqk,bkhd->bqhd", attn, split(v)).reshape(x.shape) @ layer["out"]
        x = x + jax.nn.gelu(_norm(x, layer["ln2"]) @ layer["up"]) @ layer["down"]
    logits = x @ params["head"]
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, batch[:, 1:, None], axis=-1))


def run_char(policy, seeds: int, text: np.ndarray) -> tuple[list[float], float]:
    """Validation loss after training from each seed's params on each seed's batches."""
    data = jnp.asarray(text, jnp.int32)
    split = int(0.9 * len(text))
    train_ids, valid_ids = data[:split], data[split:]
    window = jnp.arange(CONTEXT + 1)
    valid_starts = jnp.arange(0, len(valid_ids) - CONTEXT - 1, CONTEXT)[:256]
    valid = valid_ids[valid_starts[:, None] + window[None, :]]
    tx = optimizer(policy, 3e-3, CHAR_STEPS)
    run = trainer(char_loss, lambda starts, t: train_ids[starts[t][:, None] + window[None, :]],
                  tx, CHAR_STEPS)
    losses = []
    for seed in range(seeds):
        key = jax.random.key(seed)
        starts = jax.random.randint(jax.random.fold_in(key, 1), (CHAR_STEPS, BATCH), 0,
                                    split - CONTEXT - 1)
        params = char_params(key)
        losses.append(float(char_loss(run(params, starts), valid)))
    return losses, state_bytes_per_param(tx, params)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=SEEDS)
    parser.add_argument("--out", default=RESULTS)
    args = parser.parse_args(argv)
    began = time.time()
    results = {"machine": {"jax": jax.__version__, "backend": jax.default_backend(),
                           "cores": os.cpu_count()},
               "optimizer": "adamw (warmup-cosine, weight_decay 0.01)", "seeds": args.seeds,
               "problems": {}}
    text = corpus()
    tasks = [(name, lambda pol, n, p=p: run_problem(p, pol, n)) for name, p in problems()]
    tasks.append((f"char_transformer ({len(text)} chars)",
                  lambda pol, n: run_char(pol, n, text)))
    for name, task in tasks:
        row = {}
        for label, policy in POLICIES.items():
            losses, bytes_pp = task(policy, args.seeds)
            row[label] = {"losses": losses, "mean": float(np.mean(losses)),
                          "state_bytes_per_param": bytes_pp}
        base = np.asarray(row["float32"]["losses"])
        for label in POLICIES:
            rel = (np.asarray(row[label]["losses"]) - base) / base
            row[label]["rel_diff_mean"] = float(rel.mean())
            row[label]["rel_diff_worst"] = float(rel[np.argmax(np.abs(rel))])
        results["problems"][name] = row
        print(f"{name}: " + ", ".join(f"{k} {v['mean']:.4f}" for k, v in row.items()),
              file=sys.stderr, flush=True)
    params = char_params(jax.random.key(0))
    results["state_bytes_per_param"] = {
        label: state_bytes_per_param(optimizer(policy, 1e-3, 10), params)
        for label, policy in POLICIES.items()}
    results["seconds"] = round(time.time() - began, 1)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    print(table(results))
    return results


def table(results: dict) -> str:
    lines = ["| problem | " + " | ".join(POLICIES) + " |",
             "|---|" + "---|" * len(POLICIES)]
    for name, row in results["problems"].items():
        cells = [f"{row['float32']['mean']:.4f}"] + [
            f"{row[k]['mean']:.4f} ({100 * row[k]['rel_diff_mean']:+.2f}%, worst "
            f"{100 * row[k]['rel_diff_worst']:+.2f}%)" for k in list(POLICIES)[1:]]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("| state bytes / param (AdamW) | " + " | ".join(
        f"{results['state_bytes_per_param'][k]:.3f}" for k in POLICIES) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
