"""optxform.schedules"""

__all__: list[str] = []
