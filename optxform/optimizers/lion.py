"""The lion optimizer alias."""

__all__: list[str] = []
