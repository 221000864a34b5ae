"""Sign-based updates: Rprop and Lion."""

__all__: list[str] = []
