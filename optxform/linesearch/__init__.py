"""Line searches as transforms: they scale a descent direction (the incoming updates) by a
step chosen from ``value=``, ``grad=`` and ``value_fn=`` passed to ``update``.

* ``backtracking.py``: Armijo backtracking (``backtracking_linesearch``, optax's convention).
* ``zoom.py``: strong-Wolfe bracketing + zoom with cubic interpolation (torch's), both as the
  flat-vector function ``strong_wolfe_search`` (used by ``lbfgs``) and as ``zoom_linesearch``.
* ``objective.py``: the user's ``value_fn`` seen on flat vectors, with trace-time checks.
"""

from optxform.linesearch.backtracking import backtracking_linesearch as backtracking_linesearch
from optxform.linesearch.backtracking import BacktrackingLinesearchState as BacktrackingLinesearchState
from optxform.linesearch.zoom import zoom_linesearch as zoom_linesearch
from optxform.linesearch.zoom import ZoomLinesearchState as ZoomLinesearchState

__all__ = [
    "backtracking_linesearch",
    "BacktrackingLinesearchState",
    "zoom_linesearch",
    "ZoomLinesearchState",
]
