"""One poll: sockets from a source, their owner pids, process details, and the changes.

The poller is synchronous and knows nothing of threads or Textual; the dashboard runs it on a
worker thread, `conntui list` calls it once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from conntui.changes import Changes, diff
from conntui.model import KINDS, Owner, ProcessInfo, Snapshot, Socket, count_hidden_owners
from conntui.sources import SocketSource, open_source
from conntui.sources.owners import OwnerScanner
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
        self.owners = OwnerScanner()
        self.timer = timer
        self._previous: dict[object, Socket] = {}
        self._live: set[int] = set()  # the last poll's socket inodes
        self._last_rows: tuple[Socket, ...] | None = None

    def close(self) -> None:
        self.source.close()

    def poll(self) -> tuple[Snapshot, Changes]:
        started = self.timer()
        if self.source.includes_owners:
            sockets = self.source.list_sockets(self.kinds)
            processes = self.processes.describe(sorted({pid for sock in sockets for pid in sock.pids}))
            sockets = [self._with_owner(sock, sock.pids, processes) for sock in sockets]
        else:
            sockets, processes = self._poll_with_owner_scan()
        unreadable = len(self.owners.unreadable) if not self.source.includes_owners else 0
        hidden = count_hidden_owners(sockets) if unreadable else 0
        rows = tuple(sockets)
        unchanged = rows == self._last_rows  # one C-level comparison: the usual case when idle
        if unchanged:
            changes = Changes()
        else:
            current = {sock.key: sock for sock in rows}
            changes = diff(self._previous, current)
            self._previous = current
            self._live = {sock.inode for sock in rows if sock.inode}
        self._last_rows = rows
        snapshot = Snapshot(
            rows,
            processes,
            taken_at=time.time(),
            duration_ms=(self.timer() - started) * 1000,
            backend=self.source.name,
            hidden_owners=hidden,
            unreadable_processes=unreadable,
            unchanged=unchanged,
        )
        return snapshot, changes

    def _poll_with_owner_scan(self) -> tuple[list[Socket], dict[int, ProcessInfo]]:
        """Owners first (from the scanner's memory), so each row is built once, with its owner.

        A socket left without an owner is looked for again: by a scan that trusts only links
        to sockets still alive, then, if that fails too, by a full scan. What a full scan
        cannot place (another user's process, TIME_WAIT) is remembered and not searched again.
        """
        owner_pids = self.owners.scan(self._live)
        processes = self.processes.describe(sorted({pid for pids in owner_pids.values() for pid in pids}))
        sockets = self.source.list_sockets(
            self.kinds, self._owner_table(owner_pids, processes), self.processes.user_name
        )

        def unplaced() -> set[int]:
            return {sock.inode for sock in sockets if sock.inode and not sock.pids}

        if self.owners.last_full:  # every link was just read: what is unplaced has no visible owner
            self.owners.unownable = unplaced()
            return sockets, processes
        missing = unplaced() - self.owners.unownable
        for full in (False, True):
            if not missing:
                break
            owner_pids = self.owners.scan({sock.inode for sock in sockets if sock.inode}, full=full)
            found = {inode for inode in missing if inode in owner_pids}
            if found:
                more = sorted({pid for inode in found for pid in owner_pids[inode]})
                processes |= self.processes.describe(more, forget_others=False)
                sockets = [
                    self._with_owner(sock, owner_pids[sock.inode], processes) if sock.inode in found else sock
                    for sock in sockets
                ]
            missing -= found
            if full:
                self.owners.unownable = unplaced()
        return sockets, processes

    @staticmethod
    def _owner_table(owner_pids: dict[int, tuple[int, ...]], processes: dict[int, ProcessInfo]) -> dict[int, Owner]:
        """inode -> (pids, process name, user), one shared entry per distinct set of pids."""
        entries: dict[tuple[int, ...], Owner] = {}
        table: dict[int, Owner] = {}
        for inode, pids in owner_pids.items():
            entry = entries.get(pids)
            if entry is None:
                first = processes.get(pids[0])
                entry = entries[pids] = (pids, first.name, first.user) if first else (pids, None, None)
            table[inode] = entry
        return table

    def _with_owner(self, sock: Socket, pids: tuple[int, ...], processes: dict[int, ProcessInfo]) -> Socket:
        """The socket with its owner pids, its first owner's name and user (or the socket's user)."""
        owner = processes.get(pids[0]) if pids else None
        if owner is not None:
            return sock._replace(pids=pids, process=owner.name, user=owner.user)
        user = self.processes.user_name(sock.uid) if sock.uid is not None else None
        return sock._replace(pids=pids, user=user)
