"""Every message the dashboard's widgets and poll thread exchange, in one place."""

from __future__ import annotations

from textual.message import Message

from conntui.model import FourTuple, Snapshot
from conntui.probe import ProbeResult
from conntui.view import TableState


class SnapshotReady(Message):
    """A poll finished on the engine thread; `state` is the table after it, `events` its log lines."""

    def __init__(self, snapshot: Snapshot, state: TableState, events: list[str]) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.state = state
        self.events = events


class StateReady(Message):
    """The engine thread finished a change to the table (filter, sort, expiry, …)."""

    def __init__(self, state: TableState) -> None:
        super().__init__()
        self.state = state


class SortRequested(Message):
    """The table asks for another order (a header click or a key)."""

    def __init__(self, column: str, reverse: bool) -> None:
        super().__init__()
        self.column = column
        self.reverse = reverse


class PollFailed(Message):
    """A poll raised; the dashboard shows the reason and keeps polling."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class ErrorOccurred(Message):
    """Something failed off the usual paths (a thread, a worker, drawing a row); the dashboard says so and goes on."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class CursorMoved(Message):
    """The table's cursor is on another socket (key), or on none."""

    def __init__(self, key: object | None) -> None:
        super().__init__()
        self.key = key


class ProbeUpdated(Message):
    """A test connection's record changed (sent from the probe's thread; carries a copy)."""

    def __init__(self, test_id: int, result: ProbeResult) -> None:
        super().__init__()
        self.test_id = test_id
        self.result = result


class LaunchProbe(Message):
    """The test dialog asks for a test: URL ('' = the built-in server), mode, count, hold."""

    def __init__(self, url: str, mode: str, count: int, hold: float) -> None:
        super().__init__()
        self.url = url
        self.mode = mode
        self.count = count
        self.hold = hold


class SocketWanted(Message):
    """The tests pane asks the table to show a test connection's socket: the first of `four_tuples` found."""

    def __init__(self, four_tuples: tuple[FourTuple, ...]) -> None:
        super().__init__()
        self.four_tuples = four_tuples
