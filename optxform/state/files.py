"""Checkpoint files: save_state, load_state (safe format, checksums, atomic write)."""

__all__: list[str] = []
