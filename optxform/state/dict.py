"""Flat, readable state dicts: state_dict, load_state_dict."""

__all__: list[str] = []
