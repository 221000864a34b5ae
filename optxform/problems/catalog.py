"""Look problems up by name: the 2-D surfaces and the small training problems."""

from __future__ import annotations

from optxform.problems.surfaces import SURFACES, Surface
from optxform.problems.training import TRAINING_PROBLEMS, TrainingProblem

__all__ = ["get_problem", "problem_names"]


def problem_names(kind: str = "all") -> list[str]:
    """Names of the built-in problems: ``kind`` is ``"all"``, ``"surface"`` or ``"training"``."""
    if kind not in ("all", "surface", "training"):
        raise ValueError(f"Invalid kind: {kind!r} (kind must be 'all', 'surface' or 'training')")
    names = []
    if kind in ("all", "surface"):
        names += list(SURFACES)
    if kind in ("all", "training"):
        names += list(TRAINING_PROBLEMS)
    return names


def get_problem(name: str) -> Surface | TrainingProblem:
    """The built-in problem called ``name``; a ``ValueError`` lists the known names."""
    if name in SURFACES:
        return SURFACES[name]
    if name in TRAINING_PROBLEMS:
        return TRAINING_PROBLEMS[name]
    raise ValueError(f"unknown problem {name!r}; known problems: {', '.join(problem_names())}")
