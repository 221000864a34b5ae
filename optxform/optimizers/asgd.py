"""The asgd optimizer alias."""

__all__: list[str] = []
