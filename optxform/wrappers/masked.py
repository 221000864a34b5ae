"""Wrapper: masked."""

__all__: list[str] = []
