"""Optional progress: a tqdm bar on a terminal, plain lines anywhere else.

A bar redraws itself with carriage returns, which turns a log file or a CI transcript into
noise; so when stderr is not a terminal (and not a notebook), each finished item prints one
line such as ``optimizers: 2/6 done (3.1 s)`` instead.
"""

from __future__ import annotations

import sys
import time
from typing import Iterable, Iterator, TextIO, TypeVar

__all__: list[str] = []  # internal helper

T = TypeVar("T")


def _interactive(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal, or a notebook where tqdm draws a widget."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty()) or "ipykernel" in sys.modules


def progress_bar(items: Iterable[T], *, total: int | None = None, desc: str = "",
                 enabled: bool = True, stream: TextIO | None = None) -> Iterator[T]:
    """Iterate ``items``, showing progress on ``stream`` (default: stderr) when ``enabled``.

    On a terminal with tqdm installed: a bar that disappears when done. Otherwise: one plain
    line per finished item (no carriage returns).
    """
    stream = sys.stderr if stream is None else stream
    if not enabled:
        yield from items
        return
    if _interactive(stream):
        try:
            from tqdm.auto import tqdm
        except ImportError:
            tqdm = None
        if tqdm is not None:
            yield from tqdm(items, total=total, desc=desc, file=stream, leave=False,
                            dynamic_ncols=True)
            return
    start = time.perf_counter()
    of = f"/{total}" if total is not None else ""
    for done, item in enumerate(items, 1):
        yield item
        print(f"{desc}: {done}{of} done ({time.perf_counter() - start:.1f} s)", file=stream,
              flush=True)
