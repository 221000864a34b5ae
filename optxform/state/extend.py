"""extend_state: torch's add_param_group for a functional state."""

__all__: list[str] = []
