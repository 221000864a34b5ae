"""The Adam family: scale_by_adam, scale_by_adamax, scale_by_nadam, scale_by_radam, sparse Adam."""

__all__: list[str] = []
