"""Reading and setting named fields anywhere in a nested state: tree_get, tree_set."""

__all__: list[str] = []
