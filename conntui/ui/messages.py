"""Every message the dashboard's widgets and threads exchange, in one place, as dataclasses."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from conntui.budget import BudgetReport, DestinationKey
from conntui.grouping import GroupKey
from conntui.http.experiments import TestRecord
from conntui.model import FourTuple
from conntui.view import TableState


@dataclass
class SnapshotReady(Message):
    """A poll finished on the engine thread: `state` is the table after it, `events` its log lines."""

    state: TableState
    events: list[str]


@dataclass
class StateReady(Message):
    """The engine thread finished a change to the table (filter, sort, expiry, …)."""

    state: TableState


@dataclass
class SortRequested(Message):
    """The table asks for another order (a header click or a key)."""

    column: str
    reverse: bool


@dataclass
class PollFailed(Message):
    """A poll raised; the dashboard shows the reason and keeps polling."""

    reason: str


@dataclass
class ErrorOccurred(Message):
    """Something failed off the usual paths (a thread, a worker, drawing a row); the dashboard says so and goes on."""

    reason: str


@dataclass
class CursorMoved(Message):
    """The table's cursor is on another socket, or on none."""


@dataclass
class ProbeUpdated(Message):
    """A test's record changed (sent from the probe's thread; carries a copy)."""

    test_id: int
    result: TestRecord


@dataclass
class SocketWanted(Message):
    """The tests pane asks the table to show a test connection's socket: the first of `four_tuples` found."""

    four_tuples: tuple[FourTuple, ...]


@dataclass
class BudgetReady(Message):
    """The engine thread folded a poll into the four-tuple budget and its lines changed."""

    report: BudgetReport


@dataclass
class DestinationChosen(Message):
    """Enter in the budget view: filter the table to this destination's sockets."""

    destination: DestinationKey


@dataclass
class CloseEventsLost(Message):
    """The kernel dropped some destroy events (its buffer was full): those closes come from the polls."""

    reason: str


@dataclass
class GroupToggleRequested(Message):
    """The table asks to collapse or expand a group (space, or enter, on its header)."""

    key: GroupKey
