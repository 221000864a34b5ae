"""Quasi-Newton directions.

* ``lbfgs.py``: the L-BFGS memory (a fixed-size ring buffer of curvature pairs), the two-loop
  recursion, and ``scale_by_lbfgs``, the chainable direction transform.
* ``iterations.py``: ``lbfgs_iterations``, torch's ``LBFGS.step(closure)`` loop (direction +
  fixed step or strong-Wolfe search, torch's stopping rules) as one compiled update; the
  ``lbfgs`` alias is built on it.
"""

from optxform.quasi_newton.iterations import lbfgs_iterations as lbfgs_iterations
from optxform.quasi_newton.iterations import LbfgsIterationsState as LbfgsIterationsState
from optxform.quasi_newton.lbfgs import LbfgsMemory as LbfgsMemory
from optxform.quasi_newton.lbfgs import scale_by_lbfgs as scale_by_lbfgs
from optxform.quasi_newton.lbfgs import ScaleByLbfgsState as ScaleByLbfgsState

__all__ = [
    "lbfgs_iterations",
    "LbfgsIterationsState",
    "LbfgsMemory",
    "scale_by_lbfgs",
    "ScaleByLbfgsState",
]
