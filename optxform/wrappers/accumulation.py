"""Wrapper: accumulation."""

__all__: list[str] = []
