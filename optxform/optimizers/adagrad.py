"""The adagrad optimizer alias."""

__all__: list[str] = []
