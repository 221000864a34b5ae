"""The muon optimizer alias (``torch.optim.Muon``)."""

from __future__ import annotations

from typing import Any, Literal, Mapping, Sequence

import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from optxform.core import GradientTransformation, ScalarOrSchedule
from optxform.core.base import declares_hyperparameters
from optxform.core.validation import check_learning_rate, check_non_negative
from optxform.optimizers.adam import adamw
from optxform.optimizers.recipe import recipe
from optxform.transforms.orthogonal import (QUINTIC_COEFFICIENTS, Coefficients,
                                            orthogonalize_by_newton_schulz,
                                            scale_by_ema_momentum)
from optxform.transforms.scaling import scale_by_learning_rate
from optxform.transforms.weight_decay import add_decoupled_weight_decay
from optxform.wrappers.router import ParamGroup, route

__all__ = ["muon", "muon_with_adamw"]


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


def _muon_groups(embedding: str | None, head: str | None, batch_dims: int) -> list[ParamGroup]:
    """The groups of :func:`muon_with_adamw`, tried in order (the rest is ``"adamw"``)."""
    groups = []
    if embedding is not None:
        groups.append(ParamGroup("embedding", path=embedding))
    if head is not None:
        groups.append(ParamGroup("head", path=head))
    groups.append(ParamGroup("muon", min_ndim=2 + batch_dims))
    return groups


def _times(value: Any, factor: float) -> Any:
    if factor == 1.0:
        return value
    if callable(value):
        return lambda count: factor * value(count)
    return value * factor


def muon_with_adamw(learning_rate: ScalarOrSchedule = 0.02, weight_decay: ArrayLike = 0.1,
                    momentum: ArrayLike = 0.95, nesterov: bool = True, *,
                    adamw_learning_rate: ScalarOrSchedule = 3e-4, adamw_b1: ArrayLike = 0.9,
                    adamw_b2: ArrayLike = 0.95, adamw_eps: ArrayLike = 1e-8,
                    adamw_weight_decay: ArrayLike = 0.0,
                    embedding: str | None = r"(^|/)(embed|embedding|wte|wpe|tok_embeddings)",
                    head: str | None = r"(^|/)(head|lm_head|unembed|output)(/|$)",
                    learning_rate_multipliers: Mapping[str, float] | None = None,
                    weight_decay_multipliers: Mapping[str, float] | None = None,
                    ns_coefficients: Literal["quintic", "polar_express"] | Coefficients
                    | Sequence[Coefficients] = QUINTIC_COEFFICIENTS,
                    ns_steps: int = 5, ns_dtype: DTypeLike = jnp.bfloat16,
                    adjust_lr_fn: Literal["original", "match_rms_adamw"] | None = None,
                    batch_dims: int = 0,
                    flatten: Literal["last", "first"] = "last") -> GradientTransformation:
    r"""Muon for hidden matrices, AdamW for everything else: the usual Muon recipe, routed.

    Params are routed by :func:`route` to four groups, tried in order: ``"embedding"``
    (path matches ``embedding``), ``"head"`` (path matches ``head``), ``"muon"`` (matrices
    and up: rank ``>= 2 + batch_dims``) and ``"adamw"`` (the rest: biases, norms, scalars).
    The ``embedding``, ``head`` and ``adamw`` groups run :func:`adamw`; ``muon`` runs
    :func:`muon`. Each group's learning rate and weight decay are its optimizer's times its
    multiplier (default 1): ``learning_rate_multipliers={"embedding": 10, "head": 0.5}``.

    Args:
      learning_rate, weight_decay, momentum, nesterov: Muon's (as :func:`muon`).
      adamw_learning_rate, adamw_b1, adamw_b2, adamw_eps, adamw_weight_decay: the AdamW
        groups' (as :func:`adamw`'s ``learning_rate``, ``b1``, ``b2``, ``eps``,
        ``weight_decay``).
      embedding, head: regular expressions searched in param paths (keys joined by
        ``"/"``); ``None`` sends those params to the ``"muon"``/``"adamw"`` groups by rank.
      learning_rate_multipliers, weight_decay_multipliers: per group label
        (``"muon"``, ``"embedding"``, ``"head"``, ``"adamw"``).
      ns_coefficients, ns_steps, ns_dtype, adjust_lr_fn, batch_dims, flatten: Muon's
        Newton-Schulz options (as :func:`muon`).

    Returns:
      A :func:`route` transform; its state holds one inner state per group label.

    torch equivalent: ``torch.optim.Muon`` on the 2-D hidden params and
    ``torch.optim.AdamW`` on the others, stepped together (as torch's Muon documentation
    shows).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.muon_with_adamw(ns_dtype=jnp.float32)
        >>> params = {"embed": jnp.ones((10, 4)), "block": {"kernel": jnp.ones((4, 4)),
        ...           "bias": jnp.zeros(4)}, "lm_head": {"kernel": jnp.ones((4, 10))}}
        >>> optxform.param_labels(
        ...     [optxform.ParamGroup("embedding", path="embed"),
        ...      optxform.ParamGroup("head", path="head"),
        ...      optxform.ParamGroup("muon", min_ndim=2)], "adamw")(params)
        {'block': {'bias': 'adamw', 'kernel': 'muon'}, 'embed': 'embedding', 'lm_head': {'kernel': 'head'}}
        >>> sorted(tx.init(params).inner_states)
        ['adamw', 'embedding', 'head', 'muon']
    """
    labels = ("muon", "embedding", "head", "adamw")
    lr_m = dict(learning_rate_multipliers or {})
    wd_m = dict(weight_decay_multipliers or {})
    for name, given in (("learning_rate_multipliers", lr_m), ("weight_decay_multipliers", wd_m)):
        for label, factor in given.items():
            if label not in labels:
                raise ValueError(f"Invalid {name}: unknown group {label!r} (groups: "
                                 f"{', '.join(labels)})")
            check_non_negative(f"{name}[{label!r}]", factor)
    check_learning_rate(adamw_learning_rate, "adamw_learning_rate")
    check_non_negative("adamw_weight_decay", adamw_weight_decay)

    def adamw_for(label: str) -> GradientTransformation:
        return adamw(_times(adamw_learning_rate, lr_m.get(label, 1.0)), adamw_b1, adamw_b2,
                     adamw_eps, _times(adamw_weight_decay, wd_m.get(label, 1.0)))

    transforms = {
        "muon": muon(_times(learning_rate, lr_m.get("muon", 1.0)),
                     _times(weight_decay, wd_m.get("muon", 1.0)), momentum, nesterov,
                     ns_coefficients, ns_steps=ns_steps, adjust_lr_fn=adjust_lr_fn,
                     ns_dtype=ns_dtype, batch_dims=batch_dims, flatten=flatten),
        **{label: adamw_for(label) for label in ("embedding", "head", "adamw")},
    }
    return route(transforms, _muon_groups(embedding, head, batch_dims), default="adamw")
