"""Factored second moments (Adafactor): scale_by_factored_rms."""

__all__: list[str] = []
