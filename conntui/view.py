"""The dashboard's table state, without Textual: rows by socket key, their marks, filter, order.

`ConnectionView.apply` takes each poll's snapshot and changes and updates the rows in place
(new rows marked for a few seconds, closed rows kept and marked, state changes flashed);
`visible` is the filtered, sorted list the table widget draws, replaced (never mutated) on
every change so a reader always sees a consistent list.
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from conntui.changes import Changes
from conntui.filters import MATCH_ALL, Filter
from conntui.model import FourTuple, Snapshot, Socket

NEW_SECONDS = 3.0
CLOSED_SECONDS = 3.0
CHANGED_SECONDS = 2.0


@dataclass(slots=True)
class Row:
    sock: Socket
    first_seen: float
    mark: str = ""  # "new", "closed", "changed" or ""
    mark_until: float = 0.0


@dataclass(frozen=True, slots=True)
class Column:
    name: str  # the id used by sort and by tests
    title: str
    width: int  # minimum width; address columns grow
    align: str = "left"


COLUMNS: tuple[Column, ...] = (
    Column("proto", "Proto", 6),
    Column("local_ip", "Local address", 15),
    Column("local_port", "LPort", 6, "right"),
    Column("remote_ip", "Remote address", 15),
    Column("remote_port", "RPort", 6, "right"),
    Column("state", "State", 12),
    Column("pids", "PIDs", 8),
    Column("process", "Process", 12),
    Column("user", "User", 9),
    Column("age", "Age", 7, "right"),
    Column("count", "×N", 4),
)
COLUMN_NAMES = tuple(column.name for column in COLUMNS)

_ip_sort_keys: dict[str, bytes] = {}


def ip_sort_key(ip: str | None) -> bytes:
    """Addresses in numeric order (10.0.0.9 before 10.0.0.10), IPv4 before IPv6."""
    if ip is None:
        return b""
    key = _ip_sort_keys.get(ip)
    if key is None:
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        key = _ip_sort_keys[ip] = (b"4" if family == socket.AF_INET else b"6") + socket.inet_pton(family, ip)
    return key


def format_age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


@dataclass
class ConnectionView:
    clock: Callable[[], float] = time.monotonic
    rows: dict[object, Row] = field(default_factory=dict)
    filter: Filter = MATCH_ALL
    sort_column: str = "local_port"
    sort_reverse: bool = False
    mine: set[FourTuple] = field(default_factory=set)
    tuple_counts: Counter[FourTuple] = field(default_factory=Counter)
    snapshot: Snapshot | None = None
    visible: list[Row] = field(default_factory=list)
    _positions: dict[object, int] | None = None

    def apply(self, snapshot: Snapshot, changes: Changes) -> None:
        """Fold one poll into the rows; the very first poll marks nothing as new."""
        now = self.clock()
        first_poll = self.snapshot is None
        rows = self.rows
        for sock in snapshot.sockets:
            row = rows.get(sock.key)
            if row is None:
                rows[sock.key] = Row(sock, now, "" if first_poll else "new", now + NEW_SECONDS)
            else:
                row.sock = sock
        for sock in changes.closed:
            row = rows.get(sock.key)
            if row is not None:
                row.mark, row.mark_until = "closed", now + CLOSED_SECONDS
        for _before, after in changes.state_changed:
            row = rows[after.key]
            row.mark, row.mark_until = "changed", now + CHANGED_SECONDS
        self.snapshot = snapshot
        self.tuple_counts = snapshot.tuple_counts()
        self.rebuild()

    def expire(self) -> bool:
        """Drop closed rows and clear marks whose time is up; True when anything changed."""
        now = self.clock()
        expired = [row for row in self.rows.values() if row.mark and row.mark_until <= now]
        for row in expired:
            if row.mark == "closed":
                del self.rows[row.sock.key]
            else:
                row.mark = ""
        if expired:
            self.rebuild()
        return bool(expired)

    def set_filter(self, new_filter: Filter) -> None:
        self.filter = new_filter
        self.rebuild()

    def set_sort(self, column: str, reverse: bool = False) -> None:
        if column not in COLUMN_NAMES:
            raise ValueError(f"unknown column {column!r}")
        self.sort_column, self.sort_reverse = column, reverse
        self.rebuild()

    def set_mine(self, tuples: set[FourTuple]) -> None:
        self.mine = tuples
        self.rebuild()

    def rebuild(self) -> None:
        rows = list(self.rows.values())
        if self.filter:
            matches, mine = self.filter.matches, self.mine
            rows = [row for row in rows if matches(row.sock, mine)]
        rows.sort(key=self._sort_key(), reverse=self.sort_reverse)
        self.visible = rows
        self._positions = None

    def position(self, key: object) -> int | None:
        """Where the socket with this key is in `visible`, or None when filtered out or gone."""
        if self._positions is None:
            self._positions = {row.sock.key: index for index, row in enumerate(self.visible)}
        return self._positions.get(key)

    def cell(self, row: Row, column: str) -> str:
        """The text the table shows for one cell."""
        sock = row.sock
        if column == "proto":
            return f"{sock.proto}{sock.family}"
        if column == "local_ip":
            return sock.local_ip
        if column == "local_port":
            return str(sock.local_port)
        if column == "remote_ip":
            return sock.remote_ip or "*"
        if column == "remote_port":
            return "*" if sock.remote_port is None else str(sock.remote_port)
        if column == "state":
            return sock.state
        if column == "pids":
            return ",".join(map(str, sock.pids)) or "-"
        if column == "process":
            return sock.process or "-"
        if column == "user":
            return sock.user or "-"
        if column == "age":
            return format_age(self.clock() - row.first_seen)
        count = self.tuple_counts.get(sock.four_tuple, 1)
        return f"×{count}" if count > 1 else ""

    def _sort_key(self) -> Callable[[Row], object]:
        column, counts = self.sort_column, self.tuple_counts
        keys: dict[str, Callable[[Row], object]] = {
            "proto": lambda row: (row.sock.proto, row.sock.family),
            "local_ip": lambda row: ip_sort_key(row.sock.local_ip),
            "local_port": lambda row: row.sock.local_port,
            "remote_ip": lambda row: ip_sort_key(row.sock.remote_ip),
            "remote_port": lambda row: -1 if row.sock.remote_port is None else row.sock.remote_port,
            "state": lambda row: row.sock.state,
            "pids": lambda row: row.sock.pids,
            "process": lambda row: (row.sock.process or "").lower(),
            "user": lambda row: row.sock.user or "",
            "age": lambda row: -row.first_seen,
            "count": lambda row: counts.get(row.sock.four_tuple, 1),
        }
        return keys[column]
