"""Look problems up by name: the 2-D surfaces and the small training problems."""

from __future__ import annotations

from optxform.problems.surfaces import SURFACES, Surface
from optxform.problems.training import TRAINING_PROBLEMS, TrainingProblem

__all__ = ["get_problem", "problem_names"]


def problem_names(kind: str = "all") -> list[str]:
    """Names of the built-in problems: ``kind`` is ``"all"``, ``"surface"`` or ``"training"``.

    Args:
      kind: ``"surface"`` (the 2-D test functions), ``"training"`` (the small training
        problems) or ``"all"`` (both).

    Returns:
      The names :func:`get_problem` accepts, surfaces first, in a fixed order.

    Raises:
      ValueError: for another ``kind``.

    Example::

        >>> import optxform
        >>> optxform.problem_names("surface")[:3]
        ['rosenbrock', 'beale', 'himmelblau']
        >>> "mlp_digits" in optxform.problem_names("training")
        True
    """
    if kind not in ("all", "surface", "training"):
        raise ValueError(f"Invalid kind: {kind!r} (kind must be 'all', 'surface' or 'training')")
    names = []
    if kind in ("all", "surface"):
        names += list(SURFACES)
    if kind in ("all", "training"):
        names += list(TRAINING_PROBLEMS)
    return names


def get_problem(name: str) -> Surface | TrainingProblem:
    """The built-in problem called ``name``; a ``ValueError`` lists the known names.

    Args:
      name: one of :func:`problem_names`, e.g. ``"rosenbrock"`` or ``"mlp_digits"``.

    Returns:
      A :class:`Surface` (a 2-D test function with its start point and plotting window) or
        a :class:`TrainingProblem` (a model and a dataset; ``.load()`` gives
        ``(loss_fn, params, data)``).

    Raises:
      ValueError: for an unknown name; the message lists the known ones.

    Example::

        >>> import optxform
        >>> optxform.get_problem("booth").minima
        ((1.0, 3.0),)
        >>> optxform.get_problem("mlp_spirals").model
        'mlp'
    """
    if name in SURFACES:
        return SURFACES[name]
    if name in TRAINING_PROBLEMS:
        return TRAINING_PROBLEMS[name]
    raise ValueError(f"unknown problem {name!r}; known problems: {', '.join(problem_names())}")
