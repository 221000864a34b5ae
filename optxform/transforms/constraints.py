"""Constraints on params: keep_params_nonnegative."""

__all__: list[str] = []
