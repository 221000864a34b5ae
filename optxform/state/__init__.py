"""Anything that only reads or writes an optimizer state."""

from optxform.state.access import *  # noqa: F401,F403
from optxform.state.dict import *  # noqa: F401,F403
from optxform.state.extend import *  # noqa: F401,F403
from optxform.state.files import *  # noqa: F401,F403
from optxform.state import access, dict as dict_, extend, files  # noqa: E402

__all__ = [name for module in (access, dict_, extend, files) for name in module.__all__]
