"""Wrapper: apply_if_finite."""

__all__: list[str] = []
