"""Wrapper: ema."""

__all__: list[str] = []
