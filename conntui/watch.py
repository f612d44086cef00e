"""`conntui watch`: the polls' changes and the kernel's destroy events as one stream of events.

A poll every interval gives `opened`, `state` and `owners` events (the sockets alive at the first
poll are the baseline, not announced). Every socket's end comes from the kernel's destroy events
(`conntui.sources.destroy_events`) as it happens, so a connection that lived less than a poll is
still a `closed` event, `seen_in_poll` false. A destroyed socket is matched to the poll that saw
it by its cookie (the netlink source's key), which gives its owner and first-seen time.

Where destroy events are unavailable (another backend, another OS), the polls' closed sockets are
the `closed` events. Knows nothing of Textual or of the terminal: `run` writes through a callback.
"""

from __future__ import annotations

import select
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from conntui.filters import Filter
from conntui.model import FourTuple, Socket
from conntui.output import FIELDS
from conntui.poller import Poller
from conntui.sources.destroy_events import DestroyEventsLost, DestroyListener
from conntui.text import printable

EVENT_FIELDS = tuple(field for field in FIELDS if field.name != "tuple_count")  # a stream has no snapshot to count in
_NO_COUNTS: Counter[FourTuple] = Counter()
_DESTROY_EVENT_WAIT = 0.5  # seconds a socket gone from a poll waits for its destroy event


@dataclass(frozen=True, slots=True)
class Event:
    """One line of `conntui watch`."""

    at: float  # time.time()
    kind: str  # opened, closed, state, owners
    sock: Socket
    previous: Socket | None = None  # state and owners events: the socket before
    lifetime_ms: float | None = None  # closed: from the poll that first saw it opened, when one did
    seen_in_poll: bool = True

    def record(self) -> dict[str, object]:
        """The NDJSON object: `list --json`'s fields and their meanings, plus the event's own."""
        record: dict[str, object] = {"ts": _iso(self.at), "event": self.kind}
        for field in EVENT_FIELDS:
            value = field.value
            record[field.name] = getattr(self.sock, field.name) if value is None else value(self.sock, _NO_COUNTS)
        if self.kind == "state":
            record["previous_state"] = self.previous.state if self.previous else None
        if self.kind == "closed":
            record["lifetime_ms"] = None if self.lifetime_ms is None else round(self.lifetime_ms, 3)
            record["seen_in_poll"] = self.seen_in_poll
        return record

    def line(self) -> str:
        """The human line: time, event, proto, ends, state, then what the event adds."""
        sock = self.sock
        stamp = datetime.fromtimestamp(self.at, UTC).strftime("%H:%M:%S.%f")[:-3]
        state = f"{self.previous.state}→{sock.state}" if self.kind == "state" and self.previous else sock.state
        details = []
        if sock.process or sock.pids:
            pids = ",".join(str(pid) for pid in sock.pids)
            details.append(f"{printable(sock.process or '?')}[{pids}]")
        if sock.user:
            details.append(printable(sock.user))
        if self.kind == "owners" and self.previous is not None:
            details.append(f"was [{','.join(str(pid) for pid in self.previous.pids)}]")
        if self.kind == "closed":
            if not self.seen_in_poll:
                details.append("between polls")
            elif self.lifetime_ms is not None:
                details.append(f"lived {self.lifetime_ms / 1000:.3f}s")
            if sock.bytes_sent is not None:
                details.append(f"sent {sock.bytes_sent} received {sock.bytes_received}")
        return (
            f"{stamp}  {self.kind:<6}  {sock.proto}{sock.family}  {sock.local:<28} {sock.remote:<28} "
            f"{state:<12} {' '.join(details)}"
        ).rstrip()


def _is_remnant(sock: Socket) -> bool:
    """A TIME_WAIT minisocket, or the FIN_WAIT2 one an orphaned socket becomes (no file, no tcp_info)."""
    return sock.state == "TIME_WAIT" or (sock.state == "FIN_WAIT2" and not sock.inode and sock.retrans is None)


def _lifetime_ms(opened_at: float | None, now: float) -> float | None:
    return None if opened_at is None else (now - opened_at) * 1000


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Watcher:
    """Merges the polls and the destroy events; `step` waits at most until the next poll is due."""

    def __init__(
        self,
        poller: Poller,
        listener: DestroyListener | None,
        selection: Filter,
        emit: Callable[[Event], None],
        interval: float = 1.0,
        warn: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.poller = poller
        self.listener = listener  # only with the netlink source: its keys are the cookies the events carry
        self.selection = selection
        self.emit = emit
        self.interval = interval
        self.warn = warn
        self.lost = False  # the kernel dropped destroy events once: some ends came from polls only
        self._seen: dict[object, tuple[Socket, float | None]] = {}  # key -> (last polled, opened at or None)
        self._announced: set[object] = set()  # ended by the kernel, maybe still polled (TIME_WAIT)
        # Gone from a poll, its destroy event not read yet (the kernel sends it from a work queue,
        # after unhashing the socket): key -> (socket, opened at, when to give up waiting).
        self._pending: dict[object, tuple[Socket, float | None, float]] = {}
        self._started = False
        self._next_poll = 0.0

    def close(self) -> None:
        self.poller.close()
        if self.listener is not None:
            self.listener.close()

    def step(self) -> None:
        """A poll if one is due, then destroy events as they come until the next one is."""
        if time.monotonic() >= self._next_poll:
            self._next_poll = time.monotonic() + self.interval
            self._poll()
        if self._pending:
            self._give_up_waiting()
        due = min([self._next_poll, *(deadline for _, _, deadline in self._pending.values())])
        wait = max(0.0, due - time.monotonic())
        if self.listener is None:
            time.sleep(wait)
        elif select.select([self.listener], [], [], wait)[0]:
            self._drain()

    def _drain(self) -> None:
        """Every destroy event waiting, without blocking."""
        assert self.listener is not None
        while True:
            try:
                ended = self.listener.receive(timeout=0)
            except DestroyEventsLost as error:
                if not self.lost:
                    self.warn(f"{error}; the sockets a poll saw get their closed line from the poll")
                self.lost = True
                continue
            if not ended:
                return
            for sock in ended:
                self._destroyed(sock)

    def _destroyed(self, sock: Socket) -> None:
        now = time.time()
        seen = self._seen.pop(sock.key, None)
        if seen is not None:
            self._announced.add(sock.key)  # a poll still to come will miss it: not news then
        else:
            pending = self._pending.pop(sock.key, None)
            if pending is None:
                self._announce(Event(now, "closed", sock, seen_in_poll=False))
                return
            seen = pending[:2]
        polled, opened_at = seen
        final = sock._replace(pids=polled.pids, process=polled.process, user=polled.user)
        self._announce(Event(now, "closed", final, lifetime_ms=_lifetime_ms(opened_at, now)))

    def _poll(self) -> None:
        _, changes = self.poller.poll()
        now = time.time()
        if self.listener is not None:
            self._drain()  # the sockets this poll missed were destroyed before it: their events wait
        first = not self._started
        self._started = True
        for sock in changes.opened:
            if self.listener is not None and _is_remnant(sock):
                # The remnant of a connection whose end the kernel announced (or that ended before
                # we started): a minisocket with a cookie of its own, not news. Nor is its expiry.
                self._announced.add(sock.key)
                continue
            self._seen[sock.key] = (sock, None if first else now)
            if not first:
                self._announce(Event(now, "opened", sock))
        for before, after in changes.state_changed:
            self._update(Event(now, "state", after, previous=before))
        for before, after in changes.owners_changed:
            self._update(Event(now, "owners", after, previous=before))
        for sock in changes.closed:
            if sock.key in self._announced:
                self._announced.discard(sock.key)
                continue
            polled, opened_at = self._seen.pop(sock.key, (sock, None))  # polled: with its last known owner
            if self.listener is not None:  # its destroy event, with the final figures, is on its way
                self._pending[sock.key] = (polled, opened_at, time.monotonic() + _DESTROY_EVENT_WAIT)
            else:
                self._closed_by_poll(polled, opened_at, now)

    def _give_up_waiting(self) -> None:
        """Sockets gone from a poll whose destroy event never came (lost): closed, as the poll saw them."""
        now = time.monotonic()
        for key, (sock, opened_at, deadline) in list(self._pending.items()):
            if deadline <= now:
                del self._pending[key]
                self._closed_by_poll(sock, opened_at, time.time())

    def _closed_by_poll(self, sock: Socket, opened_at: float | None, now: float) -> None:
        self._announce(Event(now, "closed", sock, lifetime_ms=_lifetime_ms(opened_at, now)))

    def _update(self, event: Event) -> None:
        key = event.sock.key
        if key in self._announced:  # the kernel announced its end: a TIME_WAIT remnant, not news
            return
        seen = self._seen.get(key)
        polled = event.sock
        if seen is not None and not polled.pids:  # closed by its process, not yet by the kernel
            polled = polled._replace(pids=seen[0].pids, process=seen[0].process, user=seen[0].user)
        self._seen[key] = (polled, seen[1] if seen else None)
        self._announce(event)

    def _announce(self, event: Event) -> None:
        if self.selection.matches(event.sock):
            self.emit(event)
