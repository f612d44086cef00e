"""`conntui watch`: the polls' changes and the kernel's destroy events as one stream of events.

A poll every interval, and the kernel's destroy events read as they come (`select` on the
listener between polls); `conntui.socket_events.EventTracker` matches them into `opened`, `state`,
`owners` and `closed` events, so a connection that lived less than a poll is still a `closed`
event. Where destroy events are unavailable (another backend, another OS), the polls' closed
sockets are the `closed` events. An event is written as a human line (`event_line`) or an NDJSON
object (`event_record`). Knows nothing of Textual or of the terminal: events go to a callback.
"""

from __future__ import annotations

import select
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from conntui.filters import Filter
from conntui.model import FourTuple
from conntui.output import FIELDS
from conntui.poller import Poller
from conntui.socket_events import Event, EventTracker
from conntui.sources.destroy_events import DestroyEventsLost, DestroyListener
from conntui.text import printable

EVENT_FIELDS = tuple(field for field in FIELDS if field.name != "tuple_count")  # a stream has no snapshot to count in
_NO_COUNTS: Counter[FourTuple] = Counter()


def event_record(event: Event) -> dict[str, object]:
    """An event's NDJSON object: `list --json`'s fields and their meanings, plus the event's own."""
    record: dict[str, object] = {"ts": _iso(event.at), "event": event.kind}
    for field in EVENT_FIELDS:
        value = field.value
        record[field.name] = getattr(event.sock, field.name) if value is None else value(event.sock, _NO_COUNTS)
    if event.kind == "state":
        record["previous_state"] = event.previous.state if event.previous else None
    if event.kind == "closed":
        record["lifetime_ms"] = None if event.lifetime_ms is None else round(event.lifetime_ms, 3)
        record["seen_in_poll"] = event.seen_in_poll
    return record


def event_line(event: Event) -> str:
    """An event's human line: time, event, proto, ends, state, then what the event adds."""
    sock = event.sock
    stamp = datetime.fromtimestamp(event.at, UTC).strftime("%H:%M:%S.%f")[:-3]
    state = f"{event.previous.state}→{sock.state}" if event.kind == "state" and event.previous else sock.state
    details = []
    if sock.process or sock.pids:
        pids = ",".join(str(pid) for pid in sock.pids)
        details.append(f"{printable(sock.process or '?')}[{pids}]")
    if sock.user:
        details.append(printable(sock.user))
    if event.kind == "owners" and event.previous is not None:
        details.append(f"was [{','.join(str(pid) for pid in event.previous.pids)}]")
    if event.kind == "closed":
        if not event.seen_in_poll:
            details.append("between polls")
        elif event.lifetime_ms is not None:
            details.append(f"lived {event.lifetime_ms / 1000:.3f}s")
        if sock.bytes_sent is not None:
            details.append(f"sent {sock.bytes_sent} received {sock.bytes_received}")
    return (
        f"{stamp}  {event.kind:<6}  {sock.proto}{sock.family}  {sock.local:<28} {sock.remote:<28} "
        f"{state:<12} {' '.join(details)}"
    ).rstrip()


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
        self.tracker = EventTracker(destroy_events=listener is not None)
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
        self._announce(self.tracker.overdue(time.time()))
        due = min(self._next_poll, self.tracker.next_deadline or self._next_poll)
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
            now = time.time()
            self._announce([event for sock in ended if (event := self.tracker.destroyed(sock, now)) is not None])

    def _poll(self) -> None:
        _, changes = self.poller.poll()
        now = time.time()
        if self.listener is not None:
            self._drain()  # the sockets this poll missed were destroyed before it: their events wait
        self._announce(self.tracker.polled(changes, now))

    def _announce(self, events: list[Event]) -> None:
        for event in events:
            if self.selection.matches(event.sock):
                self.emit(event)
