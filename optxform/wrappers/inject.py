"""Wrapper: inject."""

__all__: list[str] = []
