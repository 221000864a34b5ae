"""The muon optimizer alias (``torch.optim.Muon``)."""

from __future__ import annotations

from typing import Literal, Sequence

import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from optxform.core import GradientTransformation, ScalarOrSchedule
from optxform.core.base import declares_hyperparameters
from optxform.core.validation import check_learning_rate, check_non_negative
from optxform.optimizers.recipe import recipe
from optxform.transforms.orthogonal import (QUINTIC_COEFFICIENTS, Coefficients,
                                            orthogonalize_by_newton_schulz,
                                            scale_by_ema_momentum)
from optxform.transforms.scaling import scale_by_learning_rate
from optxform.transforms.weight_decay import add_decoupled_weight_decay

__all__ = ["muon"]


@declares_hyperparameters("learning_rate", "weight_decay", "momentum", "eps")
def muon(learning_rate: ScalarOrSchedule = 1e-3, weight_decay: ArrayLike = 0.1,
         momentum: ArrayLike = 0.95, nesterov: bool = True,
         ns_coefficients: Literal["quintic", "polar_express"] | Coefficients
         | Sequence[Coefficients] = QUINTIC_COEFFICIENTS,
         eps: ArrayLike = 1e-7, ns_steps: int = 5,
         adjust_lr_fn: Literal["original", "match_rms_adamw"] | None = None,
         ns_dtype: DTypeLike = jnp.bfloat16, *, batch_dims: int = 0,
         flatten: Literal["last", "first"] = "last",
         mu_dtype: DTypeLike | None = None) -> GradientTransformation:
    r"""Muon, "MomentUm Orthogonalized by Newton-Schulz" (Jordan et al. 2024), as torch.optim.Muon.

    .. math::

        m_t &= \mu\, m_{t-1} + (1-\mu)\, g_t, \qquad
        \tilde m_t = (1-\mu)\, g_t + \mu\, m_t \ \text{(nesterov, else } m_t) \\
        O_t &= \mathrm{NS}^{(a,b,c)}_K(\tilde m_t), \qquad
        \theta_t = (1 - \eta_t\lambda)\,\theta_{t-1} - \eta_t\, r\, O_t

    :math:`\mathrm{NS}_K` is :func:`orthogonalize_by_newton_schulz` (an approximate polar
    factor :math:`UV^\top` of the matrix) and :math:`r` its shape factor
    (``adjust_lr_fn``). Muon is for the matrices of hidden layers: embeddings, the output
    head, biases and norms belong to AdamW (route them with :func:`multi_transform`).

    Args:
      learning_rate: :math:`\eta_t`, a number or a schedule.
      weight_decay: :math:`\lambda \ge 0`, decoupled (multiplied by the learning rate).
      momentum: :math:`\mu \ge 0`, the EMA momentum.
      nesterov: use the look-ahead :math:`(1-\mu) g_t + \mu m_t`.
      ns_coefficients: ``(a, b, c)`` at every Newton-Schulz step (torch's default), one
        triple per step, or ``"polar_express"`` (Amsel et al. 2025).
      eps: the normalisation's :math:`\varepsilon`.
      ns_steps: Newton-Schulz steps :math:`K`.
      adjust_lr_fn: ``None``/``"original"``: :math:`r = \sqrt{\max(1, A/B)}` for an
        :math:`A \times B` matrix; ``"match_rms_adamw"``: :math:`r = 0.2\sqrt{\max(A, B)}`
        (Moonshot's, to reuse AdamW's learning rate and weight decay).
      ns_dtype: the dtype Newton-Schulz runs in. torch's is bfloat16 (the default here);
        bfloat16 matrix products round differently on every backend, so with it optxform
        stays within a few percent of stock torch, while ``float32`` reproduces torch's
        algorithm run in float32 to rounding.
      batch_dims: leading axes that index separate matrices (stacked/scanned layers).
      flatten: how params with more than two axes become matrices (``"last"``: flax's
        ``(kh, kw, in, out)`` -> ``(kh*kw*in, out)``; ``"first"``: torch's
        ``(out, in, kh, kw)`` -> ``(out, in*kh*kw)``). torch.optim.Muon takes 2-D only.
      mu_dtype: storage dtype of the momentum buffer; ``None``: the param dtype.

    Returns:
      A ``GradientTransformation``: a named chain ``muon`` (the EMA momentum),
      ``orthogonalize``, ``lr``, ``decay``. A param that is not a matrix raises
      ``ValueError`` naming its path at ``init``.

    Equivalents: ``torch.optim.Muon(params, lr, weight_decay, momentum, nesterov,
    ns_coefficients, eps, ns_steps, adjust_lr_fn)`` (same names and defaults);
    ``optax.contrib.muon`` differs (2-D only, Adam for other params built in, other
    defaults).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.muon(learning_rate=0.02, ns_dtype=jnp.float32)
        >>> params = {"w": jnp.ones((4, 2))}
        >>> updates, _ = tx.update({"w": jnp.eye(4, 2)}, tx.init(params), params)
        >>> updates["w"].shape, updates["w"].dtype
        ((4, 2), dtype('float32'))
    """
    check_learning_rate(learning_rate)
    check_non_negative("weight_decay", weight_decay)
    return recipe(("muon", scale_by_ema_momentum(momentum, nesterov, mu_dtype=mu_dtype)),
                  ("orthogonalize", orthogonalize_by_newton_schulz(
                      ns_coefficients, eps, ns_steps, ns_dtype, adjust_lr_fn,
                      batch_dims=batch_dims, flatten=flatten)),
                  ("lr", scale_by_learning_rate(learning_rate)),
                  ("decay", add_decoupled_weight_decay(weight_decay, learning_rate)))
