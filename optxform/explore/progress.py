"""Optional progress bars: tqdm when it is installed and wanted, a plain loop otherwise."""

from __future__ import annotations

import sys
from typing import Iterable, Iterator, TypeVar

__all__: list[str] = []  # internal helper

T = TypeVar("T")


def progress_bar(items: Iterable[T], *, total: int | None = None, desc: str = "",
                 enabled: bool = True) -> Iterator[T]:
    """Iterate ``items``, showing a tqdm bar on stderr when ``enabled`` and tqdm exists."""
    if enabled:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            tqdm = None
        if tqdm is not None:
            yield from tqdm(items, total=total, desc=desc, file=sys.stderr, leave=False,
                            dynamic_ncols=True)
            return
    yield from items
