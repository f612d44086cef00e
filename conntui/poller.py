"""One poll: sockets from a source, their owner pids, process details, and the changes.

The poller is synchronous and knows nothing of threads or Textual; the dashboard runs it on a
worker thread, `conntui list` calls it once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from conntui.changes import Changes, diff
from conntui.model import KINDS, ProcessInfo, Snapshot, Socket
from conntui.sources import SocketSource, open_source
from conntui.sources.owners import owners_by_inode
from conntui.sources.processes import ProcessDirectory


class Polling(Protocol):
    """What the dashboard needs from a poller (tests replay fixed snapshots through it)."""

    def poll(self) -> tuple[Snapshot, Changes]: ...

    def close(self) -> None: ...


class Poller:
    def __init__(
        self, source: SocketSource | None = None, kind: str = "inet", timer: Callable[[], float] = time.perf_counter
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}")
        self.source = source if source is not None else open_source()
        self.kinds = KINDS[kind]
        self.processes = ProcessDirectory()
        self.timer = timer
        self._previous: dict[object, Socket] = {}

    def close(self) -> None:
        self.source.close()

    def poll(self) -> tuple[Snapshot, Changes]:
        started = self.timer()
        sockets = self.source.list_sockets(self.kinds)
        if self.source.includes_owners:
            holders = [sock.pids for sock in sockets]
        else:
            owners = owners_by_inode()
            holders = [owners.get(sock.inode, ()) for sock in sockets]
        processes = self.processes.describe(sorted({pid for pids in holders for pid in pids}))
        sockets = self._resolve(sockets, holders, processes)
        current = {sock.key: sock for sock in sockets}
        changes = diff(self._previous, current)
        self._previous = current
        snapshot = Snapshot(
            tuple(sockets),
            processes,
            taken_at=time.time(),
            duration_ms=(self.timer() - started) * 1000,
            backend=self.source.name,
        )
        return snapshot, changes

    def _resolve(
        self, sockets: list[Socket], holders: list[tuple[int, ...]], processes: dict[int, ProcessInfo]
    ) -> list[Socket]:
        """Each socket with its owner pids, its first owner's name, and a user name."""
        user_name = self.processes.user_name
        resolved: list[Socket] = []
        for sock, pids in zip(sockets, holders, strict=False):
            owner = processes.get(pids[0]) if pids else None
            if owner is not None:
                sock = sock._replace(pids=pids, process=owner.name, user=owner.user)
            elif sock.uid is not None:
                sock = sock._replace(pids=pids, user=user_name(sock.uid))
            elif pids != sock.pids:
                sock = sock._replace(pids=pids)
            resolved.append(sock)
        return resolved
