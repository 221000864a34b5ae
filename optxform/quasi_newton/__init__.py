"""Quasi-Newton directions.

* ``lbfgs.py``: the L-BFGS memory (a fixed-size ring buffer of curvature pairs), the two-loop
  recursion, and ``scale_by_lbfgs``, the chainable direction transform.
* ``iterations.py``: ``lbfgs_iterations``, torch's ``LBFGS.step(closure)`` loop (direction +
  fixed step or strong-Wolfe search, torch's stopping rules) as one compiled update; the
  ``lbfgs`` alias is built on it.
"""

from optxform.quasi_newton import iterations as _iterations
from optxform.quasi_newton import lbfgs as _lbfgs
from optxform.quasi_newton.iterations import *  # noqa: F401,F403
from optxform.quasi_newton.lbfgs import *  # noqa: F401,F403

__all__ = [*_iterations.__all__, *_lbfgs.__all__]
