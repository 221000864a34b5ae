"""The adadelta optimizer alias."""

__all__: list[str] = []
