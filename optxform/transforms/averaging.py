"""Averaged SGD (ASGD): step-size decay and the running parameter average."""

__all__: list[str] = []
