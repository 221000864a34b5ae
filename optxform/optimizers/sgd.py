"""The sgd optimizer alias."""

__all__: list[str] = []
