"""Process details (name, user, cmdline) for owner pids, cached by (pid, create time); and the
longer description the detail pane shows of one owner (`ProcessDetailsCache`).

Keying the cache on the create time means a pid reused by a new process never shows the old
process's name. A process that vanishes between the socket dump and the lookup is simply
absent: its sockets become rows without a process.

Names are read here once, and bytes in them that are not UTF-8 become `\\xff`-style text here
(`conntui.text`), so every later string is valid text.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

import psutil

from conntui.model import ProcessInfo
from conntui.text import escape_undecodable

try:
    import pwd
except ImportError:  # Windows: no uid -> name table
    pwd = None  # type: ignore[assignment]


class ProcessDirectory:
    def __init__(self) -> None:
        self._by_identity: dict[tuple[int, float], ProcessInfo] = {}
        self._user_names: dict[int, str | None] = {}

    def describe(self, pids: Iterable[int], *, forget_others: bool = True) -> dict[int, ProcessInfo]:
        """Details of each pid that still exists; vanished or hidden ones are left out.

        With `forget_others`, the cache keeps only these processes, so it does not grow forever.
        """
        found: dict[int, ProcessInfo] = {}
        for pid in pids:
            info = self._lookup(pid)
            if info is not None:
                found[pid] = info
        if forget_others:
            live = {(info.pid, info.create_time) for info in found.values()}
            self._by_identity = {key: info for key, info in self._by_identity.items() if key in live}
        return found

    def _lookup(self, pid: int) -> ProcessInfo | None:
        try:
            process = psutil.Process(pid)
            identity = (pid, process.create_time())
            cached = self._by_identity.get(identity)
            if cached is not None:
                return cached
            with process.oneshot():
                name = escape_undecodable(process.name())
                try:
                    user: str | None = escape_undecodable(process.username())
                except (psutil.AccessDenied, KeyError):
                    user = None
                try:
                    cmdline = tuple(map(escape_undecodable, process.cmdline()))
                except psutil.AccessDenied:
                    cmdline = ()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return None
        except psutil.AccessDenied:
            return ProcessInfo(pid, None, None)
        info = ProcessInfo(pid, name, user, cmdline, identity[1])
        self._by_identity[identity] = info
        return info

    def user_name(self, uid: int) -> str | None:
        """The login name of a uid (the socket's owner when no process is visible)."""
        if uid not in self._user_names:
            try:
                self._user_names[uid] = escape_undecodable(pwd.getpwuid(uid).pw_name) if pwd else str(uid)
            except KeyError:
                self._user_names[uid] = str(uid)
        return self._user_names[uid]


_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class ProcessDetails:
    """One owner process as netshow shows it. A None field could not be read (access denied),
    except `cpu_percent`, which is None also until a second reading gives an interval to measure."""

    pid: int
    exe: str | None
    cwd: str | None
    threads: int | None
    cpu_percent: float | None
    memory_rss: int | None
    started: float  # the create time, seconds since the epoch


class ProcessDetailsCache:
    """Details of owner processes, per (pid, create time): what does not change (the executable)
    is read once; the working directory, threads, CPU and memory at every call.

    Called from worker threads (the detail pane is described off the UI thread), so it locks.
    It keeps the last `size` processes asked about.
    """

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._lock = threading.Lock()
        # identity -> (the psutil handle, which keeps the last CPU reading between calls; the executable)
        self._known: OrderedDict[tuple[int, float], tuple[psutil.Process, str | None]] = OrderedDict()
        self._sampled: set[tuple[int, float]] = set()

    def details(self, pid: int, create_time: float) -> ProcessDetails | None:
        """The process `pid` if it is still the one created at `create_time`, else None (ended)."""
        identity = (pid, create_time)
        with self._lock:
            try:
                process, exe = self._known.get(identity) or self._first_look(identity)
                with process.oneshot():
                    cwd = _readable(process.cwd)
                    threads = _readable(process.num_threads)
                    memory = _readable(process.memory_info)
                    cpu = _readable(lambda: process.cpu_percent(interval=None))
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                self._known.pop(identity, None)
                self._sampled.discard(identity)
                return None
            self._known.move_to_end(identity)
            first_reading = identity not in self._sampled
            self._sampled.add(identity)
            return ProcessDetails(
                pid,
                exe,
                cwd if cwd is None else escape_undecodable(cwd),
                threads,
                None if first_reading else cpu,
                memory.rss if memory is not None else None,
                create_time,
            )

    def _first_look(self, identity: tuple[int, float]) -> tuple[psutil.Process, str | None]:
        process = psutil.Process(identity[0])
        if process.create_time() != identity[1]:  # the pid is another process's now
            raise psutil.NoSuchProcess(identity[0])
        exe = _readable(process.exe)
        known = (process, escape_undecodable(exe) if exe is not None else None)
        self._known[identity] = known
        while len(self._known) > self.size:
            forgotten, _ = self._known.popitem(last=False)
            self._sampled.discard(forgotten)
        return known


def _readable(read: Callable[[], _T]) -> _T | None:
    """What `read` returns, or None when the process may not be read (another user's, no ptrace)."""
    try:
        return read()
    except psutil.AccessDenied:
        return None
