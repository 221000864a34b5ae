"""Two-dimensional test functions with known minima, for watching optimizers move.

Each function takes ``params``, an array of shape ``(2,)`` holding ``(x, y)``, and returns a
scalar loss. Each also has a :class:`Surface` record (in :data:`SURFACES`) with a start
point, plotting bounds, its known minimizers (and saddle points), and learning rates that
work for each optimizer on it (tuned with :func:`optxform.choose`; see docs/choosing.md).

=====================  ==========================================  ======================
name                   f(x, y)                                     minimizers, f*
=====================  ==========================================  ======================
rosenbrock             (1 - x)^2 + 100 (y - x^2)^2                  (1, 1), 0
beale                  (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2       (3, 0.5), 0
                       + (2.625 - x + xy^3)^2
himmelblau             (x^2 + y - 11)^2 + (x + y^2 - 7)^2           four points, 0
booth                  (x + 2y - 7)^2 + (2x + y - 5)^2              (1, 3), 0
saddle                 x^2 - y^2                                    none (saddle at 0)
monkey_saddle          x^3 - 3 x y^2                                none (saddle at 0)
rastrigin              20 + sum(t^2 - 10 cos(2 pi t)), t = x, y     (0, 0), 0
ill_conditioned        (x^2 + 50 y^2) / 2  (condition number 50)    (0, 0), 0
=====================  ==========================================  ======================
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["SURFACES", "Surface", "beale", "booth", "himmelblau", "ill_conditioned_quadratic",
           "monkey_saddle", "rastrigin", "rosenbrock", "saddle"]


def _xy(params) -> tuple[jax.Array, jax.Array]:
    params = jnp.asarray(params)
    if params.shape[-1:] != (2,):
        raise ValueError(f"a surface takes params of shape (2,) = (x, y), got {params.shape}")
    return params[..., 0], params[..., 1]


def rosenbrock(params: jax.Array) -> jax.Array:
    r"""``(1 - x)^2 + 100 (y - x^2)^2``: a curved, narrow valley; minimum 0 at (1, 1).

    .. math::

        f(x, y) = (1 - x)^2 + 100\,(y - x^2)^2

    Args:
      params: ``(x, y)``, an array of shape ``(2,)``, or ``(..., 2)`` for a batch of points.

    Returns:
      The loss, a scalar (shape ``(...)`` for a batch), 0 only at (1, 1).

    Reference: H. H. Rosenbrock, "An automatic method for finding the greatest or least value
    of a function", The Computer Journal 3(3), 1960.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> optxform.rosenbrock(jnp.array([1.0, 1.0]))
        Array(0., dtype=float32)
        >>> optxform.rosenbrock(jnp.array([[-1.5, 2.0], [0.0, 0.0]]))  # two points at once
        Array([12.5,  1. ], dtype=float32)
    """
    x, y = _xy(params)
    return (1.0 - x) ** 2 + 100.0 * (y - x ** 2) ** 2


def beale(params: jax.Array) -> jax.Array:
    r"""Beale's function: flat plateaus and steep walls; minimum 0 at (3, 0.5).

    .. math::

        f(x, y) = (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2

    Args:
      params: ``(x, y)``, an array of shape ``(2,)``, or ``(..., 2)`` for a batch of points.

    Returns:
      The loss, a scalar (shape ``(...)`` for a batch), 0 at the minimum (3, 0.5).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> optxform.beale(jnp.array([3.0, 0.5]))
        Array(0., dtype=float32)
    """
    x, y = _xy(params)
    return ((1.5 - x + x * y) ** 2 + (2.25 - x + x * y ** 2) ** 2
            + (2.625 - x + x * y ** 3) ** 2)


def himmelblau(params: jax.Array) -> jax.Array:
    r"""``(x^2 + y - 11)^2 + (x + y^2 - 7)^2``: four minima of value 0, a local max in between.

    .. math::

        f(x, y) = (x^2 + y - 11)^2 + (x + y^2 - 7)^2

    Args:
      params: ``(x, y)``, an array of shape ``(2,)``, or ``(..., 2)`` for a batch of points.

    Returns:
      The loss, a scalar (shape ``(...)`` for a batch), 0 at each of the four minima,
        among them (3, 2).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> optxform.himmelblau(jnp.array([[3.0, 2.0], [0.0, 0.0]]))
        Array([  0., 170.], dtype=float32)
    """
    x, y = _xy(params)
    return (x ** 2 + y - 11.0) ** 2 + (x + y ** 2 - 7.0) ** 2


def booth(params: jax.Array) -> jax.Array:
    r"""``(x + 2y - 7)^2 + (2x + y - 5)^2``: a convex quadratic bowl; minimum 0 at (1, 3).

    .. math::

        f(x, y) = (x + 2y - 7)^2 + (2x + y - 5)^2

    Args:
      params: ``(x, y)``, an array of shape ``(2,)``, or ``(..., 2)`` for a batch of points.

    Returns:
      The loss, a scalar (shape ``(...)`` for a batch), 0 at the minimum (1, 3).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> optxform.booth(jnp.array([0.0, 0.0])), optxform.booth(jnp.array([1.0, 3.0]))
        (Array(74., dtype=float32), Array(0., dtype=float32))
    """
    x, y = _xy(params)
    return (x + 2.0 * y - 7.0) ** 2 + (2.0 * x + y - 5.0) ** 2


def saddle(params: jax.Array) -> jax.Array:
    r"""``x^2 - y^2``: a saddle at the origin, unbounded below along the y axis.

    .. math::

        f(x, y) = x^2 - y^2

    Args:
      params: ``(x, y)``, an array of shape ``(2,)``, or ``(..., 2)`` for a batch of points.

    Returns:
      The loss, a scalar (shape ``(...)`` for a batch); it has no minimum.

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> jax.grad(optxform.saddle)(jnp.array([0.0, 0.0]))  # a stationary point
        Array([0., 0.], dtype=float32)
        >>> optxform.saddle(jnp.array([0.0, 2.0]))  # yet lower along y
        Array(-4., dtype=float32)
    """
    x, y = _xy(params)
    return x ** 2 - y ** 2


def monkey_saddle(params: jax.Array) -> jax.Array:
    r"""``x^3 - 3 x y^2``: a degenerate saddle (zero Hessian) at the origin, three valleys.

    .. math::

        f(x, y) = x^3 - 3 x y^2

    Args:
      params: ``(x, y)``, an array of shape ``(2,)``, or ``(..., 2)`` for a batch of points.

    Returns:
      The loss, a scalar (shape ``(...)`` for a batch); it has no minimum.

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> jax.hessian(optxform.monkey_saddle)(jnp.array([0.0, 0.0]))
        Array([[0., 0.],
               [0., 0.]], dtype=float32)
    """
    x, y = _xy(params)
    return x ** 3 - 3.0 * x * y ** 2


def rastrigin(params: jax.Array) -> jax.Array:
    r"""``20 + x^2 + y^2 - 10 (cos 2 pi x + cos 2 pi y)``: many local minima; global 0 at (0, 0).

    .. math::

        f(x, y) = 20 + \sum_{t \in \{x, y\}} \big(t^2 - 10 \cos(2 \pi t)\big)

    Args:
      params: ``(x, y)``, an array of shape ``(2,)``, or ``(..., 2)`` for a batch of points.

    Returns:
      The loss, a scalar (shape ``(...)`` for a batch), 0 at the global minimum (0, 0)
        and small at the local minima near the other integer points.

    Reference: L. A. Rastrigin, *Systems of Extremal Control*, 1974 (the 2-D case).

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> optxform.rastrigin(jnp.array([[0.0, 0.0], [1.0, 1.0]]))
        Array([0., 2.], dtype=float32)
    """
    x, y = _xy(params)
    two_pi = 2.0 * math.pi
    return 20.0 + x ** 2 + y ** 2 - 10.0 * (jnp.cos(two_pi * x) + jnp.cos(two_pi * y))


ILL_CONDITION = 50.0


def ill_conditioned_quadratic(params: jax.Array) -> jax.Array:
    r"""``(x^2 + 50 y^2) / 2``: a bowl whose curvatures differ 50-fold; minimum 0 at (0, 0).

    .. math::

        f(x, y) = \tfrac{1}{2}\,(x^2 + 50\,y^2)

    Args:
      params: ``(x, y)``, an array of shape ``(2,)``, or ``(..., 2)`` for a batch of points.

    Returns:
      The loss, a scalar (shape ``(...)`` for a batch), 0 at the minimum (0, 0).

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> jax.grad(optxform.ill_conditioned_quadratic)(jnp.array([1.0, 1.0]))
        Array([ 1., 50.], dtype=float32)
    """
    x, y = _xy(params)
    return 0.5 * (x ** 2 + ILL_CONDITION * y ** 2)


Point = tuple[float, float]


@dataclasses.dataclass(frozen=True)
class Surface:
    """A 2-D test function with what is needed to run and draw optimizers on it.

    Attributes:
      name: the name the command line and :func:`optxform.get_problem` use.
      fn: ``params (2,) -> loss``.
      start: the default start point.
      bounds: ``((x_min, x_max), (y_min, y_max))`` of the plotting window.
      minima: the known global minimizers (empty for a saddle).
      minimum_value: the loss at the minima (``None`` when unbounded below).
      saddles: known saddle points.
      log_scale: draw contours of ``log(1 + f - f*)`` (for functions spanning many decades).
      learning_rates: a learning rate per optimizer that works on this surface.
      steps: the default number of steps to run.

    A surface is callable: ``surface(params)`` is ``surface.fn(params)``.

    Example::

        >>> import optxform
        >>> surface = optxform.get_problem("rosenbrock")
        >>> surface.start, surface.minima
        ((-1.5, 2.0), ((1.0, 1.0),))
        >>> surface(surface.start_array())
        Array(12.5, dtype=float32)
        >>> round(surface.distance_to_minimum(surface.start), 4)
        2.6926
    """

    name: str
    fn: Callable[[jax.Array], jax.Array]
    start: Point
    bounds: tuple[Point, Point]
    minima: tuple[Point, ...] = ()
    minimum_value: float | None = 0.0
    saddles: tuple[Point, ...] = ()
    log_scale: bool = True
    learning_rates: Mapping[str, float] = dataclasses.field(default_factory=dict)
    steps: int = 200

    def __call__(self, params) -> jax.Array:
        return self.fn(params)

    @property
    def description(self) -> str:
        """The first line of the function's docstring: its formula and its minimum."""
        return (self.fn.__doc__ or "").strip().splitlines()[0].replace("``", "")

    def start_array(self, start: Point | None = None) -> jax.Array:
        """The start point (default :attr:`start`) as a float32 array of shape (2,)."""
        return jnp.asarray(self.start if start is None else start, jnp.float32)

    def distance_to_minimum(self, point: jax.Array | np.ndarray | Sequence[float]) -> float:
        """Euclidean distance from ``point`` to the nearest known minimizer (inf if none)."""
        x, y = float(point[0]), float(point[1])
        return min((math.hypot(x - mx, y - my) for mx, my in self.minima), default=math.inf)


# Learning rates: for each optimizer, the value of the grid 1e-4, 3e-4, ..., 3, 10 with the
# lowest final loss after `steps` steps from `start` among the runs that stay inside the
# plotting window (`optxform compare NAME --tune` races it again). On the saddles every
# optimizer gets the same rate, to compare like with like.
_SAME_RATE = ("sgd", "momentum", "nesterov", "asgd", "adagrad", "rmsprop", "adam", "adamw",
              "adamax", "nadam", "radam", "rprop", "lion", "amsgrad")

SURFACES: dict[str, Surface] = {s.name: s for s in [
    Surface("rosenbrock", rosenbrock, start=(-1.5, 2.0), bounds=((-2.0, 2.0), (-1.0, 3.0)),
            minima=((1.0, 1.0),), steps=300,
            learning_rates=dict(sgd=0.001, momentum=0.001, nesterov=0.001, asgd=0.001,
                                adagrad=1.0, adadelta=10.0, rmsprop=0.1, adam=1.0,
                                adamw=0.3, adamax=1.0, nadam=0.3, radam=0.01,
                                rprop=0.1, lion=0.01, amsgrad=1.0)),
    Surface("beale", beale, start=(1.0, 1.4), bounds=((-4.5, 4.5), (-4.5, 4.5)),
            minima=((3.0, 0.5),), steps=300,
            learning_rates=dict(sgd=0.03, momentum=0.01, nesterov=0.003, asgd=0.03,
                                adagrad=1.0, adadelta=3.0, rmsprop=0.3, adam=0.3,
                                adamw=0.3, adamax=1.0, nadam=0.3, radam=0.01,
                                rprop=1.0, lion=0.1, amsgrad=0.3)),
    Surface("himmelblau", himmelblau, start=(-0.3, -0.9), bounds=((-5.0, 5.0), (-5.0, 5.0)),
            minima=((3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186),
                    (3.584428, -1.848126)), steps=200,
            learning_rates=dict(sgd=0.01, momentum=0.01, nesterov=0.003, asgd=0.01,
                                adagrad=1.0, adadelta=1.0, rmsprop=0.03, adam=1.0,
                                adamw=1.0, adamax=3.0, nadam=0.1, radam=0.1,
                                rprop=0.1, lion=0.1, amsgrad=0.3)),
    Surface("booth", booth, start=(-8.0, -8.0), bounds=((-10.0, 10.0), (-10.0, 10.0)),
            minima=((1.0, 3.0),), steps=200,
            learning_rates=dict(sgd=0.03, momentum=0.01, nesterov=0.03, asgd=0.03,
                                adagrad=10.0, adadelta=10.0, rmsprop=1.0, adam=1.0,
                                adamw=10.0, adamax=10.0, nadam=3.0, radam=0.01,
                                rprop=0.03, lion=0.3, amsgrad=10.0)),
    Surface("saddle", saddle, start=(1.0, 1e-3), bounds=((-1.5, 1.5), (-1.5, 1.5)),
            minima=(), minimum_value=None, saddles=((0.0, 0.0),), log_scale=False, steps=100,
            learning_rates=dict(dict.fromkeys(_SAME_RATE, 0.05), adadelta=1.0)),
    Surface("monkey_saddle", monkey_saddle, start=(1.0, 1e-3),
            bounds=((-1.5, 1.5), (-1.5, 1.5)),
            minima=(), minimum_value=None, saddles=((0.0, 0.0),), log_scale=False, steps=100,
            learning_rates=dict(dict.fromkeys(_SAME_RATE, 0.05), adadelta=1.0)),
    Surface("rastrigin", rastrigin, start=(-3.3, 2.7), bounds=((-5.12, 5.12), (-5.12, 5.12)),
            minima=((0.0, 0.0),), log_scale=False, steps=200,
            learning_rates=dict(sgd=0.0003, momentum=0.0003, nesterov=0.0001, asgd=0.001,
                                adagrad=0.03, adadelta=1.0, rmsprop=0.003,
                                adam=0.1, adamw=0.1, adamax=0.1, nadam=0.03,
                                radam=0.001, rprop=0.0001, lion=0.01, amsgrad=0.03)),
    Surface("ill_conditioned", ill_conditioned_quadratic, start=(-4.5, 1.5),
            bounds=((-5.0, 5.0), (-2.0, 2.0)), minima=((0.0, 0.0),), log_scale=False, steps=100,
            learning_rates=dict(sgd=0.03, momentum=0.03, nesterov=0.01, asgd=0.03, adagrad=3.0,
                                adadelta=10.0, rmsprop=0.3, adam=3.0, adamw=3.0,
                                adamax=1.0, nadam=1.0, radam=0.03, rprop=3.0,
                                lion=0.1, amsgrad=3.0)),
]}
