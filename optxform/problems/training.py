"""Small real training problems: logistic regression and a tanh MLP on bundled data.

Every problem is a :class:`TrainingProblem`; ``problem.load()`` returns
``(loss_fn, params, data)`` with ``loss_fn(params, data) -> scalar`` (mean softmax
cross-entropy), which is the signature :func:`optxform.choose` and
:func:`optxform.lr_range_test` take. Nothing is downloaded:

* ``digits`` and ``breast_cancer`` ship inside scikit-learn (imported when loaded, so
  scikit-learn is needed only for these);
* ``spirals`` is generated with numpy (two interleaved spirals, 400 points), so it needs
  nothing beyond optxform's own dependencies; ``optxform demo`` uses it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["TRAINING_PROBLEMS", "TrainingProblem", "logistic_regression_loss", "mlp_loss"]


def _cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))


def logistic_regression_loss(params: dict, data: tuple[jax.Array, jax.Array]) -> jax.Array:
    r"""Mean softmax cross-entropy of ``x @ w + b`` (multinomial logistic regression).

    .. math::

        L(w, b) = -\frac{1}{n} \sum_{i=1}^n \log \operatorname{softmax}(x_i w + b)_{y_i}

    Args:
      params: ``{"w": (d, k), "b": (k,)}`` for ``d`` features and ``k`` classes.
      data: ``(x, y)``: features ``(n, d)`` and integer labels ``(n,)`` in ``[0, k)``.

    Returns:
      The mean loss over the ``n`` rows, a scalar array.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> params = {"w": jnp.zeros((2, 3)), "b": jnp.zeros(3)}
        >>> data = (jnp.array([[1.0, 0.0], [0.0, 1.0]]), jnp.array([0, 2]))
        >>> optxform.logistic_regression_loss(params, data)  # log 3: uniform predictions
        Array(1.0986123, dtype=float32)
    """
    x, y = data
    return _cross_entropy(x @ params["w"] + params["b"][None, :], y)


def mlp_loss(params: dict, data: tuple[jax.Array, jax.Array]) -> jax.Array:
    r"""Mean softmax cross-entropy of a one-hidden-layer tanh MLP.

    .. math::

        h_i = \tanh(x_i W_1 + b_1), \qquad
        L = -\frac{1}{n} \sum_{i=1}^n \log \operatorname{softmax}(h_i W_2 + b_2)_{y_i}

    Args:
      params: ``{"w1": (d, h), "b1": (h,), "w2": (h, k), "b2": (k,)}`` for ``d`` features,
        ``h`` hidden units and ``k`` classes.
      data: ``(x, y)``: features ``(n, d)`` and integer labels ``(n,)`` in ``[0, k)``.

    Returns:
      The mean loss over the ``n`` rows, a scalar array.

    Example::

        >>> import optxform
        >>> loss_fn, params, data = optxform.get_problem("mlp_spirals").load()
        >>> loss_fn is optxform.mlp_loss, params["w1"].shape, params["w2"].shape
        (True, (2, 32), (32, 2))
        >>> params = {k: 0 * v for k, v in params.items()}  # all zeros: uniform predictions
        >>> round(float(optxform.mlp_loss(params, data)), 4)  # log 2
        0.6931
    """
    x, y = data
    h = jnp.tanh(x @ params["w1"] + params["b1"][None, :])
    return _cross_entropy(h @ params["w2"] + params["b2"][None, :], y)


def _logistic_params(n_features: int, n_classes: int, seed: int) -> dict:
    del seed
    return {"w": jnp.zeros((n_features, n_classes), jnp.float32),
            "b": jnp.zeros((n_classes,), jnp.float32)}


def _mlp_params(n_features: int, n_classes: int, seed: int, hidden: int = 32) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "w1": jnp.asarray(rng.standard_normal((n_features, hidden)) / math.sqrt(n_features),
                          jnp.float32),
        "b1": jnp.zeros((hidden,), jnp.float32),
        "w2": jnp.asarray(rng.standard_normal((hidden, n_classes)) / math.sqrt(hidden),
                          jnp.float32),
        "b2": jnp.zeros((n_classes,), jnp.float32),
    }


def _standardize(x: np.ndarray) -> np.ndarray:
    std = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)


def _sklearn_dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn import datasets
    except ImportError as err:
        raise ImportError(f"the {name!r} dataset ships with scikit-learn; install it with "
                          "`pip install scikit-learn` (or use the 'spirals' problems)") from err
    bunch = getattr(datasets, f"load_{name}")()
    return _standardize(bunch.data), bunch.target


def spirals(n: int = 400, noise: float = 0.3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved spirals in the plane: ``n`` points, labels 0/1 (numpy only)."""
    rng = np.random.default_rng(seed)
    half = n // 2
    t = np.sqrt(rng.uniform(0.0, 1.0, half)) * 3.0 * math.pi
    arm = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (3.0 * math.pi) * 2.0
    x = np.concatenate([arm, -arm]) + noise * rng.standard_normal((2 * half, 2)) / 3.0
    y = np.concatenate([np.zeros(half), np.ones(half)])
    return x, y


_LOADERS: dict[str, Callable[[], tuple[np.ndarray, np.ndarray]]] = {
    "digits": lambda: _sklearn_dataset("digits"),
    "breast_cancer": lambda: _sklearn_dataset("breast_cancer"),
    "spirals": spirals,
}


@dataclasses.dataclass(frozen=True)
class TrainingProblem:
    """A model and a bundled dataset; :meth:`load` gives ``(loss_fn, params, data)``.

    Attributes:
      name: e.g. ``"mlp_digits"``.
      model: ``"logreg"`` or ``"mlp"``.
      dataset: ``"digits"``, ``"breast_cancer"`` or ``"spirals"``.
      steps: a default number of full-batch steps.
      needs_sklearn: whether loading imports scikit-learn.

    Example::

        >>> import optxform
        >>> problem = optxform.get_problem("logreg_spirals")
        >>> problem.description
        'logistic regression on spirals (full batch, softmax cross-entropy)'
        >>> loss_fn, params, (x, y) = problem.load()
        >>> x.shape, y.shape, sorted(params)
        ((400, 2), (400,), ['b', 'w'])
        >>> problem.accuracy(params, (x, y))  # zero weights: every point in class 0
        0.5
    """

    name: str
    model: str
    dataset: str
    steps: int = 200

    @property
    def needs_sklearn(self) -> bool:
        """Whether :meth:`load` imports scikit-learn (every dataset but ``spirals``)."""
        return self.dataset != "spirals"

    @property
    def description(self) -> str:
        """One line: the model and the dataset."""
        model = "logistic regression" if self.model == "logreg" else "one-hidden-layer tanh MLP"
        return f"{model} on {self.dataset} (full batch, softmax cross-entropy)"

    @property
    def loss_fn(self) -> Callable[[Any, Any], jax.Array]:
        """:func:`logistic_regression_loss` or :func:`mlp_loss`, by :attr:`model`."""
        return logistic_regression_loss if self.model == "logreg" else mlp_loss

    def load(self, seed: int = 0) -> tuple[Callable, dict, tuple[jax.Array, jax.Array]]:
        """``(loss_fn, params, data)``: data is ``(x float32 [n, d], y int32 [n])``."""
        x, y = _LOADERS[self.dataset]()
        n_classes = int(y.max()) + 1
        data = (jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.int32))
        make = _logistic_params if self.model == "logreg" else _mlp_params
        return self.loss_fn, make(x.shape[1], n_classes, seed), data

    def accuracy(self, params: dict, data: tuple[jax.Array, jax.Array]) -> float:
        """Fraction of ``data`` classified correctly by ``params``."""
        x, y = data
        if self.model == "logreg":
            logits = x @ params["w"] + params["b"][None, :]
        else:
            h = jnp.tanh(x @ params["w1"] + params["b1"][None, :])
            logits = h @ params["w2"] + params["b2"][None, :]
        return float(jnp.mean((jnp.argmax(logits, axis=-1) == y).astype(jnp.float32)))


TRAINING_PROBLEMS: dict[str, TrainingProblem] = {p.name: p for p in [
    TrainingProblem(f"{model}_{dataset}", model, dataset)
    for dataset in ("spirals", "digits", "breast_cancer") for model in ("logreg", "mlp")
]}
