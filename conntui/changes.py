"""What changed between two polls: opened, closed, state changed, owners changed. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from conntui.model import Socket, format_pids
from conntui.text import printable


@dataclass(frozen=True, slots=True)
class Changes:
    opened: tuple[Socket, ...] = ()
    closed: tuple[Socket, ...] = ()
    state_changed: tuple[tuple[Socket, Socket], ...] = ()  # (before, after)
    owners_changed: tuple[tuple[Socket, Socket], ...] = ()
    # The sockets of rows that went out before their owners, now with them (from the same dump): not a
    # change, so no event, but whoever keeps sockets (the history) takes the owners in.
    owners_found: tuple[Socket, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.opened or self.closed or self.state_changed or self.owners_changed)


def diff(previous: Mapping[object, Socket], current: Mapping[object, Socket]) -> Changes:
    """Compare two polls' sockets, each keyed by socket identity."""
    opened = tuple(current[key] for key in current.keys() - previous.keys())
    closed = tuple(previous[key] for key in previous.keys() - current.keys())
    state_changed: list[tuple[Socket, Socket]] = []
    owners_changed: list[tuple[Socket, Socket]] = []
    for key, now in current.items():
        before = previous.get(key)
        if before is None:
            continue
        if before.state != now.state:
            state_changed.append((before, now))
        if before.pids != now.pids:
            owners_changed.append((before, now))
    return Changes(opened, closed, tuple(state_changed), tuple(owners_changed))


def describe(sock: Socket) -> str:
    """One line naming a socket, for the event log (its process name made printable)."""
    owner = f" ({printable(sock.process)} {_pids(sock)})" if sock.process else ""
    return f"{sock.proto}{sock.family} {sock.local} → {sock.remote}{owner}"


def event_lines(changes: Changes, limit: int = 200) -> list[str]:
    """The event log's lines for one poll's changes: at most `limit`, then a count of the rest."""
    events = (
        *(("opened ", sock, sock.state) for sock in changes.opened),
        *(("closed ", sock, "") for sock in changes.closed),
        *((("state  ", after, f"{before.state} → {after.state}") for before, after in changes.state_changed)),
        *(("owners ", after, f"pids {_pids(before)} → {_pids(after)}") for before, after in changes.owners_changed),
    )
    lines = [f"{kind} {describe(sock)} {detail}".rstrip() for kind, sock, detail in events[:limit]]
    if len(events) > limit:
        lines.append(f"… and {len(events) - limit} more changes in this poll")
    return lines


def _pids(sock: Socket) -> str:
    return format_pids(sock.pids, every=True)
