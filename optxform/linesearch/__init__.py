"""Line searches as transforms: they scale a descent direction (the incoming updates) by a
step chosen from ``value=``, ``grad=`` and ``value_fn=`` passed to ``update``.

* ``backtracking.py``: Armijo backtracking (``backtracking_linesearch``, optax's convention).
* ``zoom.py``: strong-Wolfe bracketing + zoom with cubic interpolation (torch's), both as the
  flat-vector function ``strong_wolfe_search`` (used by ``lbfgs``) and as ``zoom_linesearch``.
* ``objective.py``: the user's ``value_fn`` seen on flat vectors, with trace-time checks.
"""

from optxform.linesearch import backtracking as _backtracking
from optxform.linesearch import zoom as _zoom
from optxform.linesearch.backtracking import *  # noqa: F401,F403
from optxform.linesearch.zoom import *  # noqa: F401,F403

__all__ = [*_backtracking.__all__, *_zoom.__all__]
