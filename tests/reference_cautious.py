"""Oracles for the cautious optimizers that no installed package provides.

The authors' C-Optim code (``c_adamw.py``) is not published on PyPI, so ``CAdamW`` below is
an independent torch implementation written from the algorithm (Liang et al. 2024,
Algorithm 1, with the conventions of the authors' ``c_adamw.AdamW`` in its per-param path,
``foreach=False``): transformers-style AdamW moments, :math:`\\epsilon` on the raw
:math:`\\sqrt{v}`, bias corrections folded into the step size, decoupled decay applied to
the params first, and the mask ``m * g > 0`` divided by its mean clamped at 1e-3. It computes
in the params' dtype: float64 params give a float64 oracle, float32 params one that
rounds like the authors' code.

``cautious_lion`` builds optxform's cautious Lion from building blocks, for the parity
rows against pytorch-optimizer's ``Lion(cautious=True)``.
"""

from __future__ import annotations

import math

import optxform


def _torch():
    import torch  # an oracle that cannot be imported fails the test using it

    return torch


class CAdamW(_torch().optim.Optimizer):
    """Cautious AdamW from the algorithm (no code of the authors' is used)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0,
                 correct_bias=True):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      correct_bias=correct_bias))

    def step(self, closure=None):
        torch = _torch()
        with torch.no_grad():
            for group in self.param_groups:
                b1, b2 = group["betas"]
                lr, wd = group["lr"], group["weight_decay"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    g = p.grad
                    state = self.state[p]
                    if not state:
                        state["t"] = 0
                        state["m"] = torch.zeros_like(p)
                        state["v"] = torch.zeros_like(p)
                    state["t"] += 1
                    t, m, v = state["t"], state["m"], state["v"]
                    if wd > 0:
                        p.sub_(lr * wd * p)  # decoupled decay, on the params before the step
                    m.copy_(b1 * m + (1.0 - b1) * g)
                    v.copy_(b2 * v + (1.0 - b2) * g * g)
                    step_size = lr
                    if group["correct_bias"]:
                        step_size = lr * math.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t)
                    keep = (m * g > 0).to(p.dtype)
                    keep = keep / torch.clamp(keep.mean(), min=1e-3)
                    p.sub_(step_size * (m * keep) / (v.sqrt() + group["eps"]))
        return None


def cautious_lion(learning_rate=1e-4, b1=0.9, b2=0.99, weight_decay=0.0, maximize=False):
    """pytorch-optimizer's ``Lion(lr, betas, weight_decay, maximize, cautious=True)``.

    The mask wraps Lion's sign direction (before the learning rate flips it), its rescaling
    is ``n / (kept + 1)``, and the decay is torch's ``p *= 1 - lr * wd``, unmasked.
    """
    return optxform.named_chain(
        ("sign", optxform.scale(-1.0 if maximize else 1.0)),
        ("lion", optxform.cautious(optxform.scale_by_lion(b1, b2), rescale="count")),
        ("lr", optxform.scale_by_learning_rate(learning_rate)),
        ("decay", optxform.add_decoupled_weight_decay(weight_decay, learning_rate)))
