"""Draw every optxform schedule into docs/figures/schedules.png (used by docs/schedules.md).

Run from the repository root:  python docs/figures/make_schedules.py
"""

from __future__ import annotations

import io
import os
import sys

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
import optxform as ox  # noqa: E402

STEPS = 300
OUT = os.path.join(os.path.dirname(__file__), "schedules.png")


def values(schedule, steps=STEPS):
    return np.asarray(jax.jit(schedule)(jnp.arange(steps, dtype=jnp.int32)))


def plateau_scales():
    """reduce_on_plateau's scale on a scripted loss: improving, then flat, then a drop."""
    losses = np.concatenate([np.linspace(2.0, 1.0, 60), np.full(80, 1.0),
                             np.linspace(1.0, 0.6, 40), np.full(120, 0.6)]).astype(np.float32)
    tx = ox.reduce_on_plateau(factor=0.5, patience=15, cooldown=10)
    params = {"w": jnp.zeros(())}

    def step(state, loss):
        updates, state = tx.update({"w": jnp.ones(())}, state, params, loss=loss)
        return state, updates["w"]

    _, scales = jax.lax.scan(step, tx.init(params), jnp.asarray(losses))
    return losses, np.asarray(scales)


PANELS = [
    ("step_decay / multistep_decay\n(StepLR, MultiStepLR)", [
        ("step_decay(1, 60, 0.5)", ox.step_decay(1.0, 60, 0.5)),
        ("multistep_decay(1, [50, 120, 200], 0.3)", ox.multistep_decay(1.0, [50, 120, 200], 0.3)),
        ("piecewise_constant_decay (keras)",
         ox.piecewise_constant_decay([80, 160], [0.8, 0.4, 0.1])),
    ]),
    ("exponential_decay / inverse_time_decay\n(ExponentialLR, keras)", [
        ("exponential_decay(1, 1, 0.99)", ox.exponential_decay(1.0, 1, 0.99)),
        ("exponential_decay(1, 40, 0.6, staircase)",
         ox.exponential_decay(1.0, 40, 0.6, staircase=True)),
        ("inverse_time_decay(1, 20, 0.5)", ox.inverse_time_decay(1.0, 20, 0.5)),
    ]),
    ("linear / polynomial\n(LinearLR, PolynomialLR)", [
        ("linear_schedule(1/3, 1, 50)", ox.linear_schedule(1 / 3, 1.0, 50)),
        ("polynomial_schedule(1, 0, 2, 250)", ox.polynomial_schedule(1.0, 0.0, 2.0, 250)),
        ("polynomial_schedule(1, 0, 0.5, 250)", ox.polynomial_schedule(1.0, 0.0, 0.5, 250)),
    ]),
    ("polynomial_schedule(cycle=True)\n(keras PolynomialDecay)", [
        ("(1, 0.1, 1.5, 60, cycle)", ox.polynomial_schedule(1.0, 0.1, 1.5, 60, cycle=True)),
    ]),
    ("cosine_decay_schedule / cosine_annealing\n(CosineAnnealingLR)", [
        ("cosine_decay_schedule(1, 120, alpha=0.1)", ox.cosine_decay_schedule(1.0, 120, 0.1)),
        ("cosine_annealing(1, 120) (torch: periodic)", ox.cosine_annealing(1.0, 120)),
    ]),
    ("warm-up then decay\n(optax, keras CosineDecay)", [
        ("warmup_cosine_decay_schedule(0, 1, 40, 260, 0.05)",
         ox.warmup_cosine_decay_schedule(0.0, 1.0, 40, 260, 0.05)),
        ("warmup_exponential_decay_schedule(0, 1, 40, 20, 0.7)",
         ox.warmup_exponential_decay_schedule(0.0, 1.0, 40, 20, 0.7)),
    ]),
    ("cosine_annealing_warm_restarts\n(CosineAnnealingWarmRestarts)", [
        ("t_0=60, t_mult=1", ox.cosine_annealing_warm_restarts(1.0, 60)),
        ("t_0=20, t_mult=2, eta_min=0.1", ox.cosine_annealing_warm_restarts(1.0, 20, 2, 0.1)),
    ]),
    ("cosine_decay_restarts\n(keras CosineDecayRestarts)", [
        ("F=30, t_mul=1.5, m_mul=0.7, alpha=0.05",
         ox.cosine_decay_restarts(1.0, 30, 1.5, 0.7, 0.05)),
    ]),
    ("one_cycle (OneCycleLR)", [
        ("cos", ox.one_cycle(STEPS, 1.0)),
        ("linear", ox.one_cycle(STEPS, 1.0, anneal_strategy="linear")),
        ("cos, three_phase", ox.one_cycle(STEPS, 1.0, three_phase=True)),
    ]),
    ("one_cycle_momentum\n(OneCycleLR cycle_momentum)", [
        ("cos", ox.one_cycle_momentum(STEPS)),
        ("cos, three_phase", ox.one_cycle_momentum(STEPS, three_phase=True)),
    ]),
    ("cyclic (CyclicLR)", [
        ("triangular", ox.cyclic(0.1, 1.0, 40)),
        ("triangular2", ox.cyclic(0.1, 1.0, 40, mode="triangular2")),
        ("exp_range, gamma=0.995", ox.cyclic(0.1, 1.0, 30, 50, "exp_range", 0.995)),
    ]),
    ("cyclic_momentum\n(CyclicLR cycle_momentum)", [
        ("triangular", ox.cyclic_momentum(0.8, 0.9, 40)),
        ("triangular2", ox.cyclic_momentum(0.8, 0.9, 40, mode="triangular2")),
    ]),
    ("join_schedules (SequentialLR)", [
        ("linear warm-up, then cosine, then constant",
         ox.join_schedules([ox.linear_schedule(0.0, 1.0, 30), ox.cosine_annealing(1.0, 150),
                            ox.constant_schedule(0.05)], [30, 180])),
    ]),
    ("constant_schedule", [("constant_schedule(0.5)", ox.constant_schedule(0.5))]),
]


def main():
    columns = 4
    rows = (len(PANELS) + 1 + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(14, 2.7 * rows), sharex=True)
    steps = np.arange(STEPS)
    for ax, (title, curves) in zip(axes.flat, PANELS):
        for label, schedule in curves:
            ax.plot(steps, values(schedule), label=label, linewidth=1.3)
        ax.set_title(title, fontsize=8.5)
        ax.legend(fontsize=6.5, loc="best", frameon=False)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    ax = axes.flat[len(PANELS)]
    losses, scales = plateau_scales()
    ax.plot(steps, scales[:STEPS], label="scale", linewidth=1.3)
    ax.plot(steps, losses[:STEPS] / losses.max(), "--", label="loss (scaled)", linewidth=1)
    ax.set_title("reduce_on_plateau (ReduceLROnPlateau)\nfactor=0.5, patience=15, cooldown=10",
                 fontsize=8.5)
    ax.legend(fontsize=6.5, frameon=False)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(PANELS) + 1:]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("step t", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=72)
    # A 64-colour palette keeps the committed PNG small (line art needs no more).
    from PIL import Image

    image = Image.open(buffer).convert("RGB").quantize(colors=64)
    image.save(OUT, optimize=True)
    print(f"wrote {OUT} ({os.path.getsize(OUT) // 1024} KiB)")


if __name__ == "__main__":
    main()
