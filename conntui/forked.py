"""Work done in a forked child process, on the other core, its bytes read back through a pipe.

For the one-shot `list`'s owner scan, single-threaded (never from the dashboard: a fork copies only the
forking thread, and any lock another thread held stays held in the child).
"""

from __future__ import annotations

import os
from collections.abc import Callable


def run_forked(work: Callable[[], bytes]) -> Callable[[], bytes | None] | None:
    """Start `work` in a forked child; the function returned waits for it and gives its bytes, or
    None if it failed. None at once where fork is missing or fails, or where no core is free (on a
    busy machine the child's copy-on-write costs more than the second core saves: 588 ms against
    681 for the owner scan at a load of 3.3 on 2 cores): the caller then does the work itself."""
    fork = getattr(os, "fork", None)
    if fork is None or not _a_core_is_free():
        return None
    read_end, write_end = os.pipe()
    try:
        child = fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        return None
    if child == 0:  # pragma: no cover (the child ends by os._exit)
        status = 1
        try:
            os.close(read_end)
            quiet = os.open(os.devnull, os.O_RDWR)
            for stream in (0, 1, 2):  # no copy of the parent's output kept: its reader sees the end with the parent
                os.dup2(quiet, stream)
            data = work()
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(data)
            status = 0
        finally:
            os._exit(status)  # no atexit handlers, no buffers of the parent's flushed twice, no traceback
    os.close(write_end)

    def result() -> bytes | None:
        with os.fdopen(read_end, "rb") as pipe:
            data = pipe.read()
        _, status = os.waitpid(child, 0)
        return data if os.waitstatus_to_exitcode(status) == 0 else None

    return result


def _a_core_is_free() -> bool:
    """Another core is idle now: fewer tasks are runnable than this process may use cores, itself
    counted (Linux: the instant's count in /proc/loadavg; elsewhere the last minute's average,
    which lags: a machine that was busy a few seconds ago reads as busy for a minute)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        with open("/proc/loadavg") as loadavg:
            return int(loadavg.read().split()[3].split("/")[0]) < cores
    except (OSError, ValueError, IndexError):
        try:
            return os.getloadavg()[0] < cores - 1
        except OSError:
            return False
