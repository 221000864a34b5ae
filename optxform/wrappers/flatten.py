"""Wrapper: flatten."""

__all__: list[str] = []
