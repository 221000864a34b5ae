"""Anything that only reads or writes an optimizer state."""

from optxform.state.access import tree_get as tree_get
from optxform.state.access import tree_set as tree_set
from optxform.state.decode import float32_state as float32_state
from optxform.state.dict import load_state_dict as load_state_dict
from optxform.state.dict import state_dict as state_dict
from optxform.state.dict import state_keys as state_keys
from optxform.state.errors import CheckpointError as CheckpointError
from optxform.state.extend import extend_state as extend_state
from optxform.state.files import load_state as load_state
from optxform.state.files import save_state as save_state

__all__ = [
    "CheckpointError",
    "extend_state",
    "float32_state",
    "load_state",
    "load_state_dict",
    "save_state",
    "state_dict",
    "state_keys",
    "tree_get",
    "tree_set",
]
