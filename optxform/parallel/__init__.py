"""Multi-device training: sharding-aware init, ZeRO-1 sharded state, sharded checkpoints.

``sharding.py``: state created with the params' layout (``sharded_init``), per-device bytes.
``zero.py``: ZeRO stage 1, the state of replicated params split over the data axis (``zero1``).
``checkpoint.py``: save a sharded state from one mesh, restore it onto another.
See docs/distributed.md for the pmap, sharded-jit, ZeRO-1 and multi-process recipes.
"""

from optxform.parallel.checkpoint import gather_to_host as gather_to_host
from optxform.parallel.checkpoint import load_sharded_state as load_sharded_state
from optxform.parallel.checkpoint import place_on as place_on
from optxform.parallel.checkpoint import save_sharded_state as save_sharded_state
from optxform.parallel.checkpoint import sharded_template as sharded_template
from optxform.parallel.sharding import bytes_per_device as bytes_per_device
from optxform.parallel.sharding import constrain_sharding as constrain_sharding
from optxform.parallel.sharding import replicated_sharding as replicated_sharding
from optxform.parallel.sharding import sharded_init as sharded_init
from optxform.parallel.sharding import state_shardings as state_shardings
from optxform.parallel.zero import zero1 as zero1
from optxform.parallel.zero import zero1_init as zero1_init
from optxform.parallel.zero import zero1_spec as zero1_spec
from optxform.parallel.zero import zero1_state_shardings as zero1_state_shardings

__all__ = [
    "bytes_per_device",
    "constrain_sharding",
    "gather_to_host",
    "load_sharded_state",
    "place_on",
    "replicated_sharding",
    "save_sharded_state",
    "sharded_init",
    "sharded_template",
    "state_shardings",
    "zero1",
    "zero1_init",
    "zero1_spec",
    "zero1_state_shardings",
]
