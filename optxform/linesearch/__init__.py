"""optxform.linesearch"""

__all__: list[str] = []
