"""optxform.parallel"""

__all__: list[str] = []
