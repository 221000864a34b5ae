"""Multi-device training: sharding-aware init, ZeRO-1 sharded state, sharded checkpoints.

``sharding.py``: state created with the params' layout (``sharded_init``), per-device bytes.
``zero.py``: ZeRO stage 1, the state of replicated params split over the data axis (``zero1``).
``checkpoint.py``: save a sharded state from one mesh, restore it onto another.
See docs/distributed.md for the pmap, sharded-jit, ZeRO-1 and multi-process recipes.
"""

from optxform.parallel.checkpoint import *  # noqa: F401,F403
from optxform.parallel.sharding import *  # noqa: F401,F403
from optxform.parallel.zero import *  # noqa: F401,F403
from optxform.parallel import checkpoint, sharding, zero  # noqa: E402

__all__ = [name for module in (checkpoint, sharding, zero) for name in module.__all__]
