"""optxform.explore"""

__all__: list[str] = []
