"""Wrapper: multi_transform."""

__all__: list[str] = []
