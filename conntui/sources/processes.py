"""Process details (name, user, cmdline) for owner pids, cached by (pid, create time).

Keying the cache on the create time means a pid reused by a new process never shows the old
process's name. A process that vanishes between the socket dump and the lookup is simply
absent: its sockets become rows without a process.

Names are read here once, and bytes in them that are not UTF-8 become `\\xff`-style text here
(`conntui.text`), so every later string is valid text.
"""

from __future__ import annotations

from collections.abc import Iterable

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
