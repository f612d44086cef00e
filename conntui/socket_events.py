"""Socket events from the polls and the kernel's destroy events, matched: what `conntui watch` prints
and what the dashboard's history keeps. Pure: it is handed the polls' changes and the destroyed
sockets, with the time; it reads nothing itself.

A poll's changes give `opened`, `state` and `owners` events (the sockets alive at the first poll
are the baseline, not announced). Every socket's end comes from the kernel's destroy events
(`conntui.sources.destroy_events`), so a connection that lived less than a poll is still a
`closed` event, `seen_in_poll` false. A destroyed socket is matched to the poll that saw it by its
cookie (the netlink source's key), which gives its owner, first-seen time and lifetime.

Without destroy events (another backend, another OS, a refused subscription), the polls' closed
sockets are the `closed` events.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from conntui.changes import Changes
from conntui.model import Socket

DESTROY_EVENT_WAIT = 0.5  # seconds a socket gone from a poll waits for its destroy event
LATE_KEPT = 65_536  # sockets closed without their destroy event, remembered for when it comes late


@dataclass(frozen=True, slots=True)
class Event:
    """One socket event: a line of `conntui watch`; a closed one is a line of the dashboard's history."""

    at: float  # time.time()
    kind: str  # opened, closed, state, owners
    sock: Socket
    previous: Socket | None = None  # state and owners events: the socket before
    lifetime_ms: float | None = None  # closed: from the poll that first saw it opened, when one did
    seen_in_poll: bool = True
    first_seen: float | None = None  # closed: when a poll first saw it (time.time()), if one did


def is_remnant(sock: Socket) -> bool:
    """A TIME_WAIT minisocket, or the FIN_WAIT2 one an orphaned socket becomes (no file, no tcp_info)."""
    return sock.state == "TIME_WAIT" or (sock.state == "FIN_WAIT2" and not sock.inode and sock.retrans is None)


@dataclass(frozen=True, slots=True)
class _Seen:
    """A socket as the polls last saw it."""

    sock: Socket  # with its last known owner
    first_seen: float  # time.time() of the first poll that saw it
    seen_opening: bool  # False for the first poll's sockets: their lifetime is unknown

    def closed(self, final: Socket, at: float) -> Event:
        """Its closed event: the final socket (the kernel's, or the poll's) with the owner the polls saw,
        and the four-tuple they saw when the kernel's has lost it (a reset by SO_LINGER 0 disconnects
        the socket first: its destroy message has port 0 for the peer, and 0.0.0.0 for its own address)."""
        owned = final._replace(pids=self.sock.pids, process=self.sock.process, user=self.sock.user)
        if not final.remote_port and self.sock.remote_port:
            polled = self.sock
            owned = owned._replace(local_ip=polled.local_ip, local_port=polled.local_port,
                                   remote_ip=polled.remote_ip, remote_port=polled.remote_port)  # fmt: skip
        lifetime = (at - self.first_seen) * 1000 if self.seen_opening else None
        return Event(at, "closed", owned, lifetime_ms=lifetime, first_seen=self.first_seen)


class EventTracker:
    """Turns polls' changes and destroyed sockets into events, each socket's end announced once.

    `destroy_events`: whether destroyed sockets will be handed in (`destroyed`); if so a socket
    gone from a poll waits for its destroy event (with the final figures) up to
    `DESTROY_EVENT_WAIT` s, after which `overdue` closes it as the poll saw it.
    """

    def __init__(self, destroy_events: bool) -> None:
        self.destroy_events = destroy_events
        self._seen: dict[object, _Seen] = {}
        self._announced: set[object] = set()  # ended by the kernel, maybe still polled (TIME_WAIT)
        # Gone from a poll, its destroy event not read yet (the kernel sends it from a work queue,
        # after unhashing the socket): key -> (as last seen, when to give up waiting, time.monotonic()).
        self._pending: dict[object, tuple[_Seen, float]] = {}
        # Closed by `overdue`: a destroy event read after that (a busy engine, a burst) is not a second end.
        self._given_up: dict[object, None] = {}  # oldest first, at most LATE_KEPT
        self._started = False

    @property
    def next_deadline(self) -> float | None:
        """The time.monotonic() at which `overdue` has something to close, if any."""
        return min((deadline for _, deadline in self._pending.values()), default=None)

    def polled(self, changes: Changes, now: float) -> list[Event]:
        """A poll's events (the first poll is the baseline: none). With destroy events, hand in
        those already read before this: the sockets this poll missed were destroyed before it."""
        first = not self._started
        self._started = True
        events: list[Event] = []
        for sock in changes.opened:
            if self.destroy_events and is_remnant(sock):
                # The remnant of a connection whose end the kernel announced (or that ended before
                # we started): a minisocket with a cookie of its own, not news. Nor is its expiry.
                self._announced.add(sock.key)
                continue
            missed = self._pending.pop(sock.key, None)
            if missed is not None:  # a poll under churn can miss a live socket: not closed, not news
                self._seen[sock.key] = _Seen(sock, missed[0].first_seen, missed[0].seen_opening)
                continue
            self._seen[sock.key] = _Seen(sock, now, seen_opening=not first)
            if not first:
                events.append(Event(now, "opened", sock))
        for sock in changes.owners_found:  # the same sockets, their owners now known: no news
            seen = self._seen.get(sock.key)
            if seen is not None and seen.sock is not sock:
                self._seen[sock.key] = _Seen(sock, seen.first_seen, seen.seen_opening)
        for before, after in changes.state_changed:
            events += self._update(Event(now, "state", after, previous=before))
        for before, after in changes.owners_changed:
            events += self._update(Event(now, "owners", after, previous=before))
        for sock in changes.closed:
            if sock.key in self._announced:
                self._announced.discard(sock.key)
                continue
            seen = self._seen.pop(sock.key, None) or _Seen(sock, now, seen_opening=False)
            if self.destroy_events:  # its destroy event, with the final figures, is on its way
                self._pending[sock.key] = (seen, time.monotonic() + DESTROY_EVENT_WAIT)
            else:
                events.append(seen.closed(seen.sock, now))
        return events

    def destroyed(self, sock: Socket, now: float) -> Event | None:
        """The closed event of a socket the kernel says it destroyed; None when its end was already
        announced (its destroy event came after `overdue` gave up waiting for it)."""
        seen = self._seen.pop(sock.key, None)
        if seen is not None:
            self._announced.add(sock.key)  # a poll still to come will miss it: not news then
        else:
            pending = self._pending.pop(sock.key, None)
            if pending is None:
                if self._given_up.pop(sock.key, False) is None:
                    return None
                return Event(now, "closed", sock, seen_in_poll=False)
            seen = pending[0]
        return seen.closed(sock, now)

    def overdue(self, now: float) -> list[Event]:
        """Sockets gone from a poll whose destroy event never came (lost): closed, as the poll saw them."""
        clock = time.monotonic()
        events = []
        for key, (seen, deadline) in list(self._pending.items()):
            if deadline <= clock:
                del self._pending[key]
                events.append(seen.closed(seen.sock, now))
                if len(self._given_up) >= LATE_KEPT:
                    del self._given_up[next(iter(self._given_up))]
                self._given_up[key] = None
        return events

    def _update(self, event: Event) -> list[Event]:
        key = event.sock.key
        if key in self._announced:  # the kernel announced its end: a TIME_WAIT remnant, not news
            return []
        seen = self._seen.get(key)
        polled = event.sock
        if seen is not None and not polled.pids:  # closed by its process, not yet by the kernel
            polled = polled._replace(pids=seen.sock.pids, process=seen.sock.process, user=seen.sock.user)
        self._seen[key] = _Seen(polled, seen.first_seen, seen.seen_opening) if seen else _Seen(polled, event.at, False)
        return [event]
