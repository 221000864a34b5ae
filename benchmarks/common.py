"""Shared machinery of the performance benchmarks: workloads, variants, interleaved timing.

A *workload* is a params tree (shapes and dtypes) and an optimizer recipe. A *variant* runs
the workload with one library and layout:

* ``optax``            optax's transform on the tree (jit, params and state donated)
* ``optxform``         optxform's transform on the tree (same jit and donation)
* ``optxform.packed``  ``optxform.packed(tx)``: the tree API, state packed per dtype
  (``optxform.packed(materialize)``: with ``materialize=True``)
* ``optxform.flat``    params, grads and state kept packed across steps (``packed_layout``)
* ``torch.foreach`` / ``torch.fused``  torch.optim on CPU tensors, ``foreach=True`` / ``fused=True``

Every JAX variant times one call of a jitted ``step(params, state, grads) -> (params,
state)`` (update + apply_updates), blocking on the result; torch times ``opt.step()``.
Rounds interleave the variants (round 1: A B C ..., round 2: A B C ...) so that a change in
machine load hits all of them alike; each report is the median over all timed steps.

Each variant is built and timed in processes of its own (:func:`isolated`: two per
variant by default, ``--copies``; the scripts' ``--one-process`` turns this off). In one
process, identical programs do not run equally fast: the executable compiled first runs
faster than copies of the same program compiled after it, and every executable runs
slower beside the others than alone, so the variant built first (optax) was favoured
(``update_step.py --only adam_1k --aa --one-process``: an identical second optax variant
took 1.17x the first one's step time; in worker processes, 0.99x). Alone in its process
each variant is the only program there, as a training job's step is.

The *floor* of a step is its compulsory memory traffic (Adam: read params, grads and two
moments, write params and two moments: 28 bytes per float32 param) divided by the
bandwidth of a plain elementwise copy of the same number of bytes, measured in the same run.
"""

from __future__ import annotations

import ctypes
import dataclasses
import importlib
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import time
import traceback
from typing import Any, Callable, Sequence

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import optxform  # noqa: E402

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


# --- machine ------------------------------------------------------------------------------


def machine_info() -> dict:
    """CPU, core count, load averages and library versions, recorded next to every table."""
    import optax
    try:
        import torch
        torch_version = torch.__version__
    except ImportError:  # torch is optional for the JAX-only parts
        torch_version = None
    return {
        "cpu": cpu_name(), "cores": os.cpu_count(), "load_avg": [round(x, 2) for x in os.getloadavg()],
        "uptime": _uptime(), "jax": jax.__version__, "optax": optax.__version__,
        "torch": torch_version, "backend": jax.default_backend(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (else ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        if names:
            return names[0]
    except OSError:
        pass
    return platform.processor() or ""


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


# --- workloads ----------------------------------------------------------------------------


@dataclasses.dataclass
class Workload:
    """A params layout and an optimizer recipe (``"adam"`` or ``"chain"``)."""

    name: str
    shapes: list[tuple[tuple[int, ...], str]]  # (shape, dtype name) per leaf
    recipe: str = "adam"

    @property
    def num_leaves(self) -> int:
        return len(self.shapes)

    @property
    def num_params(self) -> int:
        return int(sum(np.prod(s, dtype=np.int64) for s, _ in self.shapes))

    def traffic_bytes(self, moment_bytes: int | None = None) -> int:
        """Compulsory bytes per step: params r+w, grads r, two moments r+w (+ a grad read
        for the global norm in the clip chain). Moments in the param dtype by default."""
        total = 0
        for shape, dtype in self.shapes:
            n = int(np.prod(shape, dtype=np.int64))
            p = jnp.dtype(dtype).itemsize
            m = p if moment_bytes is None else moment_bytes
            total += n * (3 * p + 4 * m + (p if self.recipe == "chain" else 0))
        return total

    def params(self, seed: int = 0) -> dict:
        rng = np.random.default_rng(seed)
        return {f"p{i:05d}": jnp.asarray(rng.standard_normal(shape, np.float32), dtype)
                for i, (shape, dtype) in enumerate(self.shapes)}

    def grads(self, seed: int = 1) -> dict:
        rng = np.random.default_rng(seed)
        return {f"p{i:05d}": jnp.asarray(1e-2 * rng.standard_normal(shape, np.float32), dtype)
                for i, (shape, dtype) in enumerate(self.shapes)}


def leaves_workload(num_leaves: int, size: int, recipe: str = "adam",
                    dtypes=("float32",), name: str | None = None) -> Workload:
    shapes = [((size,), dtypes[i % len(dtypes)]) for i in range(num_leaves)]
    return Workload(name or f"{recipe}, {num_leaves:,} leaves x {size:,}", shapes, recipe)


def gpt_shapes(d: int, layers: int, vocab: int, ctx: int, dtype: str = "float32"):
    """The leaves of a GPT-2-style decoder (tied embeddings): 12 per block + 4."""
    shapes = [((vocab, d), dtype), ((ctx, d), dtype)]
    for _ in range(layers):
        shapes += [((d,), dtype), ((d,), dtype),                      # ln_1
                   ((d, 3 * d), dtype), ((3 * d,), dtype),           # attn qkv
                   ((d, d), dtype), ((d,), dtype),                   # attn proj
                   ((d,), dtype), ((d,), dtype),                     # ln_2
                   ((d, 4 * d), dtype), ((4 * d,), dtype),           # mlp fc
                   ((4 * d, d), dtype), ((d,), dtype)]               # mlp proj
    shapes += [((d,), dtype), ((d,), dtype)]                          # ln_f
    return shapes


# --- optimizers ---------------------------------------------------------------------------

LR, WD, MAX_NORM, WARMUP, DECAY_STEPS = 1e-3, 1e-2, 1.0, 100, 10_000


def optxform_tx(recipe: str, **adam_kw):
    if recipe == "adam":
        return optxform.adam(LR, **adam_kw)
    schedule = optxform.warmup_cosine_decay_schedule(0.0, LR, WARMUP, DECAY_STEPS)
    return optxform.chain(optxform.clip_by_global_norm(MAX_NORM),
                          optxform.adamw(schedule, weight_decay=WD, **adam_kw))


def optax_tx(recipe: str):
    import optax
    if recipe == "adam":
        return optax.adam(LR)
    schedule = optax.warmup_cosine_decay_schedule(0.0, LR, WARMUP, DECAY_STEPS)
    return optax.chain(optax.clip_by_global_norm(MAX_NORM),
                       optax.adamw(schedule, weight_decay=WD))


# --- variants -----------------------------------------------------------------------------


@dataclasses.dataclass
class Variant:
    """One way of running a workload: ``step()`` advances one optimizer step and blocks."""

    name: str
    step: Callable[[], None]
    compile_s: float | None = None
    peak_bytes: int | None = None
    times: list[float] = dataclasses.field(default_factory=list)
    recompile: Callable[[], float] | None = None  # a second timed compile, where offered

    def median_ms(self) -> float:
        return 1e3 * statistics.median(self.times)

    def run(self, reps: int) -> list[float]:
        """Seconds of each of ``reps`` steps."""
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            self.step()
            times.append(time.perf_counter() - start)
        return times

    def close(self) -> None:
        """Release what the variant holds (a worker process, for :func:`isolated`)."""


def _jax_step(tx):
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optxform.apply_updates(params, updates), state
    return step


def jax_variant(name: str, tx, params, grads, donate: bool = True) -> Variant:
    """Compile ``update + apply_updates`` (timed: trace + lower + compile) and wrap a step."""
    state = tx.init(params)
    start = time.perf_counter()
    compiled = jax.jit(_jax_step(tx), donate_argnums=(0, 1) if donate else ()).lower(
        params, state, grads).compile()
    compile_s = time.perf_counter() - start
    stats = compiled.memory_analysis()
    peak = None
    if stats is not None:
        peak = (stats.argument_size_in_bytes + stats.output_size_in_bytes
                - stats.alias_size_in_bytes + stats.temp_size_in_bytes)
    box = {"params": jax.tree.map(jnp.copy, params), "state": state}

    def step():
        box["params"], box["state"] = compiled(box["params"], box["state"], grads)
        jax.block_until_ready(box["params"])

    step()  # first call: allocation and warm-up, not timed
    return Variant(name, step, compile_s, peak)


#: The variants every optimizer-step script runs, by name.
JAX_VARIANTS = ("optax", "optxform", "optxform.packed", "optxform.flat")
TORCH_VARIANTS = ("torch.foreach", "torch.fused")


def variant_of(workload: Workload, name: str) -> Variant:
    """One JAX or torch variant of ``workload``, by name."""
    if name.startswith("torch."):
        return torch_variants(workload, (name,))[0]
    return jax_variants(workload, (name,))[0]


def jax_variants(workload: Workload, which=JAX_VARIANTS) -> list[Variant]:
    params, grads = workload.params(), workload.grads()
    out = []
    for name in which:
        if name == "optax":
            with jax.numpy_dtype_promotion("standard"):
                out.append(jax_variant(name, optax_tx(workload.recipe), params, grads))
        elif name == "optxform":
            out.append(jax_variant(name, optxform_tx(workload.recipe), params, grads))
        elif name == "optxform.packed":
            out.append(jax_variant(name, optxform.packed(optxform_tx(workload.recipe)),
                                   params, grads))
        elif name == "optxform.packed(materialize)":
            out.append(jax_variant(name, optxform.packed(optxform_tx(workload.recipe),
                                                         materialize=True), params, grads))
        elif name == "optxform.flat":
            layout = optxform.packed_layout(params)
            out.append(jax_variant(name, optxform_tx(workload.recipe), layout.pack(params),
                                   layout.pack(grads)))
        else:
            raise ValueError(f"unknown JAX variant {name!r}")
    return out


TORCH_THREADS = 1


def torch_variants(workload: Workload, which=TORCH_VARIANTS,
                   device: str = "cpu", threads: int | None = None) -> list[Variant]:
    """torch.optim Adam/AdamW (+ clip_grad_norm_ and a LambdaLR schedule for ``"chain"``).

    On the CPU torch runs with ``threads`` intra-op threads (default :data:`TORCH_THREADS`
    = 1): on the shared 2-core benchmark machine its fused Adam took 6 ms per 1,000 x 1,000
    step with 1 thread and 24-55 ms with 2 (OpenMP workers spin-waiting for a core), so 1
    is torch's best setting there. Pass ``--torch-threads`` to the scripts to change it.
    """
    import torch
    if device == "cpu":
        torch.set_num_threads(threads or TORCH_THREADS)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    out = []
    for name in which:
        gen = torch.Generator().manual_seed(0)
        params = [torch.randn(shape, generator=gen).to(device=device, dtype=dtypes[dt])
                  .requires_grad_() for shape, dt in workload.shapes]
        for p in params:
            p.grad = 1e-2 * torch.randn(p.shape, generator=gen).to(device=device, dtype=p.dtype)
        kind = {"foreach": name.endswith("foreach"), "fused": name.endswith("fused")}
        if workload.recipe == "adam":
            opt = torch.optim.Adam(params, lr=LR, **kind)
            sched = None
        else:
            opt = torch.optim.AdamW(params, lr=LR, weight_decay=WD, **kind)
            sched = torch.optim.lr_scheduler.LambdaLR(opt, _warmup_cosine)

        def step(opt=opt, sched=sched, params=params):
            if sched is not None:
                torch.nn.utils.clip_grad_norm_(params, MAX_NORM, foreach=True)
            opt.step()
            if sched is not None:
                sched.step()
            sync()

        step()
        out.append(Variant(name, step))
    return out


def _warmup_cosine(t: int) -> float:
    """torch LambdaLR factor equal to the JAX recipes' warmup-cosine schedule / LR."""
    import math
    if t < WARMUP:
        return t / WARMUP
    frac = min(1.0, (t - WARMUP) / (DECAY_STEPS - WARMUP))
    return 0.5 * (1.0 + math.cos(math.pi * frac))


class CopyProbe:
    """Plain-copy bandwidth: a jitted in-place elementwise pass (read n bytes, write n bytes).

    The buffer is donated and fed back, like the params and state of the timed steps, so
    neither side pays for fresh allocations (page faults). Made once, timed every round.
    """

    def __init__(self, num_bytes: int):
        self.x = jnp.ones(max(1, num_bytes // 4), jnp.float32)
        self.f = jax.jit(lambda a: a + jnp.float32(1.0), donate_argnums=0).lower(
            self.x).compile()
        self.x = self.f(self.x)
        jax.block_until_ready(self.x)

    def __call__(self, reps: int = 10) -> float:
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            self.x = self.f(self.x)
            jax.block_until_ready(self.x)
            times.append(time.perf_counter() - t)
        return 2 * self.x.size * 4 / statistics.median(times) / 1e9


def copy_bandwidth(num_bytes: int, rounds: int = 5, reps: int = 10) -> float:
    """GB/s of :class:`CopyProbe` over ``num_bytes`` (median of ``rounds`` x ``reps``)."""
    probe = CopyProbe(num_bytes)
    return statistics.median(probe(reps) for _ in range(rounds))


def interleave(variants: list[Variant], rounds: int, reps: int,
               extra: Callable[[], float] | None = None) -> list[float]:
    """Time ``reps`` steps of each variant per round, variants in turn; returns ``extra()``'s
    per-round results (e.g. a copy-bandwidth probe run in the same rounds)."""
    probes = []
    for _ in range(rounds):
        for v in variants:
            v.times += v.run(reps)
        if extra is not None:
            probes.append(extra())
    return probes


# --- one process per variant --------------------------------------------------------------


class _RemoteVariant(Variant):
    """A variant living in worker processes (one or more copies of it): ``run`` and
    ``recompile`` are requests to them."""

    def __init__(self, name: str, workers: list, ready: list[dict]) -> None:
        compiles = [r["compile_s"] for r in ready if r["compile_s"] is not None]
        super().__init__(name, step=None, compile_s=min(compiles) if compiles else None,
                         peak_bytes=ready[0]["peak_bytes"])
        self._workers = workers  # (connection, process) pairs
        if ready[0]["recompile"]:
            self.recompile = lambda: self._ask(self._workers[0], "recompile")

    @staticmethod
    def _ask(worker: tuple, command: str, arg: Any = None) -> Any:
        worker[0].send((command, arg))
        return worker[0].recv()

    def run(self, reps: int) -> list[float]:
        """``reps`` steps in each copy, one copy after the other."""
        return [t for worker in self._workers for t in self._ask(worker, "run", reps)]

    def close(self) -> None:
        for conn, process in self._workers:
            if process.is_alive():
                conn.send(("stop", None))
                process.join(timeout=30)
            conn.close()


def built(module: str, key: str, names: Sequence[str], copies: int,
          settings: dict | None = None) -> list[Variant]:
    """The variants ``names`` of workload ``key`` from ``module.build_variant``: in worker
    processes (:func:`isolated`, ``copies`` per variant) or, with ``copies=0``, all in this
    process (the ``--one-process`` way)."""
    if copies:
        return isolated(module, key, names, copies, settings)
    build_variant = importlib.import_module(module).build_variant
    return label_repeats([build_variant(key, name) for name in names])


def isolated(module: str, key: str, names: Sequence[str], copies: int = 1,
             settings: dict | None = None) -> list[Variant]:
    """The variants ``names`` of workload ``key``, each built and timed in processes of its
    own: ``module.build_variant(key, name)`` runs there (``module`` is the script's name,
    e.g. ``"update_step"``). With ``copies`` > 1 each variant runs in that many processes
    and its times are pooled (a process's memory layout moves its times by a few percent;
    pooling averages that out); its compile time is the fastest copy's. Workers start one
    after another, each once the previous one has compiled, so that no compile shares the
    machine. A name given twice is built twice (an A/A check of the method); the second is
    labelled ``"<name> (again)"``. ``settings`` overrides attributes of this module in the
    workers (e.g. ``{"TORCH_THREADS": 1}``). Call :meth:`Variant.close` on each when done.
    """
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked JAX
    out: list[Variant] = []
    for name in names:
        workers, ready = [], []
        for _ in range(copies):
            conn, child_conn = context.Pipe()
            process = context.Process(target=_serve, args=(module, key, name, child_conn,
                                                           settings or {}), daemon=True)
            process.start()
            child_conn.close()
            status, payload = conn.recv()
            if status != "ready":
                process.join(timeout=30)
                raise RuntimeError(f"variant {name!r} of {key!r} failed in its worker:\n"
                                   f"{payload}")
            workers.append((conn, process))
            ready.append(payload)
        out.append(_RemoteVariant(name, workers, ready))
    return label_repeats(out)


def label_repeats(variants: list[Variant]) -> list[Variant]:
    """``variants`` with the second of two equal names labelled ``"<name> (again)"``."""
    seen = set()
    for v in variants:
        if v.name in seen:
            v.name = f"{v.name} (again)"
        seen.add(v.name)
    return variants


def _serve(module: str, key: str, name: str, conn: Any, settings: dict) -> None:
    """A worker of :func:`isolated`: build the variant, then answer ``run`` / ``recompile``
    requests until ``stop``."""
    try:
        for attribute, value in settings.items():
            setattr(importlib.import_module(__name__), attribute, value)
        variant = importlib.import_module(module).build_variant(key, name)
    except Exception:  # noqa: BLE001 - the parent raises it with the traceback
        conn.send(("error", traceback.format_exc()))
        return
    _return_freed_memory()
    conn.send(("ready", {"compile_s": variant.compile_s, "peak_bytes": variant.peak_bytes,
                         "recompile": variant.recompile is not None}))
    while True:
        command, arg = conn.recv()
        if command == "run":
            conn.send(variant.run(arg))
        elif command == "recompile":
            conn.send(variant.recompile())
        else:
            return


def _return_freed_memory() -> None:
    """Hand the heap the compile freed back to the system (glibc keeps it otherwise: a
    10,000-leaf compile peaks at ~14 GB, and the next worker's compile would need as much
    again beside it)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def workload_parser(doc: str, workloads: dict, quick: tuple) -> Any:
    """The scripts' shared command line: ``--quick``, ``--only NAME ...``, ``--rounds``,
    ``--reps``, ``--one-process``, ``--copies``, ``--aa`` (a script adds its own options to
    the returned parser)."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(quick)}")
    parser.add_argument("--only", nargs="*", choices=sorted(workloads))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--one-process", action="store_true",
                        help="build and time all variants in this process (see common.py)")
    parser.add_argument("--copies", type=int, default=2,
                        help="processes per variant, times pooled (default 2)")
    parser.add_argument("--aa", action="store_true",
                        help="add a second, identical optax variant (an A/A check)")
    return parser


def save_results(name: str, payload: dict) -> str:
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, f"{name}.json")
    with open(path, "w") as f:
        json.dump(payload, f, indent=1, default=_jsonable)
    return path


def _jsonable(x: Any):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    raise TypeError(type(x))


def fmt_ms(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:.2f}" if x < 100 else f"{x:.0f}"


def fmt_s(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"
