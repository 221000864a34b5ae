"""Momentum: torch's momentum buffer (trace)."""

__all__: list[str] = []
