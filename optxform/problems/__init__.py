"""optxform.problems"""

__all__: list[str] = []
