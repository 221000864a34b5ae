"""The rprop optimizer alias."""

__all__: list[str] = []
