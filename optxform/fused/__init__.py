"""Opt-in fast layout: leaves packed into one flat buffer per dtype, same math.

``layout.py``: :class:`PackedLayout` (pack / unpack trees and states). ``wrapper.py``:
:func:`packed` (a transform whose state lives packed) and the state converters.
``train.py``: :class:`TrainState` (params kept packed across training steps).
``model.py``: :func:`pack_model` (a model whose float arrays live packed, for loops that
carry the model itself, as equinox's do). ``split.py``: how a params tree divides into
trained, frozen and static leaves, and the offsets its leaves are cut out at (shared by
the two).
See docs/performance.md for when each pays off.
"""

from optxform.fused.layout import label_mask as label_mask
from optxform.fused.layout import packed_layout as packed_layout
from optxform.fused.layout import PackedLayout as PackedLayout
from optxform.fused.model import pack_model as pack_model
from optxform.fused.model import PackedModel as PackedModel
from optxform.fused.wrapper import pack_state as pack_state
from optxform.fused.wrapper import packed as packed
from optxform.fused.wrapper import PackedState as PackedState
from optxform.fused.wrapper import unpack_state as unpack_state
from optxform.fused.train import TrainState as TrainState

__all__ = [
    "label_mask",
    "pack_model",
    "pack_state",
    "packed",
    "packed_layout",
    "PackedLayout",
    "PackedModel",
    "PackedState",
    "TrainState",
    "unpack_state",
]
