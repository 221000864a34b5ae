"""The rmsprop optimizer alias."""

__all__: list[str] = []
