"""The cautious_adamw alias: C-Optim's AdamW with the cautious mask."""

from __future__ import annotations

from jax.typing import ArrayLike, DTypeLike

from optxform.core import GradientTransformation, ScalarOrSchedule
from optxform.core.base import declares_hyperparameters
from optxform.core.validation import check_learning_rate
from optxform.optimizers.recipe import recipe
from optxform.transforms.adam import scale_by_transformers_adam
from optxform.transforms.scaling import scale_by_learning_rate
from optxform.transforms.weight_decay import add_decoupled_weight_decay
from optxform.wrappers.cautious import cautious

__all__ = ["cautious_adamw"]


@declares_hyperparameters("learning_rate", "b1", "b2", "eps", "weight_decay")
def cautious_adamw(learning_rate: ScalarOrSchedule = 1e-3, b1: ArrayLike = 0.9,
                   b2: ArrayLike = 0.999, eps: ArrayLike = 1e-6, weight_decay: ArrayLike = 0.0,
                   correct_bias: bool = True, *, mu_dtype: DTypeLike | None = None,
                   nu_dtype: DTypeLike | None = None) -> GradientTransformation:
    r"""Cautious AdamW (C-AdamW, Liang et al. 2024), as the authors' ``c_adamw.AdamW``.

    .. math::

        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        \phi_t &= \mathbb{1}[m_t \odot g_t > 0], \qquad
        \tilde\phi_t = \phi_t / \max(\operatorname{mean}\phi_t,\ 10^{-3})
        \quad\text{(per param tensor)} \\
        \theta_t &= \theta_{t-1}(1 - \eta_t\lambda) - \eta_t
                    \frac{\sqrt{1 - \beta_2^t}}{1 - \beta_1^t}
                    \frac{m_t \odot \tilde\phi_t}{\sqrt{v_t} + \epsilon}

    The reference's conventions are kept: :math:`\epsilon` is added to :math:`\sqrt{v_t}`
    before the bias corrections (Kingma & Ba's folded step size, as in transformers'
    former ``AdamW``; torch adds it after), the default ``eps`` is ``1e-6`` and the
    default weight decay 0; the mask is rescaled by its clamped mean (the paper's
    Algorithm 1 divides by ``mean + eps``, the authors' first code multiplied by
    ``n / (kept + 1)``: see :func:`cautious`). The decay is decoupled and not masked.

    Args:
      learning_rate: :math:`\eta \ge 0`, a number or a schedule.
      b1: :math:`\beta_1 \in [0, 1)`.
      b2: :math:`\beta_2 \in [0, 1)`.
      eps: :math:`\epsilon \ge 0`, added to :math:`\sqrt{v_t}` (default ``1e-6``).
      weight_decay: :math:`\lambda \ge 0`, decoupled (the params shrink by
        :math:`1 - \eta\lambda` each step).
      correct_bias: apply Adam's bias corrections (the reference's ``correct_bias``).
      mu_dtype, nu_dtype: storage dtypes of the moments; default the param dtype for
        ``mu``, float32 or wider for ``nu``. Not in the reference.

    Returns:
      A named chain: ``"adam"``: ``cautious(scale_by_transformers_adam(b1, b2, eps,
      correct_bias), rescale="clamped_mean")`` (state ``mu``, ``nu`` and an int32
      counter), ``"lr"``: ``scale_by_learning_rate(learning_rate)``, ``"decay"``:
      ``add_decoupled_weight_decay(weight_decay, learning_rate)`` (a no-op at the number
      0, kept so the state's structure does not depend on it).

    Equivalents: C-Optim's ``c_adamw.AdamW(params, lr, betas=(b1, b2), eps, weight_decay,
    correct_bias, foreach=False)``; timm's ``AdamW(caution=True)`` uses the same mask
    with torch's :math:`\epsilon` placement; optax has none.
    Reference: Liang et al., 2024, https://arxiv.org/abs/2411.16085.

    Example (the first step: :math:`m_1 = 0.1 g` agrees with :math:`g` everywhere, so the
    mask keeps all and the step is about ``-lr * sign(g)``)::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.cautious_adamw(0.1)
        >>> params = {"w": jnp.array([1.0, -1.0])}
        >>> updates, state = tx.update({"w": jnp.array([0.3, -2.0])}, tx.init(params), params)
        >>> updates["w"]
        Array([-0.09998945,  0.09999841], dtype=float32)
    """
    check_learning_rate(learning_rate)
    direction = scale_by_transformers_adam(b1, b2, eps, correct_bias, mu_dtype, nu_dtype)
    return recipe(("adam", cautious(direction, rescale="clamped_mean")),
                  ("lr", scale_by_learning_rate(learning_rate)),
                  ("decay", add_decoupled_weight_decay(weight_decay, learning_rate)))
