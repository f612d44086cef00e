"""One poll: sockets from a source, their owner pids, process details, and the changes.

The poller is synchronous and knows nothing of threads or Textual; the dashboard runs it on a
worker thread, `conntui list` calls it once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from operator import attrgetter, countOf
from typing import Protocol

from conntui.changes import Changes, diff
from conntui.collector import collector_paused
from conntui.model import KINDS, Owner, OwnerEntries, ProcessInfo, Snapshot, Socket, count_hidden_owners, listing_order
from conntui.sources import NO_OWNERS, SocketSource, open_source
from conntui.sources.netlink import NetlinkSource
from conntui.sources.owners import OwnerScanner, PendingScan, scan_in_child
from conntui.sources.processes import ProcessDirectory

# Where a Socket's owner (pids, process, user: `model.Owner`) sits among its fields.
_OWNER_AT = Socket._fields.index("pids")
_OWNER_END = _OWNER_AT + 3
_INODE = attrgetter("inode")


class Polling(Protocol):
    """What the dashboard needs from a poller (tests replay fixed snapshots through it)."""

    def poll(self) -> tuple[Snapshot, Changes]: ...

    def close(self) -> None: ...


class Poller:
    # The dashboard's engine sets it: sockets that the owners known from the last scans leave unplaced
    # (a process closed and opened as many fds since) go out without them rather than wait for another
    # scan; the next poll looks for them in the same dump (`owners_pending`), as owners, not as changes.
    owners_later = False

    def __init__(
        self,
        source: SocketSource | None = None,
        kind: str = "inet",
        timer: Callable[[], float] = time.perf_counter,
        owners: OwnerScanner | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}")
        self.source = source if source is not None else open_source()
        self.kind, self.kinds = kind, KINDS[kind]
        self.processes = ProcessDirectory()
        self.owners = owners if owners is not None else OwnerScanner()
        self.timer = timer
        self._previous: dict[object, Socket] = {}
        self._live: set[int] = set()  # the last poll's socket inodes
        self._last_rows: tuple[Socket, ...] | None = None
        self._unowned: list[Socket] | None = None  # the first rows, shown before their owners were looked for
        # A dump's rows that went out before the owners of some (`owners_later`) were looked
        # for: (its sockets, their processes, the inodes left unplaced).
        self._missing: tuple[list[Socket], dict[int, ProcessInfo], set[int]] | None = None
        self._unplaced_before: set[int] = set()  # sockets no scan placed at the last poll
        # The owner table kept from poll to poll: (the owner pids, their processes, inode -> owner).
        self._last_table: tuple[list[int], dict[int, ProcessInfo], dict[int, Owner]] = ([], {}, {})

    @property
    def owners_pending(self) -> bool:
        """The last poll's rows went out without (some of) their owners (`poll_first_rows`, or a poll
        with `owners_later`): the next poll fills them in."""
        return self._unowned is not None or self._missing is not None

    def close(self) -> None:
        self.source.close()

    def poll_first_rows(self) -> tuple[Snapshot, Changes]:
        """The first poll, for a first screen as fast as the dump: the sockets as the source lists them,
        each with its user; with an owner scan to do, the rows come before their owners, which the
        next `poll` fills in from this same dump (`owners_pending` says so), as owners, not as changes.
        Later, or with a source that comes with owners, a plain `poll`."""
        if self.source.includes_owners or self._last_rows is not None:
            return self.poll()
        started = self.timer()
        self._unowned = self.source.list_sockets(self.kinds, NO_OWNERS, self.processes.user_name)
        rows = tuple(self._unowned)
        return self._snapshot(rows, {}, started, unchanged=False), Changes(opened=rows)  # the first: all new

    def poll(self) -> tuple[Snapshot, Changes]:
        with collector_paused():  # a row per socket, and no cycle among them
            return self._poll()

    def _poll(self) -> tuple[Snapshot, Changes]:
        started = self.timer()
        unowned, self._unowned = self._unowned, None
        missing, self._missing = self._missing, None
        if unowned is not None:  # the first rows went out alone: their owners, from a full scan
            rows, processes = self._with_owners(unowned, self.owners.scan(full=True))
            self.owners.unownable = {sock.inode for sock in rows if sock.inode and not sock.pids}
        elif missing is not None:  # the last rows went out before some of their owners were looked for
            sockets, processes = self._look_for_missing(*missing)
            rows = tuple(sockets)
        elif self.source.includes_owners:
            sockets = self.source.list_sockets(self.kinds)
            processes = self.processes.describe(sorted({pid for sock in sockets for pid in sock.pids}))
            rows = tuple(self._with_owner(sock, sock.pids, processes) for sock in sockets)
        else:
            sockets, processes = self._poll_with_owner_scan()
            rows = tuple(sockets)
        unchanged = self._last_rows is not None and rows == self._last_rows  # one C-level comparison: the usual
        if unchanged and self._last_rows is not None:  # case when idle
            # The last poll's rows stand for this one's: the new ones are freed here, while the collector
            # is paused, instead of joining the objects every later collection walks (20,000 a second).
            rows = self._last_rows
            changes = Changes()
        else:
            current = {sock.key: sock for sock in rows}
            arriving = unowned is not None or missing is not None  # owners arriving: no events
            changes = Changes(owners_found=rows) if arriving else diff(self._previous, current)
            self._previous = current
            self._live = {sock.inode for sock in rows if sock.inode}
        self._last_rows = rows
        return self._snapshot(rows, processes, started, unchanged), changes

    def one_shot(self, pending: PendingScan | None = None) -> OneShotPoll:
        """One poll for a one-shot command (`list`), in two steps (`OneShotPoll`): no change
        detection, no memory kept for a next poll, the owner scan (a full one) in a forked child
        process while this one dumps the sockets and sorts them in `listing_order`, and process
        details only for the owners of the sockets dumped. `pending`: that scan, started earlier by
        the caller (`scan_in_child(self.owners)`), before its own imports."""
        started = self.timer()
        if self.source.includes_owners:
            if pending is not None:
                pending.cancel()  # its owners are not needed
            snapshot, _ = self.poll()
            return OneShotPoll(self, sorted(snapshot.sockets, key=listing_order), None, started, snapshot.processes)
        netlink = self.source if isinstance(self.source, NetlinkSource) else None  # its child can dump
        if pending is None:
            pending = scan_in_child(self.owners, self.kind if netlink else None)
        try:
            if netlink is not None:  # parsed as the child dumps them, if it does
                sockets = netlink.list_sockets(self.kinds, NO_OWNERS, self.processes.user_name, pending.replies)
            else:
                sockets = self.source.list_sockets(self.kinds, NO_OWNERS, self.processes.user_name)
            sockets.sort(key=listing_order)
        except BaseException:  # a failed dump, ctrl+c: the scan is not waited for
            pending.cancel()
            raise
        return OneShotPoll(self, sockets, pending, started)

    def _with_owners(
        self, sockets: list[Socket], owner_pids: dict[int, tuple[int, ...]]
    ) -> tuple[tuple[Socket, ...], dict[int, ProcessInfo]]:
        """Sockets listed without owners, with them (pids, process name, user) from `owner_pids`;
        process details only for the owners of these sockets. A socket without one keeps its row."""
        found = list(map(owner_pids.get, map(_INODE, sockets)))
        entries, processes = self._owner_entries(found)
        return _merged(sockets, found, entries), processes

    def _owner_entries(self, found: list[tuple[int, ...] | None]) -> tuple[OwnerEntries, dict[int, ProcessInfo]]:
        """Each distinct set of owner pids among `found` (None: no owner) -> its owner fields, and
        the processes they name, each described once."""
        pid_sets = {pids for pids in set(found) if pids is not None}
        processes = self.processes.describe(sorted({pid for pids in pid_sets for pid in pids}))
        entries: OwnerEntries = {pids: self._owner_entry(pids, processes) for pids in pid_sets}
        return entries, processes

    def _snapshot(
        self, rows: tuple[Socket, ...], processes: dict[int, ProcessInfo], started: float, unchanged: bool
    ) -> Snapshot:
        unreadable = len(self.owners.unreadable) if not self.source.includes_owners else 0
        return Snapshot(
            rows,
            processes,
            taken_at=time.time(),
            duration_ms=(self.timer() - started) * 1000,
            backend=self.source.name,
            hidden_owners=count_hidden_owners(rows) if unreadable else 0,
            unreadable_processes=unreadable,
            unchanged=unchanged,
        )

    def _poll_with_owner_scan(self) -> tuple[list[Socket], dict[int, ProcessInfo]]:
        """Owners first (from the scanner's memory), so each row is built once, with its owner.

        A socket left without an owner is looked for again (`_look_for_missing`): at once, or
        with `owners_later` at the next poll, in this same dump. What a full scan cannot place
        (another user's process) is remembered and not searched again.
        """
        owners_later = self.owners_later
        owner_pids = self.owners.scan(self._live)
        table, processes = self._table_for(owner_pids)
        sockets = self.source.list_sockets(self.kinds, table, self.processes.user_name)
        if self.owners.last_full:  # every link was just read: what is unplaced has no visible owner
            self.owners.unownable = _unplaced(sockets)
            self._unplaced_before = set()
            return sockets, processes
        missing = _unplaced(sockets) - self.owners.unownable
        if missing and owners_later:
            self._missing = (sockets, processes, missing)
            return sockets, processes
        return self._look_for_missing(sockets, processes, missing)

    def _look_for_missing(
        self, sockets: list[Socket], processes: dict[int, ProcessInfo], missing: set[int]
    ) -> tuple[list[Socket], dict[int, ProcessInfo]]:
        """Owners for the sockets of a dump that the scan from memory left unplaced: a scan that
        trusts only links to sockets still alive and reads again the links that were not sockets;
        for one still unplaced at the last poll, a full scan (a socket that lived less than a poll,
        as a busy machine has many, costs no full scan)."""
        before, self._unplaced_before = self._unplaced_before, set()
        for full in (False, True):
            if full:
                self._unplaced_before = set(missing)
                missing &= before  # unplaced at the last poll too: not a socket just passing through
            if not missing:
                break
            live = {sock.inode for sock in sockets if sock.inode}
            owner_pids = self.owners.scan(live, full=full, recheck=not full)
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
                self.owners.unownable = _unplaced(sockets)
        return sockets, processes

    def _table_for(self, owner_pids: dict[int, tuple[int, ...]]) -> tuple[dict[int, Owner], dict[int, ProcessInfo]]:
        """The owner table of a scan's owners, and their processes' details, kept from poll to poll:
        only the sockets whose owners the scan changed are looked at again (an idle machine: none),
        unless a process's details changed."""
        changed, (pids, processes, table) = self.owners.take_changed(), self._last_table
        if changed or not table:
            pids = sorted({pid for held in owner_pids.values() for pid in held})
        described = self.processes.describe(pids)
        if described != processes or not table or len(changed) > len(table) // 2:
            table = self._owner_table(owner_pids, described)
        else:
            entries: dict[tuple[int, ...], Owner] = {}
            for inode in changed:
                held = owner_pids.get(inode)
                if held is None:
                    table.pop(inode, None)
                else:
                    table[inode] = entries.get(held) or entries.setdefault(held, self._owner_entry(held, described))
        self._last_table = (pids, described, table)
        return table, described

    @staticmethod
    def _owner_table(owner_pids: dict[int, tuple[int, ...]], processes: dict[int, ProcessInfo]) -> dict[int, Owner]:
        """inode -> (pids, process name, user), one shared entry per distinct set of pids."""
        entries: dict[tuple[int, ...], Owner] = {}
        table: dict[int, Owner] = {}
        for inode, pids in owner_pids.items():
            entry = entries.get(pids)
            if entry is None:
                entry = entries[pids] = Poller._owner_entry(pids, processes)
            table[inode] = entry
        return table

    @staticmethod
    def _owner_entry(pids: tuple[int, ...], processes: dict[int, ProcessInfo]) -> Owner:
        """The owner fields of a socket these pids hold: the first one's name and user."""
        first = processes.get(pids[0])
        return (pids, first.name, first.user) if first else (pids, None, None)

    def _with_owner(self, sock: Socket, pids: tuple[int, ...], processes: dict[int, ProcessInfo]) -> Socket:
        """The socket with its owner pids, its first owner's name and user (or the socket's user)."""
        owner = processes.get(pids[0]) if pids else None
        if owner is not None:
            return sock._replace(pids=pids, process=owner.name, user=owner.user)
        user = self.processes.user_name(sock.uid) if sock.uid is not None else None
        return sock._replace(pids=pids, user=user)


class OneShotPoll:
    """`Poller.one_shot`'s poll. `sockets` come at once: dumped, in `listing_order`, without their
    owners, while the owner scan (in a forked child) still runs, so the caller can do its own work
    meanwhile (`list --json` encodes what of each row does not depend on its owner). `owner_pids`
    and `snapshot` then wait for the scan."""

    def __init__(
        self,
        poller: Poller,
        sockets: list[Socket],
        pending: PendingScan | None,
        started: float,
        processes: dict[int, ProcessInfo] | None = None,
    ) -> None:
        self.sockets = sockets
        self._poller, self._pending, self._started = poller, pending, started
        self._processes = processes or {}
        self._inodes = list(map(_INODE, sockets))  # now, while the scan runs: less to do once it ends
        self._entries: OwnerEntries = {}
        self._found: list[tuple[int, ...] | None] | None = None

    def owner_pids(self) -> tuple[list[tuple[int, ...] | None], OwnerEntries]:
        """The owner pids the scan found for each socket, in `sockets`' order (None: none found, or
        the row came with its owner), and each set's owner fields (pids, process name, user)."""
        if self._found is None:
            if self._pending is None:  # the rows came with their owners
                self._found = [None] * len(self.sockets)
            else:
                self._found = list(map(self._pending.owners().get, self._inodes))
                self._entries, self._processes = self._poller._owner_entries(self._found)
        return self._found, self._entries

    def hidden_owners(self) -> tuple[int, int]:
        """(sockets a process holds whose owner could not be seen, processes whose fds could not be
        read), as a `Snapshot` of these rows counts them; counted in C."""
        found, _entries = self.owner_pids()
        unreadable = len(self._poller.owners.unreadable) if self._pending is not None else 0
        if not unreadable:
            return 0, 0
        return countOf(found, None) - countOf(self._inodes, 0), unreadable

    def snapshot(self) -> Snapshot:
        """The rows with their owners."""
        rows = _merged(self.sockets, *self.owner_pids())
        return self._poller._snapshot(rows, self._processes, self._started, unchanged=False)


def _merged(sockets: list[Socket], found: list[tuple[int, ...] | None], entries: OwnerEntries) -> tuple[Socket, ...]:
    """Each socket with the owner entry of the pids found for it; one without (None) keeps its row."""
    new = tuple.__new__
    return tuple(
        sock if pids is None else new(Socket, sock[:_OWNER_AT] + entries[pids] + sock[_OWNER_END:])
        for sock, pids in zip(sockets, found, strict=True)
    )


def _unplaced(sockets: list[Socket]) -> set[int]:
    """Sockets a process holds (they have an inode) that no owner was found for."""
    return {sock.inode for sock in sockets if sock.inode and not sock.pids}
