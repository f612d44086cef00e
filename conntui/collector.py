"""Memory housekeeping around polls: Python's cyclic garbage collector paused while work builds
many objects and no cycles, and freed memory handed back to the system after a poll replaced
the table.

A poll builds a new row tuple per socket and `list --csv` a dict per socket; none of them can
form a cycle, yet every 700 allocations the collector walks the young objects, and the older
generations with them, so at 20,000 sockets its passes cost more than a tenth of a poll.

The rows a poll replaces are freed, but the C allocator keeps the memory they took for the
next ones: at 100,000 sockets 6-11 MB of the dashboard's resident memory.
"""

from __future__ import annotations

import contextlib
import functools
import gc
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for the block (22,000 `list` records: 45 ms paused, 80 ms not;
    a poll of 20,000 sockets: 66 ms paused, 76 not). Nested blocks leave it to the outermost one."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    import ctypes  # the dashboard's only: `list` never loads it

    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim  # glibc's; musl and macOS have none
    except (OSError, AttributeError):
        return None
    return trim


def release_freed_memory() -> None:
    """Hand the memory the C allocator holds free back to the system (glibc's `malloc_trim`; nothing
    elsewhere): ~1 ms at 100,000 sockets, after a poll that replaced the table's rows."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
