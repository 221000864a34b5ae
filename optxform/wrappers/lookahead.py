"""Wrapper: lookahead."""

__all__: list[str] = []
