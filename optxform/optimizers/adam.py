"""The adam optimizer alias."""

__all__: list[str] = []
