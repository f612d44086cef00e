"""Work done in a forked child process, on the other core, its bytes read back through a pipe.

For the one-shot `list`'s dump and owner scan, single-threaded (never from the dashboard: a fork
copies only the forking thread, and any lock another thread held stays held in the child).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from typing import BinaryIO


class Forked:
    """A child at work: `read` takes what it has written so far, `result()` waits for the rest of its
    bytes (None if it failed), `cancel()` ends it."""

    def __init__(self, pid: int, read_end: int) -> None:
        self.pid = pid
        self._pipe = os.fdopen(read_end, "rb")
        self._reaped = False

    def read(self, size: int) -> bytes:
        """The child's next `size` bytes, as soon as it has written them (fewer: it ended)."""
        return self._pipe.read(size)

    def result(self) -> bytes | None:
        with self._pipe:
            data = self._pipe.read()
        status = self._reap()
        return data if os.waitstatus_to_exitcode(status) == 0 else None

    def cancel(self) -> None:
        """End the child if it still runs (its work is not wanted: the parent is stopping) and reap
        it; nothing once it has been reaped (its pid may be another process's by then)."""
        if self._reaped:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self._pipe.close()
        self._reap()

    def _reap(self) -> int:
        _, status = os.waitpid(self.pid, 0)
        self._reaped = True
        return status


def run_forked(work: Callable[[BinaryIO], object]) -> Forked | None:
    """Start `work` in a forked child, writing to the pipe it is given (its writes are read as they
    are flushed); None where fork is missing or fails, or where the machine is already
    oversubscribed (`worth_forking`): the caller then does the work itself."""
    fork = getattr(os, "fork", None)
    if fork is None or not worth_forking():
        return None
    try:
        read_end, write_end = os.pipe()
    except OSError:  # out of fds: no child to be had
        return None
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
            with os.fdopen(write_end, "wb") as pipe:
                work(pipe)
            status = 0
        finally:
            os._exit(status)  # no atexit handlers, no buffers of the parent's flushed twice, no traceback
    os.close(write_end)
    return Forked(child, read_end)


def worth_forking() -> bool:
    """At most one task more is runnable than this process may use cores, itself counted (Linux:
    the instant's count in /proc/loadavg; elsewhere the last minute's average). With 10,000
    connections and one or two other tasks running on 2 cores, `list` forked took 0.86 of `ss
    -tanp`'s time and 1.06-1.10 not forked; beyond that the child mostly waits for a core."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        with open("/proc/loadavg") as loadavg:
            return int(loadavg.read().split()[3].split("/")[0]) <= cores + 1
    except (OSError, ValueError, IndexError):
        try:
            return os.getloadavg()[0] <= cores
        except OSError:
            return False
