"""Clipping and cleaning updates: clip, clip_by_global_norm, clip_by_block_rms, zero_nans."""

__all__: list[str] = []
