"""The dashboard's history of closed connections, without Textual: the records and the counts.

`ConnectionHistory` lives on the dashboard's engine thread, inside the `ConnectionView`: it is
handed each poll's changes and each batch of sockets the kernel destroyed, matches them
(`conntui.socket_events.EventTracker`: owner, first-seen time, lifetime from the poll that saw a
socket) and keeps the closed connections, newest first, at most `bound` of them. A socket no
poll saw is a *between-polls* connection: kept and counted like the others. The table's filter
and "mine" four-tuples apply to it too. It also counts, from just before the first poll, the TCP
connections seen (by a poll or between polls) and the kernel's own counters (`read_counts`,
`conntui.sources.kernel_counts`), so the user knows how much was not seen. After each change
`state()` hands out an immutable `HistoryState`, the only thing the UI reads.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from conntui.changes import Changes
from conntui.filters import MATCH_ALL, Filter
from conntui.model import FourTuple, Socket
from conntui.socket_events import Event, EventTracker, is_remnant
from conntui.sources.kernel_counts import KernelCounts

DEFAULT_BOUND = 10_000
MAX_BOUND = 1_000_000  # closed connections kept at most: about 500 MB of records
MINE_KEPT = 1_000  # the user's own test connections kept beyond the bound (others' closes push them out)


def is_connection(sock: Socket) -> bool:
    """A TCP connection end (not a listener, a request socket or a TIME_WAIT remnant): what the
    kernel's ActiveOpens and PassiveOpens count, one per end."""
    return sock.proto == "tcp" and bool(sock.remote_port) and sock.state != "SYN_RECV" and not is_remnant(sock)


@dataclass(frozen=True, slots=True)
class HistoryState:
    """The history as the UI shows it after one change; never changes once handed out."""

    visible: tuple[Event, ...] = ()  # the kept closed connections that match the filter, newest first
    kept: int = 0
    closed: int = 0  # closed since the first poll, kept or not
    between_polls: int = 0  # of them, never seen by a poll
    seen: int = 0  # TCP connection ends seen since the first poll (opened in a poll, or between polls)
    kernel: KernelCounts | None = None  # how far the kernel's counters moved since the first poll
    bound: int = DEFAULT_BOUND
    mine: frozenset[FourTuple] = frozenset()

    def summary(self) -> str:
        """The full sentence the history pane's header shows (the status line has the short form:
        `seen N of M TCP opens, B between polls`, `fail`, `rst`, `udp in/out`)."""
        kept = (
            f"{self.kept:,} closed kept (at most {self.bound:,}, and your own tests beyond) "
            f"of {self.closed:,} since start, "
            f"{self.between_polls:,} between polls (no poll saw them)."
        )
        kernel = self.kernel
        if kernel is None:
            return f"{kept} TCP opens seen: {self.seen:,}."
        return (
            f"{kept} Kernel since start: {kernel.opens:,} TCP opens ({kernel.active_opens:,} active, "
            f"{kernel.passive_opens:,} passive), {self.seen:,} seen; {kernel.attempt_fails:,} failed, "
            f"{kernel.estab_resets:,} reset; UDP {kernel.udp_in:,} in, {kernel.udp_out:,} out."
        )


EMPTY_HISTORY = HistoryState()


class ConnectionHistory:
    def __init__(
        self,
        bound: int = DEFAULT_BOUND,
        *,
        destroy_events: bool = False,
        read_counts: Callable[[], KernelCounts | None] = lambda: None,
    ) -> None:
        self.bound = bound
        self.tracker = EventTracker(destroy_events)
        self.read_counts = read_counts
        self.records: deque[Event] = deque()  # oldest first, at most `bound`
        self._older_mine: deque[Event] = deque(maxlen=MINE_KEPT)  # the user's tests that left `records`
        self._matching: deque[Event] = deque()  # those the filter lets through, newest first
        self.filter: Filter = MATCH_ALL
        self.mine: frozenset[FourTuple] = frozenset()
        self.closed = self.between_polls = self.seen = 0
        self._kernel_start: KernelCounts | None = None
        self._counting_since: float | None = None  # time.time() the counts started
        self._baseline_at: float | None = None  # time.time() the first poll was taken
        self._kernel: KernelCounts | None = None
        self._state: HistoryState | None = EMPTY_HISTORY  # None: to be built again

    def start_counting(self, now: float) -> None:
        """Start the counts (the kernel's, and ours to compare): just before the first poll lists the
        sockets, so that what opens after it is either in the poll or counted; once."""
        if self._counting_since is None:
            self._counting_since, self._kernel_start = now, self.read_counts()

    def polled(self, changes: Changes, now: float) -> None:
        """Fold in a poll's changes; the counts start here if `start_counting` was not called."""
        self.start_counting(now)
        if self._baseline_at is None:
            self._baseline_at = now  # the first poll: the sockets alive then are its baseline
        for event in self.tracker.polled(changes, now):
            if event.kind == "opened" and is_connection(event.sock):
                self.seen += 1
                self._state = None  # the kernel's counters may have been read already (`expire`)
            elif event.kind == "closed":
                self._add(event)
        self._count_kernel()

    def destroyed(self, sockets: Iterable[Socket], now: float) -> None:
        """Fold in sockets the kernel destroyed (read at `now`)."""
        # Read before the first poll was in, a socket may have opened before the counts started (the
        # poll missed it, gone by then): not counted, so that what we claim to have seen stays within
        # the kernel's count.
        counted = self._baseline_at is not None and now >= self._baseline_at
        for sock in sockets:
            event = self.tracker.destroyed(sock, now)
            if event is None:  # already closed, its destroy event late
                continue
            if not event.seen_in_poll and counted:
                self.between_polls += 1
                self.seen += is_connection(sock)
            self._add(event)
        self._count_kernel()  # read with them: the kernel's count and ours side by side

    def expire(self) -> bool:
        """Close the sockets whose destroy event never came; read the kernel's counters again.
        True when anything changed."""
        overdue = self.tracker.overdue(time.time())
        for event in overdue:
            self._add(event)
        return self._count_kernel() or bool(overdue)

    def set_filter(self, new_filter: Filter) -> None:
        self.filter = new_filter
        self._select()

    def set_mine(self, mine: frozenset[FourTuple]) -> None:
        self.mine = mine
        if self.filter:  # `mine` may be one of its terms
            self._select()
        self._state = None

    def state(self) -> HistoryState:
        if self._state is None:
            matches, mine = self.filter.matches, self.mine
            older_mine = [record for record in reversed(self._older_mine) if matches(record.sock, mine)]
            kernel = self._kernel
            # A dump can miss a socket opened just before the counts started; the next poll then sees
            # it open: never claim more seen than the kernel counted since the start.
            seen = min(self.seen, kernel.opens) if kernel is not None else self.seen
            self._state = HistoryState(
                (*self._matching, *older_mine), len(self.records) + len(self._older_mine), self.closed,
                self.between_polls, seen, kernel, self.bound, self.mine,
            )  # fmt: skip
        return self._state

    def _add(self, event: Event) -> None:
        """Keep a closed connection (the oldest goes past the bound); the filter's list follows
        without a pass over all of them: both are in order of age."""
        self.records.append(event)
        if self.filter.matches(event.sock, self.mine):
            self._matching.appendleft(event)
        if len(self.records) > self.bound:
            oldest = self.records.popleft()
            if self._matching and self._matching[-1] is oldest:
                self._matching.pop()
            if oldest.sock.four_tuple in self.mine:  # a busy machine's closes do not push out the user's tests
                self._older_mine.append(oldest)
        self.closed += 1
        self._state = None

    def _select(self) -> None:
        matches, mine = self.filter.matches, self.mine
        self._matching = deque(record for record in reversed(self.records) if matches(record.sock, mine))
        self._state = None

    def _count_kernel(self) -> bool:
        """Read the kernel's counters; True when they moved."""
        start = self._kernel_start
        now = self.read_counts() if start is not None else None
        moved = now.since(start) if now is not None and start is not None else None
        if moved == self._kernel:
            return False
        self._kernel = moved
        self._state = None
        return True
