"""The kron optimizer alias (PSGD-Kron, ``kron-torch`` 0.3.3's ``Kron``)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from optxform.core import GradientTransformation, Schedule, ScalarOrSchedule
from optxform.core.base import declares_hyperparameters
from optxform.core.validation import check_learning_rate, check_non_negative
from optxform.optimizers.recipe import recipe
from optxform.transforms.kron import MemorySaveMode, scale_by_kron
from optxform.transforms.scaling import scale_by_learning_rate
from optxform.transforms.weight_decay import add_decayed_weights

__all__ = ["kron"]


def _matrices(params: Any) -> Any:
    """kron-torch decays params with two or more axes only."""
    return jax.tree.map(lambda p: jnp.ndim(p) >= 2, params)


@declares_hyperparameters("learning_rate", "b1", "weight_decay", "precond_lr")
def kron(learning_rate: ScalarOrSchedule = 0.0003, b1: ArrayLike = 0.9,
         weight_decay: ArrayLike = 0.0,
         preconditioner_update_probability: ArrayLike | Schedule | None = None,
         max_size_triangular: int = 8192, min_ndim_triangular: int = 2,
         memory_save_mode: MemorySaveMode = None, momentum_into_precond_update: bool = True,
         precond_lr: ArrayLike = 0.1, precond_init_scale: float = 1.0, merge_dims: bool = True,
         mu_dtype: DTypeLike | None = None, precond_dtype: DTypeLike | None = None, *,
         seed: int = 42) -> GradientTransformation:
    r"""PSGD-Kron (Li 2018; Walters' ``kron-torch``): momentum preconditioned by a fitted
    Kronecker-factored :math:`P = Q^\top Q`.

    .. math::

        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad \hat m_t = m_t/(1-\beta_1^t) \\
        Q &\leftarrow \mathrm{fit}(Q; V, \hat m_t + \sqrt{\epsilon_{32}}\,
            \overline{|\hat m_t|} V) \quad \text{(on update steps)} \\
        \theta_t &= \theta_{t-1} - \eta_t\big(\mathrm{clip}_{1.1}(P \hat m_t)
            + \lambda\, [\theta_{t-1}\ \text{has two or more axes}]\, \theta_{t-1}\big)

    where :math:`P` acts along each axis of a param (or of its matrix view, with
    ``merge_dims``) through one triangular or diagonal factor, :math:`\mathrm{clip}_{1.1}`
    scales the update to an RMS of at most 1.1, and the fit is PSGD's step on
    :math:`Q` from a Gaussian probe :math:`V` (see :func:`scale_by_kron`, which also says
    when the factors are fitted: when a counter reaches :math:`1/p`, as kron-torch does).
    Weight decay is coupled after the preconditioner and skips 0-D and 1-D params (biases,
    norms), as kron-torch.

    Args:
      learning_rate: :math:`\eta_t`, a number or a schedule.
      b1: :math:`\beta_1 \in [0, 1)`, the momentum.
      weight_decay: :math:`\lambda \ge 0`, added to the preconditioned update of params
        with two or more axes.
      preconditioner_update_probability: :math:`p`, a number (0: never fit) or a schedule;
        ``None``: :func:`precond_update_prob_schedule` (1 for 500 steps, then down to 0.03).
      max_size_triangular: axes longer than this get a diagonal factor.
      min_ndim_triangular: params with fewer axes get diagonal factors only.
      memory_save_mode: ``None``, ``"smart_one_diag"``, ``"one_diag"`` or ``"all_diag"``:
        which axes get diagonal factors (see :func:`scale_by_kron`).
      momentum_into_precond_update: fit the preconditioner on the momentum (else on the
        gradient).
      precond_lr: the preconditioner fit's step size.
      precond_init_scale: :math:`Q_0` is this scale's :math:`k`-th root times the identity
        on each of a param's :math:`k` axes.
      merge_dims: precondition params of three or more axes as matrices.
      mu_dtype: the momentum's storage dtype; ``None``: the param's.
      precond_dtype: the factors' dtype and that of the preconditioner's math; ``None``:
        float32, as kron-torch (pass float64 for float64 math under x64).
      seed: the seed of the probe vectors and balancing draws (keyed by the step counter).

    Returns:
      A ``GradientTransformation``: a named chain ``kron`` (:func:`scale_by_kron`),
      ``decay`` (:func:`add_decayed_weights` on params of two or more axes), ``lr``.

    Equivalents: ``kron_torch.Kron(params, lr, b1, weight_decay,
    preconditioner_update_probability, max_size_triangular, min_ndim_triangular,
    memory_save_mode, momentum_into_precond_update, precond_lr, precond_init_scale,
    merge_dims, mu_dtype, precond_dtype)`` (same names and defaults; ``lr`` is
    ``learning_rate``). Its probes come from torch's global RNG and its balancing draws
    from ``random.Random(42)``, which JAX cannot reproduce; optxform draws its own from
    ``seed``. No optax equivalent (``psgd-jax`` holds the JAX original).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> tx = optxform.kron(learning_rate=0.01)
        >>> params = {"w": jnp.ones((4, 3)), "b": jnp.zeros(3)}
        >>> grads = {"w": jnp.ones((4, 3)), "b": jnp.ones(3)}
        >>> updates, state = tx.update(grads, tx.init(params), params)
        >>> [f.shape for f in state["kron"].q["w"]], updates["w"].shape
        ([(4, 4), (3, 3)], (4, 3))
        >>> fixed = optxform.kron(0.01, preconditioner_update_probability=0.0)  # P = I
        >>> fixed.update(grads, fixed.init(params), params)[0]["b"]
        Array([-0.01, -0.01, -0.01], dtype=float32)
    """
    check_learning_rate(learning_rate)
    check_non_negative("weight_decay", weight_decay)
    return recipe(
        ("kron", scale_by_kron(b1, preconditioner_update_probability, max_size_triangular,
                               min_ndim_triangular, memory_save_mode,
                               momentum_into_precond_update, precond_lr, precond_init_scale,
                               merge_dims, mu_dtype, precond_dtype, seed=seed)),
        ("decay", add_decayed_weights(weight_decay, mask=_matrices)),
        ("lr", scale_by_learning_rate(learning_rate)))
