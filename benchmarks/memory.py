"""Memory: peak bytes of a donated step, optimizer state sizes, the accuracy cost of bf16 moments.

Run: ``.venv/bin/python benchmarks/memory.py`` (CPU, about a minute).
Writes ``benchmarks/results/memory.json`` and prints three markdown tables:

1. Peak bytes of one jitted ``update + apply_updates`` step, from XLA's own accounting
   (``compiled.memory_analysis()``): peak = arguments + outputs - aliased + temporaries.
   With params and state donated the outputs alias the inputs, so the peak is params +
   grads + state, with no second copy of either.
2. State bytes per parameter of every optimizer (float32 params), optxform vs optax vs
   torch.optim (torch's state after one step, its lazily created buffers included).
3. bf16 moments (``mu_dtype`` / ``nu_dtype``): final loss, accuracy and distance from the
   float32 trajectory on the bundled training problems.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

import common as C  # noqa: N812
import optxform

MB = 1e6


# --- 1. peak bytes ------------------------------------------------------------------------


def _peak(tx, params, grads, donate: bool) -> dict:
    state = tx.init(params)

    def step(p, s, g):
        u, s = tx.update(g, s, p)
        return optxform.apply_updates(p, u), s

    stats = jax.jit(step, donate_argnums=(0, 1) if donate else ()).lower(
        params, state, grads).compile().memory_analysis()
    nbytes = lambda t: sum(x.nbytes for x in jax.tree.leaves(t))  # noqa: E731
    live = nbytes(params) + nbytes(grads) + nbytes(state)
    peak = (stats.argument_size_in_bytes + stats.output_size_in_bytes
            - stats.alias_size_in_bytes + stats.temp_size_in_bytes)
    return {"params_mb": nbytes(params) / MB, "state_mb": nbytes(state) / MB,
            "live_mb": live / MB, "peak_mb": peak / MB, "temp_mb": stats.temp_size_in_bytes / MB,
            "alias_mb": stats.alias_size_in_bytes / MB, "peak_over_live": peak / live}


def peak_bytes() -> list[dict]:
    rows = []
    for workload in (C.leaves_workload(1_000, 1_000, "adam"),
                     C.Workload("adam, GPT-like 30M params in 100 leaves",
                                C.gpt_shapes(d=512, layers=8, vocab=8192, ctx=1024))):
        params, grads = workload.params(), workload.grads()
        layout = optxform.packed_layout(params)
        cases = [
            ("optax", lambda: C.optax_tx("adam"), params, grads),
            ("optxform", lambda: optxform.adam(C.LR), params, grads),
            ("optxform.packed", lambda: optxform.packed(optxform.adam(C.LR)), params, grads),
            ("optxform.flat", lambda: optxform.adam(C.LR), layout.pack(params),
             layout.pack(grads)),
            ("optxform.flat, bf16 mu+nu",
             lambda: optxform.adam(C.LR, mu_dtype=jnp.bfloat16, nu_dtype=jnp.bfloat16),
             layout.pack(params), layout.pack(grads)),
        ]
        for name, make, p, g in cases:
            for donate in (True, False):
                with jax.numpy_dtype_promotion("standard"):
                    row = _peak(make(), p, g, donate)
                row.update(workload=workload.name, variant=name, donated=donate)
                rows.append(row)
    print("\n| workload | variant | donated | params MB | state MB | peak MB | temp MB | "
          "peak / (params+grads+state) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['workload']} | {r['variant']} | {'yes' if r['donated'] else 'no'} | "
              f"{r['params_mb']:.1f} | {r['state_mb']:.1f} | {r['peak_mb']:.1f} | "
              f"{r['temp_mb']:.2f} | {r['peak_over_live']:.2f} |")
    return rows




# --- 2. state sizes -----------------------------------------------------------------------


def _optimizers():
    """(name, optxform factory, optax factory or None, torch (class, kwargs) or None)."""
    import optax
    return [
        ("sgd", lambda: optxform.sgd(0.1), lambda: optax.sgd(0.1), ("SGD", {"lr": 0.1})),
        ("sgd momentum", lambda: optxform.sgd(0.1, momentum=0.9),
         lambda: optax.sgd(0.1, momentum=0.9), ("SGD", {"lr": 0.1, "momentum": 0.9})),
        ("adam", lambda: optxform.adam(), lambda: optax.adam(1e-3), ("Adam", {})),
        ("adam amsgrad", lambda: optxform.adam(amsgrad=True), lambda: optax.amsgrad(1e-3),
         ("Adam", {"amsgrad": True})),
        ("adam, bf16 mu", lambda: optxform.adam(mu_dtype=jnp.bfloat16),
         lambda: optax.adam(1e-3, mu_dtype=jnp.bfloat16), None),
        ("adam, bf16 mu+nu", lambda: optxform.adam(mu_dtype=jnp.bfloat16,
                                                   nu_dtype=jnp.bfloat16), None, None),
        ("adamw", lambda: optxform.adamw(), lambda: optax.adamw(1e-3), ("AdamW", {})),
        ("adamax", lambda: optxform.adamax(), lambda: optax.adamax(2e-3), ("Adamax", {})),
        ("nadam", lambda: optxform.nadam(), lambda: optax.nadam(2e-3), ("NAdam", {})),
        ("radam", lambda: optxform.radam(), lambda: optax.radam(1e-3), ("RAdam", {})),
        ("adagrad", lambda: optxform.adagrad(), lambda: optax.adagrad(1e-2), ("Adagrad", {})),
        ("adadelta", lambda: optxform.adadelta(), lambda: optax.adadelta(1.0),
         ("Adadelta", {})),
        ("rmsprop", lambda: optxform.rmsprop(), lambda: optax.rmsprop(1e-2), ("RMSprop", {})),
        ("rmsprop centered+momentum", lambda: optxform.rmsprop(centered=True, momentum=0.9),
         lambda: optax.rmsprop(1e-2, centered=True, momentum=0.9),
         ("RMSprop", {"centered": True, "momentum": 0.9})),
        ("rprop", lambda: optxform.rprop(), lambda: optax.rprop(1e-2), ("Rprop", {})),
        ("asgd", lambda: optxform.asgd(), None, ("ASGD", {})),
        ("adafactor", lambda: optxform.adafactor(), lambda: optax.adafactor(1e-2),
         ("Adafactor", {})),
        ("lion", lambda: optxform.lion(), lambda: optax.lion(1e-4), None),
        ("lbfgs (history 100)", lambda: optxform.lbfgs(), None, ("LBFGS", {})),
    ]


def _torch_state_bytes(cls_name: str, kwargs: dict, shapes) -> int:
    import torch
    params = [torch.nn.Parameter(torch.randn(s)) for s in shapes]
    opt = getattr(torch.optim, cls_name)(params, **kwargs)
    loss_fn = lambda: sum((p * p).sum() for p in params)  # noqa: E731
    if cls_name == "LBFGS":
        def closure():
            opt.zero_grad()
            loss = loss_fn()
            loss.backward()
            return loss
        opt.step(closure)
        opt.step(closure)
    else:
        opt.zero_grad()
        loss_fn().backward()
        opt.step()
    total = 0
    for value in opt.state.values():
        stack = list(value.values())
        while stack:
            item = stack.pop()
            if torch.is_tensor(item):
                total += item.numel() * item.element_size()
            elif isinstance(item, (list, tuple)):
                stack.extend(item)
    return total


def state_sizes() -> list[dict]:
    shapes = [(1000, 1000), (1000,)]  # a dense layer: 1,001,000 float32 params
    params = {"w": jnp.zeros(shapes[0]), "b": jnp.zeros(shapes[1])}
    n = 1_001_000

    def nbytes(tree):
        return sum(int(np.prod(x.shape)) * jnp.dtype(x.dtype).itemsize
                   for x in jax.tree.leaves(tree))

    rows = []
    for name, ox, ot, tt in _optimizers():
        row = {"optimizer": name,
               "optxform": nbytes(jax.eval_shape(ox().init, params)) / n}
        with jax.numpy_dtype_promotion("standard"):
            row["optax"] = None if ot is None else nbytes(jax.eval_shape(ot().init, params)) / n
        row["torch"] = None if tt is None else _torch_state_bytes(tt[0], tt[1], shapes) / n
        rows.append(row)
    fmt = lambda x: "—" if x is None else f"{x:.2f}"  # noqa: E731
    print("\nState bytes per float32 parameter (a 1000x1000 weight + 1000 bias):")
    print("| optimizer | optxform | optax | torch.optim |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['optimizer']} | {fmt(r['optxform'])} | {fmt(r['optax'])} | "
              f"{fmt(r['torch'])} |")
    return rows


# --- 3. accuracy of bf16 moments --------------------------------------------------------


def bf16_accuracy(steps: int) -> list[dict]:
    rows = []
    settings = [("float32", None, None), ("bf16 mu", jnp.bfloat16, None),
                ("bf16 nu", None, jnp.bfloat16), ("bf16 mu+nu", jnp.bfloat16, jnp.bfloat16)]
    for problem_name, lr in (("mlp_digits", 1e-2), ("logreg_breast_cancer", 1e-2),
                             ("mlp_spirals", 1e-2)):
        problem = optxform.get_problem(problem_name)
        loss_fn, params0, data = problem.load()
        reference = None
        for label, mu_dtype, nu_dtype in settings:
            tx = optxform.adam(lr, mu_dtype=mu_dtype, nu_dtype=nu_dtype)

            @jax.jit
            def train(params, tx=tx):
                def body(carry, _):
                    p, s = carry
                    loss, g = jax.value_and_grad(loss_fn)(p, data)
                    u, s = tx.update(g, s, p)
                    return (optxform.apply_updates(p, u), s), loss
                (p, _), losses = jax.lax.scan(body, (params, tx.init(params)), None, length=steps)
                return p, losses

            params, losses = train(params0)
            flat = np.concatenate([np.ravel(x) for x in jax.tree.leaves(params)])
            if reference is None:
                reference = flat
            rows.append({
                "problem": problem_name, "moments": label, "steps": steps,
                "final_loss": float(loss_fn(params, data)),
                "accuracy": problem.accuracy(params, data),
                "rel_param_diff": float(np.linalg.norm(flat - reference)
                                        / np.linalg.norm(reference)),
            })
    print(f"\nAdam with low-precision moments ({steps} full-batch steps, lr 1e-2):")
    print("| problem | moments | final loss | train accuracy | ‖θ − θ_f32‖ / ‖θ_f32‖ |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['problem']} | {r['moments']} | {r['final_loss']:.5f} | "
              f"{r['accuracy']:.4f} | {r['rel_param_diff']:.2e} |")
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500, help="training steps for part 3")
    parser.add_argument("--skip-peak", action="store_true", help="skip part 1")
    args = parser.parse_args(argv)
    info = C.machine_info()
    payload = {"machine": info}
    if not args.skip_peak:
        payload["peak"] = peak_bytes()
    payload["state_sizes"] = state_sizes()
    payload["bf16"] = bf16_accuracy(args.steps)
    print(f"\nresults: {C.save_results('memory', payload)}")


if __name__ == "__main__":
    main()
