"""The adafactor optimizer alias."""

__all__: list[str] = []
