r"""The Adam family of aliases: adam, adamw, adamax, nadam, radam, sparse_adam.

Each alias validates its arguments and returns a ``chain(...)`` of building blocks:

* ``maximize`` is a leading ``scale(-1.)`` (torch negates the gradient first);
* coupled L2 weight decay (torch's ``weight_decay`` of Adam, Adamax, NAdam, RAdam) is
  ``add_decayed_weights`` *before* the moment block: it enters the moments;
* ``scale_by_learning_rate(learning_rate)`` after the block (a number or a schedule);
* decoupled decay (AdamW, ``decoupled_weight_decay=True``) is
  ``add_decoupled_weight_decay(weight_decay, learning_rate)`` *after* the learning rate: it
  adds ``fl(1 - lr * wd) * theta - theta``, torch's ``theta *= 1 - lr * wd`` with torch's
  float32 rounding, for a schedule too (both members evaluate it at the same step). In exact
  arithmetic this is ``add_decayed_weights`` between the block and the learning rate
  (optax's adamw), but that form drifts from torch's float32 trajectory beyond the 1e-5
  parity tolerance (torch's rounded factor ``fl(1 - lr * wd)`` biases every step the same
  way).

A weight decay member stays in the chain whatever its value (the Python number ``0``
makes it pass the updates through), so the state's structure never depends on it.

``adam`` and ``adamw`` also take optax's ``eps_root`` and ``nesterov``; with them at their
defaults (``0.`` and ``False``) the arithmetic is torch's, step for step.
"""

from __future__ import annotations

from typing import Any, Callable

from jax.typing import ArrayLike, DTypeLike

from optxform.core import GradientTransformation, ScalarOrSchedule
from optxform.core.base import declares_hyperparameters
from optxform.core.validation import check_flag, check_learning_rate, check_positive
from optxform.optimizers.recipe import gradient_prelude, recipe
from optxform.transforms.adam import (scale_by_adam, scale_by_adamax, scale_by_nadam,
                                      scale_by_radam, scale_by_sparse_adam)
from optxform.transforms.weight_decay import add_decoupled_weight_decay
from optxform.transforms.scaling import scale_by_learning_rate

__all__ = ["adam", "adamax", "adamw", "nadam", "radam", "sparse_adam"]


def _recipe(learning_rate, role: str, block: GradientTransformation, *, maximize: bool,
            weight_decay=0.0, decoupled: bool = False, mask=None) -> GradientTransformation:
    """``maximize [coupled weight_decay] <role> learning_rate [decoupled weight_decay]``."""
    check_learning_rate(learning_rate)
    check_flag("decoupled_weight_decay", decoupled)
    members = gradient_prelude(maximize, None if decoupled else weight_decay, mask)
    members.append((role, block))
    members.append(("lr", scale_by_learning_rate(learning_rate)))
    if decoupled:
        members.append(("decay",
                        add_decoupled_weight_decay(weight_decay, learning_rate, mask)))
    return recipe(*members)


@declares_hyperparameters("learning_rate", "b1", "b2", "eps", "weight_decay")
def adam(learning_rate: ScalarOrSchedule = 1e-3, b1: ArrayLike = 0.9, b2: ArrayLike = 0.999,
         eps: ArrayLike = 1e-8, weight_decay: ArrayLike = 0.0, amsgrad: bool = False,
         maximize: bool = False, *, mu_dtype: DTypeLike | None = None,
         nu_dtype: DTypeLike | None = None, eps_root: ArrayLike = 0.0,
         nesterov: bool = False) -> GradientTransformation:
    r"""Adam with torch's coupled L2 weight decay and AMSGrad option (torch.optim.Adam).

    .. math::

        g_t &\leftarrow \pm\nabla f(\theta_{t-1}) + \lambda\,\theta_{t-1}
              \quad(- \text{ with maximize}) \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        \hat v_t &= \max(\hat v_{t-1}, v_t)\ \text{(amsgrad)}, \quad v_t \text{ otherwise} \\
        \theta_t &= \theta_{t-1} - \eta_t\, \frac{m_t / (1 - \beta_1^t)}
                     {\sqrt{\hat v_t}/\sqrt{1 - \beta_2^t} + \epsilon}

    torch's quirks kept: :math:`\epsilon` is added after the bias correction of
    :math:`\sqrt{v}`; amsgrad takes the maximum of the raw :math:`v_t` (optax's
    ``amsgrad`` takes it of the bias-corrected one).

    optax's two options: ``eps_root`` :math:`\epsilon_r` puts the denominator as
    :math:`\sqrt{\hat v_t / (1 - \beta_2^t) + \epsilon_r} + \epsilon`, and ``nesterov``
    replaces :math:`m_t / (1 - \beta_1^t)` by the look-ahead
    :math:`\beta_1 m_t / (1 - \beta_1^{t+1}) + (1 - \beta_1) g_t / (1 - \beta_1^t)`.

    Args:
      learning_rate: :math:`\eta \ge 0`, a number or a schedule ``step -> lr`` (torch ``lr``).
      b1, b2: :math:`\beta_1, \beta_2 \in [0, 1)` (torch ``betas``).
      eps: :math:`\epsilon \ge 0`.
      weight_decay: :math:`\lambda \ge 0`, an L2 penalty added to the gradient (coupled;
        for decoupled decay use :func:`adamw`).
      amsgrad: keep the running maximum of the second moment.
      maximize: ascend the objective instead.
      mu_dtype, nu_dtype: storage dtypes of the moments (e.g. ``jnp.bfloat16``); default
        the param dtype for ``mu``, float32 or wider for ``nu``. Not in torch.
      eps_root: :math:`\epsilon_r \ge 0`, added inside the square root (optax's option;
        torch has none; the number ``0`` keeps torch's order of operations).
      nesterov: use the Nesterov look-ahead numerator (optax's ``nesterov=True``; torch's
        Adam has none, see :func:`nadam` for torch's NAdam).

    Returns:
      A named chain of ``"sign"``: ``scale(±1.)`` (maximize), ``"decay"``:
      ``add_decayed_weights(weight_decay)`` (a no-op at the number 0), ``"adam"``:
      ``scale_by_adam(b1, b2, eps, eps_root, amsgrad, nesterov=nesterov)``, ``"lr"``:
      ``scale_by_learning_rate(learning_rate)``. State: ``mu`` in the param dtype and
      ``nu`` (and ``nu_max`` with amsgrad) in float32 or wider unless
      ``mu_dtype``/``nu_dtype`` are given; int32 counters.

    Equivalents: ``torch.optim.Adam(params, lr, betas=(b1, b2), eps, weight_decay, amsgrad,
    maximize=maximize)`` (with ``eps_root=0`` and ``nesterov=False``);
    ``optax.adam(learning_rate, b1, b2, eps, eps_root, nesterov=nesterov)`` when there is
    no decay and no amsgrad (``optax.adam(..., amsgrad=True)`` uses a different maximum).
    Reference: Kingma & Ba, 2015, https://arxiv.org/abs/1412.6980.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.adam(0.1)
        >>> params = {"w": jnp.array([1.0, -1.0])}
        >>> updates, state = tx.update({"w": jnp.array([0.3, -2.0])}, tx.init(params), params)
        >>> updates["w"]
        Array([-0.1,  0.1], dtype=float32)
    """
    return _recipe(learning_rate, "adam",
                   scale_by_adam(b1, b2, eps, eps_root, amsgrad=amsgrad, mu_dtype=mu_dtype,
                                 nu_dtype=nu_dtype, nesterov=nesterov),
                   maximize=maximize, weight_decay=weight_decay)


@declares_hyperparameters("learning_rate", "b1", "b2", "eps", "weight_decay")
def adamw(learning_rate: ScalarOrSchedule = 1e-3, b1: ArrayLike = 0.9, b2: ArrayLike = 0.999,
          eps: ArrayLike = 1e-8, weight_decay: ArrayLike = 1e-2, amsgrad: bool = False,
          maximize: bool = False, mask: Any | Callable | None = None, *,
          mu_dtype: DTypeLike | None = None, nu_dtype: DTypeLike | None = None,
          eps_root: ArrayLike = 0.0, nesterov: bool = False) -> GradientTransformation:
    r"""Adam with decoupled weight decay (torch.optim.AdamW).

    .. math::

        \theta_t = \theta_{t-1} - \eta_t \Bigl( \frac{m_t / (1 - \beta_1^t)}
                   {\sqrt{\hat v_t}/\sqrt{1 - \beta_2^t} + \epsilon}
                   + \lambda\, \theta_{t-1} \Bigr)

    with :math:`m_t, \hat v_t` Adam's moments of the (sign-flipped with ``maximize``)
    gradient; the decay term never enters the moments. This is torch's
    ``theta *= 1 - lr * wd`` followed by the Adam step, for a schedule too.

    Args:
      learning_rate: :math:`\eta \ge 0`, a number or a schedule.
      b1, b2: :math:`\beta_1, \beta_2 \in [0, 1)`.
      eps: :math:`\epsilon \ge 0`.
      weight_decay: :math:`\lambda \ge 0` (torch's default ``1e-2``; optax's is ``1e-4``).
      amsgrad: torch's AMSGrad (maximum of the raw second moments).
      maximize: ascend the objective instead.
      mask: which params decay: a bool pytree matching params (or a prefix of it), or a
        function ``params -> bool pytree``; ``None`` decays all (torch: use param groups).
      mu_dtype, nu_dtype: storage dtypes of the moments; default the param dtype for
        ``mu``, float32 or wider for ``nu``.
      eps_root: :math:`\epsilon_r \ge 0`, added inside the square root of the
        bias-corrected :math:`\hat v_t` (optax's option, as in :func:`adam`).
      nesterov: the Nesterov look-ahead numerator of :func:`adam` (optax's option).

    Returns:
      A named chain of ``scale(±1.)`` (maximize), ``scale_by_adam(...)``,
      ``scale_by_learning_rate(learning_rate)``, ``add_decoupled_weight_decay(weight_decay,
      learning_rate, mask)`` (a no-op at the number 0; torch's ``theta *= 1 - lr * wd`` with
      torch's float32 rounding). State: as :func:`adam` (moments in the param dtype unless
      ``mu_dtype``/``nu_dtype``; int32 counters).

    Equivalents: ``torch.optim.AdamW(params, lr, betas=(b1, b2), eps, weight_decay,
    amsgrad, maximize=maximize)`` (with ``eps_root=0`` and ``nesterov=False``);
    ``optax.adamw(learning_rate, b1, b2, eps, eps_root, weight_decay=weight_decay,
    mask=mask, nesterov=nesterov)`` when ``amsgrad=False`` (the same math, with
    the decay before the learning rate; pass ``weight_decay`` explicitly since the
    defaults differ; the two agree to float32 rounding).
    Reference: Loshchilov & Hutter, 2019, https://arxiv.org/abs/1711.05101.

    Example (``-0.1 * (1 + 0.5 * 2)`` for the decayed ``w``, ``-0.1 * 1`` for ``b``)::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.adamw(0.1, weight_decay=0.5, mask={"w": True, "b": False})
        >>> params = {"w": jnp.array([2.0]), "b": jnp.array([2.0])}
        >>> grads = {"w": jnp.array([1.0]), "b": jnp.array([1.0])}
        >>> updates, state = tx.update(grads, tx.init(params), params)
        >>> round(float(updates["w"][0]), 4), round(float(updates["b"][0]), 4)
        (-0.2, -0.1)
    """
    return _recipe(learning_rate, "adam",
                   scale_by_adam(b1, b2, eps, eps_root, amsgrad=amsgrad, mu_dtype=mu_dtype,
                                 nu_dtype=nu_dtype, nesterov=nesterov),
                   maximize=maximize, weight_decay=weight_decay, decoupled=True, mask=mask)


@declares_hyperparameters("learning_rate", "b1", "b2", "eps", "weight_decay")
def adamax(learning_rate: ScalarOrSchedule = 2e-3, b1: ArrayLike = 0.9, b2: ArrayLike = 0.999,
           eps: ArrayLike = 1e-8, weight_decay: ArrayLike = 0.0, maximize: bool = False, *,
           mu_dtype: DTypeLike | None = None,
           nu_dtype: DTypeLike | None = None) -> GradientTransformation:
    r"""Adamax: Adam with an infinity-norm second moment (torch.optim.Adamax).

    .. math::

        g_t &\leftarrow \pm\nabla f(\theta_{t-1}) + \lambda\,\theta_{t-1} \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
        n_t = \max(\beta_2 n_{t-1}, |g_t| + \epsilon) \\
        \theta_t &= \theta_{t-1} - \frac{\eta_t}{1 - \beta_1^t}\, \frac{m_t}{n_t}

    Args:
      learning_rate: :math:`\eta \ge 0`, a number or a schedule (torch default ``2e-3``).
      b1, b2: :math:`\beta_1, \beta_2 \in [0, 1)`.
      eps: :math:`\epsilon \ge 0`, added to :math:`|g_t|` inside the maximum.
      weight_decay: :math:`\lambda \ge 0`, coupled L2.
      maximize: ascend the objective instead.
      mu_dtype, nu_dtype: storage dtypes of the moments; default the param dtype for
        ``mu``, float32 or wider for ``nu``.

    Returns:
      A named chain of ``scale(±1.)`` (maximize), ``add_decayed_weights(weight_decay)`` (a
      no-op at the number 0), ``scale_by_adamax(b1, b2, eps)``,
      ``scale_by_learning_rate(learning_rate)``. State: ``mu`` and the infinity norm ``nu``
      in the param dtype (or ``mu_dtype``/ ``nu_dtype``); int32 counters.

    Equivalents: ``torch.optim.Adamax(params, lr, betas=(b1, b2), eps, weight_decay,
    maximize=maximize)``; ``optax.adamax(learning_rate, b1, b2, eps)`` without decay.
    Reference: Kingma & Ba, 2015, section 7.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.adamax(0.1)
        >>> params = {"w": jnp.array([1.0])}
        >>> updates, state = tx.update({"w": jnp.array([2.0])}, tx.init(params), params)
        >>> round(float(updates["w"][0]), 4)   # first step: -lr * sign(g)
        -0.1
    """
    return _recipe(learning_rate, "adamax",
                   scale_by_adamax(b1, b2, eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
                   maximize=maximize, weight_decay=weight_decay)


@declares_hyperparameters("learning_rate", "b1", "b2", "eps", "weight_decay", "momentum_decay")
def nadam(learning_rate: ScalarOrSchedule = 2e-3, b1: ArrayLike = 0.9, b2: ArrayLike = 0.999,
          eps: ArrayLike = 1e-8, weight_decay: ArrayLike = 0.0, momentum_decay: ArrayLike = 4e-3,
          decoupled_weight_decay: bool = False, maximize: bool = False, *,
          mu_dtype: DTypeLike | None = None,
          nu_dtype: DTypeLike | None = None) -> GradientTransformation:
    r"""NAdam: Adam with Nesterov momentum and torch's momentum schedule (torch.optim.NAdam).

    .. math::

        \mu_t &= \beta_1 \bigl(1 - \tfrac12\, 0.96^{\,t\psi}\bigr), \qquad
        \Pi_t = \textstyle\prod_{i \le t} \mu_i \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2, \qquad
        d_t = \sqrt{v_t / (1 - \beta_2^t)} + \epsilon \\
        \theta_t &= \theta_{t-1} - \eta_t \Bigl(\frac{1 - \mu_t}{1 - \Pi_t}\frac{g_t}{d_t}
                    + \frac{\mu_{t+1}}{1 - \Pi_t \mu_{t+1}} \frac{m_t}{d_t}
                    \ [+\, \lambda\,\theta_{t-1}\ \text{decoupled}] \Bigr)

    where :math:`g_t = \pm\nabla f + \lambda\theta_{t-1}` with coupled decay (the default)
    and :math:`\pm\nabla f` with ``decoupled_weight_decay=True``.

    Args:
      learning_rate: :math:`\eta \ge 0`, a number or a schedule (torch default ``2e-3``).
      b1, b2: :math:`\beta_1, \beta_2 \in [0, 1)`.
      eps: :math:`\epsilon \ge 0`.
      weight_decay: :math:`\lambda \ge 0`.
      momentum_decay: :math:`\psi \ge 0`, speed of the momentum warm-up.
      decoupled_weight_decay: decay the params directly (NAdamW) instead of adding
        :math:`\lambda\theta` to the gradient.
      maximize: ascend the objective instead.
      mu_dtype, nu_dtype: storage dtypes of the moments; default the param dtype for
        ``mu``, float32 or wider for ``nu``.

    Returns:
      A named chain of ``scale(±1.)`` (maximize), coupled
      ``add_decayed_weights(weight_decay)``, ``scale_by_nadam(b1, b2, eps,
      momentum_decay)``, ``scale_by_learning_rate(learning_rate)``, decoupled
      ``add_decoupled_weight_decay(weight_decay, learning_rate)`` (one of the two decay
      members, a no-op at the number 0). State: ``mu``, ``nu`` in the param
      dtype (or ``mu_dtype``/``nu_dtype``), ``mu_product`` a float32 scalar, int32 counters.

    Equivalents: ``torch.optim.NAdam(params, lr, betas=(b1, b2), eps, weight_decay,
    momentum_decay, decoupled_weight_decay, maximize=maximize)``. ``optax.nadam`` uses a
    constant :math:`\mu_t = \beta_1`; it coincides with this for a huge ``momentum_decay``.
    Reference: Dozat, 2016, "Incorporating Nesterov Momentum into Adam".

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.nadam(0.1)
        >>> params = {"w": jnp.array([1.0])}
        >>> updates, state = tx.update({"w": jnp.array([2.0])}, tx.init(params), params)
        >>> bool(updates["w"][0] < 0)
        True
    """
    return _recipe(learning_rate, "nadam",
                   scale_by_nadam(b1, b2, eps, momentum_decay, mu_dtype=mu_dtype,
                                  nu_dtype=nu_dtype),
                   maximize=maximize, weight_decay=weight_decay,
                   decoupled=decoupled_weight_decay)


@declares_hyperparameters("learning_rate", "b1", "b2", "eps", "weight_decay")
def radam(learning_rate: ScalarOrSchedule = 1e-3, b1: ArrayLike = 0.9, b2: ArrayLike = 0.999,
          eps: ArrayLike = 1e-8, weight_decay: ArrayLike = 0.0,
          decoupled_weight_decay: bool = False, maximize: bool = False, *,
          mu_dtype: DTypeLike | None = None,
          nu_dtype: DTypeLike | None = None) -> GradientTransformation:
    r"""RAdam: Adam with a rectified adaptive step (torch.optim.RAdam).

    .. math::

        \rho_\infty &= \frac{2}{1 - \beta_2} - 1, \qquad
        \rho_t = \rho_\infty - \frac{2t\beta_2^t}{1 - \beta_2^t}, \qquad
        r_t = \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\rho_\infty}
                         {(\rho_\infty - 4)(\rho_\infty - 2)\rho_t}} \\
        \theta_t &= \theta_{t-1} - \eta_t \Bigl(\frac{m_t}{1 - \beta_1^t} \cdot
            \begin{cases} r_t \frac{\sqrt{1 - \beta_2^t}}{\sqrt{v_t} + \epsilon} & \rho_t > 5\\
                          1 & \text{otherwise} \end{cases}
            \ [+\, \lambda\,\theta_{t-1}\ \text{decoupled}] \Bigr)

    with Adam's moments :math:`m_t, v_t` of :math:`g_t` (which includes
    :math:`\lambda\theta_{t-1}` with coupled decay). For :math:`\beta_2 = 0.999` the first
    five steps are plain bias-corrected momentum steps.

    Args:
      learning_rate: :math:`\eta \ge 0`, a number or a schedule.
      b1, b2: :math:`\beta_1, \beta_2 \in [0, 1)`.
      eps: :math:`\epsilon \ge 0` (added to the uncorrected :math:`\sqrt{v_t}`; optax adds
        it to the corrected one).
      weight_decay: :math:`\lambda \ge 0`.
      decoupled_weight_decay: decay the params directly (RAdamW) instead of adding
        :math:`\lambda\theta` to the gradient.
      maximize: ascend the objective instead.
      mu_dtype, nu_dtype: storage dtypes of the moments; default the param dtype for
        ``mu``, float32 or wider for ``nu``.

    Returns:
      A named chain of ``scale(±1.)`` (maximize), coupled
      ``add_decayed_weights(weight_decay)``, ``scale_by_radam(b1, b2, eps)``,
      ``scale_by_learning_rate(learning_rate)``, decoupled
      ``add_decoupled_weight_decay(weight_decay, learning_rate)`` (one of the two, a no-op
      at the number 0). State: ``mu``, ``nu`` in the param dtype (or
      ``mu_dtype``/``nu_dtype``); int32 counters.

    Equivalents: ``torch.optim.RAdam(params, lr, betas=(b1, b2), eps, weight_decay,
    decoupled_weight_decay, maximize=maximize)``; ``optax.radam(learning_rate, b1, b2,
    eps)`` when ``eps = 0`` and there is no decay.
    Reference: Liu et al., 2020, https://arxiv.org/abs/1908.03265.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.radam(0.1)
        >>> params = {"w": jnp.array([1.0])}
        >>> updates, state = tx.update({"w": jnp.array([2.0])}, tx.init(params), params)
        >>> round(float(updates["w"][0]), 4)   # first step: -lr * m_1 / (1 - b1) = -lr * g
        -0.2
    """
    return _recipe(learning_rate, "radam",
                   scale_by_radam(b1, b2, eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
                   maximize=maximize, weight_decay=weight_decay,
                   decoupled=decoupled_weight_decay)


@declares_hyperparameters("learning_rate", "b1", "b2", "eps")
def sparse_adam(learning_rate: ScalarOrSchedule = 1e-3, b1: ArrayLike = 0.9, b2: ArrayLike = 0.999,
                eps: ArrayLike = 1e-8, maximize: bool = False, *,
                mu_dtype: DTypeLike | None = None,
                nu_dtype: DTypeLike | None = None) -> GradientTransformation:
    r"""Adam for embedding tables: rows with an all-zero gradient are left alone (SparseAdam).

    For each row :math:`r` (a slice ``theta[r, ...]`` along the leading axis; for a 1-D
    param each element) whose gradient has a nonzero entry:

    .. math::

        m_t[r] &= m_{t-1}[r] + (1 - \beta_1)(g_t[r] - m_{t-1}[r]), \qquad
        v_t[r] = v_{t-1}[r] + (1 - \beta_2)(g_t[r]^2 - v_{t-1}[r]) \\
        \theta_t[r] &= \theta_{t-1}[r] - \eta_t \frac{\sqrt{1 - \beta_2^t}}{1 - \beta_1^t}
                       \frac{m_t[r]}{\sqrt{v_t[r]} + \epsilon}

    Rows whose gradient is entirely zero count as absent, as rows missing from torch's
    sparse gradient: their moments and params are untouched. JAX gradients are dense, so a
    row that is present but has an exactly zero gradient is indistinguishable from an
    absent one (torch would decay its moments). ``t`` counts every step.

    Args:
      learning_rate: :math:`\eta > 0` (torch rejects 0), a number or a schedule.
      b1, b2: :math:`\beta_1, \beta_2 \in [0, 1)`.
      eps: :math:`\epsilon > 0` (torch rejects 0).
      maximize: ascend the objective instead.
      mu_dtype, nu_dtype: storage dtypes of the moments; default the param dtype for
        ``mu``, float32 or wider for ``nu``. Not in torch.

    Returns:
      A named chain of ``scale(±1.)`` (maximize), ``scale_by_sparse_adam(b1, b2, eps)``,
      ``scale_by_learning_rate(learning_rate)``. State: ``mu``, ``nu`` in the param dtype;
      int32 counters.

    Equivalent: ``torch.optim.SparseAdam(params, lr, betas=(b1, b2), eps,
    maximize=maximize)`` fed ``nn.Embedding(sparse=True)``-style gradients; optax has none.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.sparse_adam(0.1)
        >>> params = {"embed": jnp.ones((3, 2))}
        >>> grads = {"embed": jnp.array([[0.5, 0.0], [0.0, 0.0], [1.0, -1.0]])}
        >>> updates, state = tx.update(grads, tx.init(params), params)
        >>> bool((updates["embed"][1] == 0).all())   # row 1 had no gradient: untouched
        True
    """
    if not callable(learning_rate):
        check_positive("learning_rate", learning_rate)
    check_positive("eps", eps)
    return _recipe(learning_rate, "sparse_adam", scale_by_sparse_adam(b1, b2, eps, mu_dtype, nu_dtype),
                   maximize=maximize, weight_decay=None)
