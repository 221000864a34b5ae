"""The lbfgs optimizer alias."""

__all__: list[str] = []
