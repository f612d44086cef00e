"""Every message the dashboard's widgets and poll thread exchange, in one place."""

from __future__ import annotations

from textual.message import Message

from conntui.changes import Changes
from conntui.model import Snapshot


class SnapshotReady(Message):
    """A poll finished on the poll thread."""

    def __init__(self, snapshot: Snapshot, changes: Changes) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.changes = changes


class PollFailed(Message):
    """A poll raised; the dashboard shows the reason and keeps polling."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class CursorMoved(Message):
    """The table's cursor is on another socket (key), or on none."""

    def __init__(self, key: object | None) -> None:
        super().__init__()
        self.key = key
