"""The dashboard's table state, without Textual: rows by socket key, their marks, filter, order.

`ConnectionView` is mutable and lives on the dashboard's engine thread: `apply` folds in each
poll (new rows marked for a few seconds, closed rows kept and marked, state changes flashed,
byte rates and their averages computed: `conntui.rates`), `set_filter`/`set_sort`/`set_mine`/
`expire` change what is shown, `set_grouping`/`toggle_group` how (`conntui.grouping`), and
`show_overview` whether the overview's figures are made (`conntui.overview`). After each change
`state()` hands out a new `TableState`, the only thing the UI thread reads. Its lists
and counts are its own and never change; its rows are the view's `Row` objects, whose mark, rates
and socket the engine thread updates in place (each field replaced whole, so a reader sees the
old value or the new one). The UI only reads them.
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from operator import attrgetter
from typing import Any, Generic, TypeVar

from conntui.changes import Changes
from conntui.filters import MATCH_ALL, Filter
from conntui.grouping import GROUPINGS, Group, GroupKey, group_lines
from conntui.history import EMPTY_HISTORY, ConnectionHistory, HistoryState
from conntui.model import FourTuple, Snapshot, Socket, format_pids
from conntui.names import NO_NAMES, Names
from conntui.overview import Overview, OverviewTracker
from conntui.rates import WINDOWS, Traffic
from conntui.text import printable

NEW_SECONDS = 3.0
CLOSED_SECONDS = 3.0
CHANGED_SECONDS = 2.0


@dataclass(slots=True)
class Row:
    sock: Socket
    first_seen: float
    seen_opening: bool = True  # False for sockets already open at the first poll: their age is a lower bound
    mark: str = ""  # "new", "closed", "changed" or ""
    mark_until: float = 0.0
    tx_rate: float | None = None  # bytes/s sent (acked) since the previous poll
    rx_rate: float | None = None
    traffic: Traffic | None = None  # averages, total and per-poll rates, once there was traffic

    @property
    def key(self) -> object:
        """The table line's key: the socket's."""
        return self.sock.key


_SOCKET_KEY = attrgetter("sock.key")  # a row's socket's key
_STATE = attrgetter("state")
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


def format_bytes(count: float | None) -> str:
    """Bytes for people: `512 B`, `1.5 KiB`, `71.0 MiB`; `-` when unknown."""
    if count is None:
        return "-"
    if abs(round(count)) < 1024:
        return f"{count:.0f} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        count /= 1024
        if abs(round(count, 1)) < 1024 or unit == "TiB":
            break
    return f"{count:.1f} {unit}"


SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float]) -> str:
    """One character per value, scaled to the largest."""
    top = max(values, default=0)
    if top <= 0:
        return SPARK[0] * len(values)
    return "".join(SPARK[min(len(SPARK) - 1, int(value / top * (len(SPARK) - 1) + 0.5))] for value in values)


class TableState:
    """What the table shows after one change: its lists and counts never change once handed to the
    UI thread (the rows in them are shared with the view: see the module's docstring)."""

    __slots__ = ("_positions", "filter", "grouping", "groups", "hidden", "history", "lines", "mine", "overview",
                 "snapshot", "sort_column", "sort_reverse", "state_counts", "total", "tuple_counts",
                 "visible")  # fmt: skip

    def __init__(self, visible: list[Row], snapshot: Snapshot | None, tuple_counts: Counter[FourTuple],
                 state_counts: Counter[str], mine: frozenset[FourTuple], sort_column: str, sort_reverse: bool,
                 filter: Filter, total: int, history: HistoryState = EMPTY_HISTORY, *, grouping: str = "",
                 lines: list[Row | Group] | None = None, groups: list[Group] | None = None,
                 overview: Overview | None = None) -> None:  # fmt: skip
        self.visible, self.snapshot, self.tuple_counts, self.mine = visible, snapshot, tuple_counts, mine
        self.state_counts = state_counts  # sockets per TCP state in the snapshot
        self.sort_column, self.sort_reverse, self.filter, self.total = sort_column, sort_reverse, filter, total
        self.history = history  # the closed connections (`conntui.history`)
        # The table's lines: the visible rows, or when grouped, group headers and the rows of open groups.
        self.grouping, self.groups, self.overview = grouping, groups or [], overview
        self.lines: Sequence[Row | Group] = visible if lines is None else lines
        self._positions: dict[object, int] | None = None
        # The rows of collapsed groups -> their header's line (where a cursor on one of them goes).
        self.hidden = {row.sock.key: self.positions[group.key] for group in self.groups if group.collapsed
                       for row in group.rows}  # fmt: skip

    @property
    def positions(self) -> dict[object, int]:
        """Line key -> its index in `lines`, made when first asked for (the UI asks only when its
        cursor's line moved): not on the way of every state to the screen (100,000 rows: 45 ms)."""
        if self._positions is None:
            if self.lines is self.visible:  # ungrouped: in C
                self._positions = dict(zip(map(_SOCKET_KEY, self.visible), range(len(self.visible)), strict=True))
            else:
                self._positions = {line.key: index for index, line in enumerate(self.lines)}
        return self._positions

    def position(self, key: object) -> int | None:
        """Where the line with this key (a socket's or a group's) is in `lines`, or None when
        filtered out, in a collapsed group, or gone."""
        return self.positions.get(key)

    def group_of_hidden(self, key: object) -> Group | None:
        """The collapsed group that hides the socket with this key, if one does."""
        index = self.hidden.get(key)
        line = self.lines[index] if index is not None else None
        return line if isinstance(line, Group) else None

    def row_with_tuple(self, four_tuple: FourTuple) -> Row | None:
        return next((row for row in self.visible if row.sock.four_tuple == four_tuple), None)


EMPTY_STATE = TableState([], None, Counter(), Counter(), frozenset(), "local_port", False, MATCH_ALL, 0)


def _minus_one(value: float | None) -> float:
    return -1 if value is None else value


def _age(row: Row, now: float) -> str:
    age = format_age(now - row.first_seen)
    return age if row.seen_opening else f"≥{age}"


def _average_text(index: int, row: Row, counts: Counter[FourTuple], now: float) -> str:
    """A row's average over one of iftop's windows: `-` without TCP byte counters, 0 with no traffic yet."""
    if row.traffic is None:
        return "-" if row.sock.bytes_sent is None else "0 B"
    return format_bytes(row.traffic.averages[index])


def _average_key(index: int, row: Row, counts: Counter[FourTuple]) -> float:
    if row.traffic is None:
        return -1 if row.sock.bytes_sent is None else 0
    return row.traffic.averages[index]


def _total_text(row: Row) -> str:
    if row.traffic is None:
        return "-" if row.sock.bytes_sent is None else "0 B"
    return format_bytes(row.traffic.total)


def _total_key(row: Row) -> float:
    if row.traffic is None:
        return -1 if row.sock.bytes_sent is None else 0
    return row.traffic.total


RowT = TypeVar("RowT")  # what a line of the table is: a live socket's `Row`; a closed connection in the history
CellText = Callable[[RowT, Counter[FourTuple], float], str]  # (row, sockets per four-tuple, now) -> text
SortKey = Callable[[RowT, Counter[FourTuple]], Any]  # (row, sockets per four-tuple) -> a comparable


@dataclass(frozen=True, slots=True)
class Column(Generic[RowT]):
    """One column of the table, declared once: what it shows, how it sorts, how it yields room."""

    name: str  # the id used by sort, by `list` and by tests
    title: str
    text: CellText[RowT]
    sort_key: SortKey[RowT]
    align: str = "left"  # or "right"
    priority: int = 1  # 1: on every row however narrow the terminal; higher numbers leave the screen first
    min_width: int = 1  # squeezed no narrower than this when even the priority-1 columns do not fit
    max_width: int = 20  # a wider text is cut (with …) even when there is room
    metric: bool = False  # a TCP metrics column, shown when metrics are switched on
    parts: tuple[str, ...] = ()  # when narrow, this one column (an `ip:port`) replaces these split ones
    clip: str = "end"  # where a text too long is cut: "end", or "middle" (an endpoint keeps its port)


COLUMNS: tuple[Column[Row], ...] = (
    Column("proto", "Proto", lambda row, counts, now: f"{row.sock.proto}{row.sock.family}",
           lambda row, counts: (row.sock.proto, row.sock.family), min_width=4, max_width=4),
    Column("local", "Local address", lambda row, counts, now: row.sock.local,
           lambda row, counts: (ip_sort_key(row.sock.local_ip), row.sock.local_port),
           min_width=13, max_width=47, parts=("local_ip", "local_port"), clip="middle"),
    Column("local_ip", "Local address", lambda row, counts, now: row.sock.local_ip,
           lambda row, counts: ip_sort_key(row.sock.local_ip), min_width=7, max_width=39, clip="middle"),
    Column("local_port", "LPort", lambda row, counts, now: str(row.sock.local_port),
           lambda row, counts: row.sock.local_port, "right", min_width=5, max_width=5),
    Column("remote", "Remote address", lambda row, counts, now: row.sock.remote,
           lambda row, counts: (ip_sort_key(row.sock.remote_ip), _minus_one(row.sock.remote_port)),
           min_width=13, max_width=47, parts=("remote_ip", "remote_port"), clip="middle"),
    Column("remote_ip", "Remote address", lambda row, counts, now: row.sock.remote_ip or "*",
           lambda row, counts: ip_sort_key(row.sock.remote_ip), min_width=7, max_width=39, clip="middle"),
    Column("remote_port", "RPort", lambda row, counts, now: "*" if row.sock.remote_port is None else
           str(row.sock.remote_port), lambda row, counts: _minus_one(row.sock.remote_port), "right",
           min_width=5, max_width=5),
    Column("state", "State", lambda row, counts, now: row.sock.state, lambda row, counts: row.sock.state,
           min_width=11, max_width=11),
    Column("pids", "PIDs", lambda row, counts, now: format_pids(row.sock.pids), lambda row, counts: row.sock.pids,
           min_width=12, max_width=12),  # never cut: "23971 +12" cut reads as another pid
    Column("process", "Process", lambda row, counts, now: printable(row.sock.process) if row.sock.process else "-",
           lambda row, counts: (row.sock.process or "").lower(), min_width=7, max_width=20),
    Column("user", "User", lambda row, counts, now: printable(row.sock.user) if row.sock.user else "-",
           lambda row, counts: row.sock.user or "", priority=3, min_width=4, max_width=12),
    Column("age", "Age", lambda row, counts, now: _age(row, now), lambda row, counts: -row.first_seen, "right",
           priority=2, min_width=3, max_width=8),
    Column("count", "×N", lambda row, counts, now: f"×{n}" if (n := counts.get(row.sock.four_tuple, 1)) > 1 else "",
           lambda row, counts: counts.get(row.sock.four_tuple, 1), min_width=2, max_width=6),
    Column("rtt", "RTT ms", lambda row, counts, now: "-" if row.sock.rtt_ms is None else f"{row.sock.rtt_ms:.2f}",
           lambda row, counts: _minus_one(row.sock.rtt_ms), "right", priority=4, metric=True, max_width=9),
    Column("retrans", "Retr", lambda row, counts, now: "-" if row.sock.retrans is None else str(row.sock.retrans),
           lambda row, counts: _minus_one(row.sock.retrans), "right", priority=4, metric=True, max_width=7),
    Column("sent", "Sent", lambda row, counts, now: format_bytes(row.sock.bytes_sent),
           lambda row, counts: _minus_one(row.sock.bytes_sent), "right", priority=4, metric=True, max_width=10),
    Column("received", "Recv", lambda row, counts, now: format_bytes(row.sock.bytes_received),
           lambda row, counts: _minus_one(row.sock.bytes_received), "right", priority=4, metric=True, max_width=10),
    Column("tx_rate", "Tx/s", lambda row, counts, now: format_bytes(row.tx_rate),
           lambda row, counts: _minus_one(row.tx_rate), "right", priority=4, metric=True, max_width=10),
    Column("rx_rate", "Rx/s", lambda row, counts, now: format_bytes(row.rx_rate),
           lambda row, counts: _minus_one(row.rx_rate), "right", priority=4, metric=True, max_width=10),
    *(Column(f"rate{window:.0f}", f"{window:.0f}s", partial(_average_text, index), partial(_average_key, index),
             "right", priority=4, metric=True, max_width=10) for index, window in enumerate(WINDOWS)),
    Column("total", "Total", lambda row, counts, now: _total_text(row), lambda row, counts: _total_key(row), "right",
           priority=4, metric=True, max_width=10),
)  # fmt: skip
COLUMN_BY_NAME: dict[str, Column[Row]] = {column.name: column for column in COLUMNS}


def cell(state: TableState, row: Row, column: str, now: float) -> str:
    """The text the table shows for one cell."""
    return COLUMN_BY_NAME[column].text(row, state.tuple_counts, now)


@dataclass
class ConnectionView:
    clock: Callable[[], float] = time.monotonic
    filter: Filter = MATCH_ALL
    sort_column: str = "local_port"
    sort_reverse: bool = False
    rows: dict[object, Row] = field(default_factory=dict)
    mine: frozenset[FourTuple] = frozenset()
    names: Names = NO_NAMES  # the names shown, which the filter also matches
    snapshot: Snapshot | None = None
    tuple_counts: Counter[FourTuple] = field(default_factory=Counter)
    state_counts: Counter[str] = field(default_factory=Counter)
    _ordered: list[Row] = field(default_factory=list)  # every row, sorted
    _visible: list[Row] = field(default_factory=list)  # the filtered rows, in order
    _marked: dict[object, Row] = field(default_factory=dict)  # rows with a mark that will expire
    _moving: set[object] = field(default_factory=set)  # keys of rows with a non-zero byte rate or average
    history: ConnectionHistory = field(default_factory=ConnectionHistory)  # the closed connections, filtered alike
    grouping: str = ""  # one of GROUPINGS: "" for none
    collapsed: set[object] = field(default_factory=set)  # the values of the collapsed groups
    _lines: list[Row | Group] | None = None  # the grouped lines (None: not grouped)
    _groups: list[Group] = field(default_factory=list)
    overview_tracker: OverviewTracker = field(default_factory=OverviewTracker)
    overview_shown: bool = False
    _overview: Overview | None = None

    def __post_init__(self) -> None:
        self.history.set_filter(self.filter)

    @property
    def moving(self) -> bool:
        """Whether some row has a non-zero rate or average, or the overview is shown (its host rates
        move on): a poll with no change to the sockets still changes the view."""
        return bool(self._moving) or self.overview_shown

    def apply(self, snapshot: Snapshot, changes: Changes) -> None:
        """Fold one poll into the rows; the very first poll marks nothing as new."""
        now = self.clock()
        previous = self.snapshot
        interval = snapshot.taken_at - previous.taken_at if previous is not None else 0.0
        rows, marked = self.rows, self._marked
        for sock in snapshot.sockets:
            row = rows.get(sock.key)
            if row is None:
                row = rows[sock.key] = Row(sock, now, seen_opening=previous is not None)
                if previous is not None:
                    row.mark, row.mark_until = "new", now + NEW_SECONDS
                    marked[sock.key] = row
                continue
            if row.mark == "closed":  # back before its closed row went (a key made of the tuple)
                row.mark, row.mark_until, row.first_seen = "new", now + NEW_SECONDS, now
            before = row.sock
            moved = before.bytes_sent != sock.bytes_sent or before.bytes_received != sock.bytes_received
            traffic = row.traffic
            if moved or row.tx_rate or row.rx_rate or (traffic is not None and traffic.active):
                _update_rates(row, before, sock, interval, snapshot.taken_at)  # skipped for the (many) idle ones
                if row.tx_rate or row.rx_rate or (row.traffic is not None and row.traffic.active):
                    self._moving.add(sock.key)
                else:
                    self._moving.discard(sock.key)
            row.sock = sock
        for sock in changes.closed:
            row = rows.get(sock.key)
            if row is not None:
                row.mark, row.mark_until = "closed", now + CLOSED_SECONDS
                marked[sock.key] = row
        for _before, after in changes.state_changed:
            row = rows[after.key]
            row.mark, row.mark_until = "changed", now + CHANGED_SECONDS
            marked[after.key] = row
        self.history.polled(changes, snapshot.taken_at)
        self.snapshot = snapshot
        if previous is not None:  # the first poll opens nothing: it finds what was there
            opened, closed = self._shown_count(changes.opened), self._shown_count(changes.closed)
            self.overview_tracker.record_changes(snapshot.taken_at, opened, closed)
        if self.overview_shown:
            self.overview_tracker.record_host(snapshot.taken_at)
        if self.names.hosts_shown:  # names for every remote address, not just those on screen: the filter matches them
            self.names.look_up({sock.remote_ip for sock in snapshot.sockets})
        self.tuple_counts = snapshot.tuple_counts()
        self.state_counts = Counter(map(_STATE, snapshot.sockets))
        self._sort()

    def expire(self) -> bool:
        """Drop closed rows and clear marks whose time is up, bring the history up to date; True when
        anything changed."""
        history_changed = self.history.expire()
        now = self.clock()
        expired = [row for row in self._marked.values() if row.mark_until <= now]
        for row in expired:
            del self._marked[row.sock.key]
            if row.mark == "closed":
                del self.rows[row.sock.key]
                self._moving.discard(row.sock.key)
            row.mark = ""
        if any(row.sock.key not in self.rows for row in expired):
            self._sort()
        return bool(expired) or history_changed

    def set_filter(self, new_filter: Filter) -> None:
        self.filter = new_filter
        self.history.set_filter(new_filter)
        self._select()

    def set_sort(self, column: str, reverse: bool = False) -> None:
        if column not in COLUMN_BY_NAME:
            raise ValueError(f"unknown column {column!r}")
        self.sort_column, self.sort_reverse = column, reverse
        self._sort()

    def set_mine(self, tuples: frozenset[FourTuple]) -> None:
        self.mine = tuples
        self.history.set_mine(tuples)
        if self.filter:
            self._select()

    def names_changed(self) -> bool:
        """The names shown changed: a filter that matches names may match other rows now."""
        if self.names.hosts_shown and self.snapshot is not None:
            self.names.look_up({sock.remote_ip for sock in self.snapshot.sockets})
        if not self.filter:
            return False
        self._select()
        return True

    def _shown_count(self, sockets: tuple[Socket, ...]) -> int:
        """How many of these sockets the filter lets through (the overview follows the filter)."""
        if not self.filter:
            return len(sockets)
        matches, mine, names = self.filter.matches, self.mine, self.names
        return sum(1 for sock in sockets if matches(sock, mine, names))

    def set_grouping(self, grouping: str) -> None:
        if grouping not in GROUPINGS:
            raise ValueError(f"unknown grouping {grouping!r}")
        self.grouping = grouping
        self.collapsed = set()
        self._select()

    def next_grouping(self) -> None:
        """The next of GROUPINGS, after the last none again."""
        self.set_grouping(GROUPINGS[(GROUPINGS.index(self.grouping) + 1) % len(GROUPINGS)])

    def toggle_group(self, key: GroupKey) -> bool:
        """Collapse an open group or open a collapsed one; False when it is not this grouping's."""
        if key.grouping != self.grouping:
            return False
        self.collapsed.symmetric_difference_update({key.value})
        self._select()
        return True

    def expand_group(self, key: GroupKey) -> bool:
        if key.grouping != self.grouping or key.value not in self.collapsed:
            return False
        return self.toggle_group(key)

    def toggle_all_groups(self) -> bool:
        """Collapse every group shown, or when every one is collapsed already, open them all."""
        if not self.grouping:
            return False
        values = {group.key.value for group in self._groups}
        self.collapsed = set() if values <= self.collapsed else values
        self._select()
        return True

    def show_overview(self, shown: bool) -> None:
        self.overview_shown = shown
        if shown and self.snapshot is not None:
            self.overview_tracker.record_host(self.snapshot.taken_at)
        self._select()

    def state(self) -> TableState:
        return TableState(
            self._visible, self.snapshot, self.tuple_counts, self.state_counts, self.mine, self.sort_column,
            self.sort_reverse, self.filter, len(self.rows), self.history.state(), grouping=self.grouping,
            lines=self._lines, groups=self._groups, overview=self._overview,
        )  # fmt: skip

    def _sort(self) -> None:
        key, counts = COLUMN_BY_NAME[self.sort_column].sort_key, self.tuple_counts
        self._ordered = sorted(self.rows.values(), key=lambda row: key(row, counts), reverse=self.sort_reverse)
        self._select()

    def _select(self) -> None:
        if self.filter:
            matches, mine, names = self.filter.matches, self.mine, self.names
            self._visible = [row for row in self._ordered if matches(row.sock, mine, names)]
        else:
            self._visible = self._ordered
        if self.grouping:
            column = COLUMN_BY_NAME[self.sort_column]
            self._lines, self._groups = group_lines(
                self._visible, self.grouping, self.collapsed, column.sort_key, column.name, self.sort_reverse,
                _group_name_key,
            )  # fmt: skip
        else:
            self._lines, self._groups = None, []
        self._overview = self.overview_tracker.summary(self._visible) if self.overview_shown else None


def _group_name_key(key: GroupKey) -> Any:
    """Groups by name: processes alphabetically, addresses and ports in numeric order."""
    if key.grouping == "process":
        return key.value.lower()
    if key.grouping == "local_port":
        return key.value
    if key.grouping == "host":
        return ip_sort_key(key.value or None)
    ip, port = key.value
    return ip_sort_key(ip or None), _minus_one(port)


def _update_rates(row: Row, before: Socket, sock: Socket, interval: float, at: float) -> None:
    if sock.bytes_sent is None or before.bytes_sent is None or interval <= 0:
        return
    tx = max(0, sock.bytes_sent - before.bytes_sent) / interval
    rx = max(0, (sock.bytes_received or 0) - (before.bytes_received or 0)) / interval
    row.tx_rate, row.rx_rate = tx, rx
    if row.traffic is None:
        if not (tx or rx):
            return  # an idle connection costs no history
        row.traffic = Traffic(at - interval, before.bytes_sent, before.bytes_received or 0)
    row.traffic.record(at, sock.bytes_sent, sock.bytes_received or 0, tx, rx)
