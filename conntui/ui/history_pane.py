"""The history pane (`h`): the closed connections, newest first, also those no poll saw.

A summary line (the full sentence of what the status line abbreviates: kept, between polls, the
kernel's counters next to what was seen), then `HistoryTable`, a line-API widget like the socket
table: only the lines on screen are drawn, its columns (`HISTORY_COLUMNS`, declared as the
table's are) laid out by the table's `lay_out`, so at 80 columns the first screen keeps the time,
the lifetime and the four-tuple and the rest is a `→` away. A connection of the user's own tests
is marked ● as in the table. Every system string goes through `conntui.text.printable`.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from rich.segment import Segment
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.events import Resize
from textual.geometry import Size
from textual.strip import Strip
from textual.widgets import Static

from conntui.history import EMPTY_HISTORY, HistoryState
from conntui.model import FourTuple, format_pids
from conntui.socket_events import Event
from conntui.text import printable
from conntui.ui.cursor_view import CursorView
from conntui.ui.keys import CURSOR_BINDINGS
from conntui.ui.room import say_if_no_room
from conntui.ui.socket_table import GUTTER, MORE_HINT, Layout, _fit, lay_out
from conntui.view import Column, format_age, format_bytes, ip_sort_key

BETWEEN_POLLS = "between polls"
_NO_COUNTS: Counter[FourTuple] = Counter()


def _closed_at(record: Event) -> str:
    return datetime.fromtimestamp(record.at).strftime("%H:%M:%S.%f")[:-3]


def format_lifetime(record: Event) -> str:
    """`≥0.004s`, `≥12.5s`, `≥3m02s`: counted from the first poll that saw it, so at least that
    (it opened since the poll before); `between polls` when no poll saw it."""
    if not record.seen_in_poll:
        return BETWEEN_POLLS
    if record.lifetime_ms is None:  # open at the dashboard's start
        first_seen = record.first_seen if record.first_seen is not None else record.at
        return f"≥{format_age(record.at - first_seen)}"
    seconds = record.lifetime_ms / 1000
    if seconds < 10:
        return f"≥{seconds:.3f}s"
    if seconds < 60:
        return f"≥{seconds:.1f}s"
    return f"≥{format_age(seconds)}"


def _minus_one(value: float | None) -> float:
    return -1 if value is None else value


def _or_dash(value: float | None, form: str) -> str:
    return "-" if value is None else form.format(value)


def _process(record: Event) -> str:
    return printable(record.sock.process) if record.sock.process else "-"


HistoryColumn = Column[Event]
# The history pane's columns, in the table's terms (`conntui.view.Column`): the same layout and
# narrow-terminal rules. Priority 1 stays on the first screen at 80 columns.
HISTORY_COLUMNS: tuple[HistoryColumn, ...] = (
    Column("closed_at", "Closed at", lambda record, counts, now: _closed_at(record),
           lambda record, counts: record.at, min_width=12, max_width=12),
    Column("lifetime", "Lifetime", lambda record, counts, now: format_lifetime(record),
           lambda record, counts: _minus_one(record.lifetime_ms), "right", min_width=8, max_width=13),
    Column("proto", "Proto", lambda record, counts, now: f"{record.sock.proto}{record.sock.family}",
           lambda record, counts: (record.sock.proto, record.sock.family), priority=2, min_width=4, max_width=4),
    Column("local", "Local address", lambda record, counts, now: record.sock.local,
           lambda record, counts: (ip_sort_key(record.sock.local_ip), record.sock.local_port),
           min_width=13, max_width=47, clip="middle"),
    Column("remote", "Remote address", lambda record, counts, now: record.sock.remote,
           lambda record, counts: (ip_sort_key(record.sock.remote_ip), _minus_one(record.sock.remote_port)),
           min_width=13, max_width=47, clip="middle"),
    Column("process", "Process", lambda record, counts, now: _process(record),
           lambda record, counts: (record.sock.process or "").lower(), priority=2, min_width=7, max_width=20),
    Column("sent", "Sent", lambda record, counts, now: format_bytes(record.sock.bytes_sent),
           lambda record, counts: _minus_one(record.sock.bytes_sent), "right", priority=3, max_width=10),
    Column("received", "Recv", lambda record, counts, now: format_bytes(record.sock.bytes_received),
           lambda record, counts: _minus_one(record.sock.bytes_received), "right", priority=3, max_width=10),
    Column("rtt", "RTT ms", lambda record, counts, now: _or_dash(record.sock.rtt_ms, "{:.2f}"),
           lambda record, counts: _minus_one(record.sock.rtt_ms), "right", priority=3, max_width=9),
    Column("retrans", "Retr", lambda record, counts, now: _or_dash(record.sock.retrans, "{}"),
           lambda record, counts: _minus_one(record.sock.retrans), "right", priority=3, max_width=7),
    Column("pids", "PIDs", lambda record, counts, now: format_pids(record.sock.pids),
           lambda record, counts: record.sock.pids, priority=4, min_width=4, max_width=12),
    Column("state", "Last state", lambda record, counts, now: record.sock.state,
           lambda record, counts: record.sock.state, priority=4, min_width=10, max_width=11),
)  # fmt: skip


class HistoryTable(CursorView, can_focus=True):
    """The closed connections, one line each under a pinned line of column titles."""

    PINNED = 1

    COMPONENT_CLASSES = {"history-table--header", "history-table--cursor", "history-table--mine",
                         "history-table--between", "history-table--more"}  # fmt: skip
    BINDINGS = [
        *CURSOR_BINDINGS,
        Binding("left", "scroll_columns(-1)", "Columns left", show=False),
        Binding("right", "scroll_columns(1)", "Columns right", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.state: HistoryState = EMPTY_HISTORY
        self._layout: tuple[tuple[object, ...], Layout] | None = None  # (what it was made for, the layout)

    def show(self, state: HistoryState) -> None:
        """Draw a new state; the cursor stays on its record as newer ones arrive above it."""
        if self.state.visible and state.visible and self.cursor:
            record = self.state.visible[min(self.cursor, len(self.state.visible) - 1)]
            self.cursor = next((i for i, other in enumerate(state.visible) if other is record), self.cursor)
        self.state = state
        self.virtual_size = Size(self.virtual_size.width, len(state.visible) + 1)
        self._move_cursor(self.cursor)

    @property
    def cursor_record(self) -> Event | None:
        visible = self.state.visible
        return visible[self.cursor] if 0 <= self.cursor < len(visible) else None

    @property
    def line_count(self) -> int:
        return len(self.state.visible)

    def action_scroll_columns(self, direction: int) -> None:
        """Scroll sideways to the next column's start (`→`) or the previous one's (`←`)."""
        x = int(self.scroll_x)
        starts = [0, *self._current_layout().starts[1:]]
        if direction > 0:
            target = next((start for start in starts if start > x), x)
        else:
            target = next((start for start in reversed(starts) if start < x), 0)
        self.scroll_to(x=target, animate=False, immediate=True, force=True)

    def _page(self) -> list[Event]:
        top = int(self.scroll_y)
        return list(self.state.visible[top : top + max(0, self.scrollable_content_region.height - 1)])

    def _current_layout(self) -> Layout:
        """The columns' places for the records on screen, made once per page."""
        width, page = self.scrollable_content_region.width, self._page()
        key = (self.state, int(self.scroll_y), width, self.scrollable_content_region.height)
        if self._layout is not None and self._layout[0] == key:
            return self._layout[1]
        natural = {
            column.name: max(
                len(column.title),
                min(column.max_width, max((len(column.text(record, _NO_COUNTS, 0)) for record in page), default=0)),
            )
            for column in HISTORY_COLUMNS
        }
        layout = lay_out(HISTORY_COLUMNS, natural, width)
        self._layout = (key, layout)
        if self.virtual_size.width != layout.width:
            self.virtual_size = Size(layout.width, len(self.state.visible) + 1)
        return layout

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        layout, left = self._current_layout(), int(self.scroll_x)
        if y == 0:
            return self._header(layout, left, width)
        index = int(self.scroll_y) + y - 1
        if index >= len(self.state.visible):
            return Strip.blank(width, self.rich_style)
        return self._line(self.state.visible[index], index == self.cursor, layout).crop(left, left + width)

    def _header(self, layout: Layout, left: int, width: int) -> Strip:
        style = self.get_component_rich_style("history-table--header")
        segments = [Segment(" " * GUTTER, style)]
        for index, (column, column_width) in enumerate(zip(layout.columns, layout.widths, strict=True)):
            if index == layout.first_screen and layout.gap:
                segments.append(Segment(" " * layout.gap, style))
            segments.append(Segment(_fit(column.title, column_width, column) + " ", style))
        strip = Strip(segments).adjust_cell_length(max(width, layout.width), style).crop(left, left + width)
        if left + width < layout.width:
            more = Strip([Segment(MORE_HINT, style + self.get_component_rich_style("history-table--more"))])
            strip = Strip.join([strip.crop(0, width - len(MORE_HINT)), more])
        return strip

    def _line(self, record: Event, is_cursor: bool, layout: Layout) -> Strip:
        component = self.get_component_rich_style
        base = self.rich_style + (
            component("history-table--cursor") if is_cursor and self.has_focus else self.rich_style
        )
        mine = record.sock.four_tuple in self.state.mine
        segments = [Segment("●" if mine else " ", base + component("history-table--mine") if mine else base)]
        for index, (column, column_width) in enumerate(zip(layout.columns, layout.widths, strict=True)):
            if index == layout.first_screen and layout.gap:
                segments.append(Segment(" " * layout.gap, base))
            style = base
            if column.name == "lifetime" and not record.seen_in_poll:
                style = base + component("history-table--between")
            segments.append(Segment(_fit(column.text(record, _NO_COUNTS, 0), column_width, column) + " ", style))
        return Strip(segments).adjust_cell_length(max(self.scrollable_content_region.width, layout.width), base)

    def on_resize(self, _event: Resize) -> None:
        self._move_cursor(self.cursor)

    def on_focus(self) -> None:
        self.refresh()
        self.call_after_refresh(say_if_no_room, self, "history pane", 2)  # the column titles and a line

    def on_blur(self) -> None:
        self.refresh()


class HistoryPane(Vertical):
    """The summary and the table of closed connections, shown and hidden as one."""

    def compose(self) -> ComposeResult:
        yield Static(id="history-summary")
        yield HistoryTable(id="history-table")

    def show(self, state: HistoryState, closes_note: str) -> None:
        """Draw the state; `closes_note` says why closes come from polls only ("" when they do not)."""
        summary = state.summary()
        if closes_note:
            summary = f"{summary} Closes from polls only: {printable(closes_note)}."
        self.query_one("#history-summary", Static).update(summary)
        self.query_one(HistoryTable).show(state)
