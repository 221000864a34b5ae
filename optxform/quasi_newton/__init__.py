"""optxform.quasi_newton"""

__all__: list[str] = []
