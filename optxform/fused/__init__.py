"""Opt-in fast layout: leaves packed into one flat buffer per dtype, same math.

``layout.py``: :class:`PackedLayout` (pack / unpack trees and states). ``wrapper.py``:
:func:`packed` (a transform whose state lives packed) and the state converters.
See docs/performance.md for when each pays off.
"""

from optxform.fused.layout import *  # noqa: F401,F403
from optxform.fused.wrapper import *  # noqa: F401,F403
from optxform.fused import layout as _layout  # noqa: E402
from optxform.fused import wrapper as _wrapper  # noqa: E402

__all__ = [*_layout.__all__, *_wrapper.__all__]
