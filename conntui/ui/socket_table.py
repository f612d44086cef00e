"""The socket table: a virtualised line-API widget over a `TableState`.

Only the lines on screen are rendered (no per-row widgets), so 100,000 rows cost no more to
draw than 40. Line 0 is the pinned column header; clicking a title asks for that order. The
cursor follows a socket key, so it stays on the same socket across refreshes and re-sorts.
A row that cannot be drawn shows why in its place and is reported (`ErrorOccurred`): the rest
of the table, and the dashboard, go on.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.segment import Segment
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from conntui.ui.messages import CursorMoved, ErrorOccurred, SortRequested
from conntui.view import COLUMNS, EMPTY_STATE, Column, Row, TableState, cell

GROWING = {"local_ip": 2, "remote_ip": 2, "process": 1}  # share of spare width
MAX_ADDRESS_WIDTH = 39
WIDE_ENOUGH_FOR_METRICS = 200  # columns
STATE_CLASSES = {
    "ESTABLISHED": "established", "LISTEN": "listen", "TIME_WAIT": "time-wait", "CLOSE_WAIT": "close-wait",
    "SYN_SENT": "syn", "SYN_RECV": "syn", "FIN_WAIT1": "fin", "FIN_WAIT2": "fin", "LAST_ACK": "fin",
    "CLOSING": "fin", "CLOSE": "close", "NONE": "none",
}  # fmt: skip


class SocketTable(ScrollView, can_focus=True):
    COMPONENT_CLASSES = {
        "socket-table--header", "socket-table--cursor", "socket-table--new", "socket-table--closed",
        "socket-table--changed", "socket-table--mine", "socket-table--unique-warning",
        *(f"socket-table--state-{name}" for name in set(STATE_CLASSES.values())),
    }  # fmt: skip
    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
        Binding("s", "sort_next", "Sort"),
        Binding("S", "sort_reverse", "Reverse", show=False),
        Binding("m", "metrics", "Metrics"),
    ]

    def __init__(self, clock: Callable[[], float] = time.monotonic, **kwargs) -> None:
        super().__init__(**kwargs)
        self.clock = clock
        self.state: TableState = EMPTY_STATE
        self.show_metrics = False
        self._metrics_chosen = False  # once the user toggles them, the width no longer decides
        self.cursor_index = 0
        self.cursor_key: object | None = None
        self._widths: tuple[int, ...] = ()
        self._widths_for: tuple[int, bool] = (-1, False)
        self._drawing_error = ""

    @property
    def columns(self) -> tuple[Column, ...]:
        return tuple(column for column in COLUMNS if self.show_metrics or not column.metric)

    # -- data --------------------------------------------------------------------------------

    def show(self, state: TableState) -> None:
        """Draw a new state; the cursor stays on its socket (or its place, if that is gone)."""
        self.state = state
        self.virtual_size = Size(self.size.width, len(state.visible) + 1)
        position = state.position(self.cursor_key) if self.cursor_key is not None else None
        if position is None:
            position = min(self.cursor_index, max(0, len(state.visible) - 1))
        self._move_cursor(position, announce=position != self.cursor_index or self._key_at(position) != self.cursor_key)
        self.refresh()

    @property
    def cursor_row(self) -> Row | None:
        visible = self.state.visible
        return visible[self.cursor_index] if 0 <= self.cursor_index < len(visible) else None

    def _key_at(self, index: int) -> object | None:
        visible = self.state.visible
        return visible[index].sock.key if 0 <= index < len(visible) else None

    def move_to_key(self, key: object) -> bool:
        position = self.state.position(key)
        if position is None:
            return False
        self._move_cursor(position)
        self.refresh()
        return True

    def _move_cursor(self, index: int, announce: bool = True) -> None:
        count = len(self.state.visible)
        index = max(0, min(index, count - 1)) if count else 0
        key = self._key_at(index)
        changed = announce or key != self.cursor_key
        self.cursor_index, self.cursor_key = index, key
        body_height = max(1, self.scrollable_content_region.height - 1)
        top = int(self.scroll_y)
        if index < top:
            self.scroll_to(y=index, animate=False, immediate=True)
        elif index >= top + body_height:
            self.scroll_to(y=index - body_height + 1, animate=False, immediate=True)
        if changed:
            self.post_message(CursorMoved())

    # -- actions -----------------------------------------------------------------------------

    def action_cursor(self, delta: int) -> None:
        self._move_cursor(self.cursor_index + delta)
        self.refresh()

    def action_page(self, direction: int) -> None:
        self.action_cursor(direction * max(1, self.scrollable_content_region.height - 2))

    def action_jump(self, index: int) -> None:
        self._move_cursor(index if index >= 0 else len(self.state.visible) - 1)
        self.refresh()

    def action_sort_next(self) -> None:
        names = [column.name for column in self.columns]
        current = names.index(self.state.sort_column) if self.state.sort_column in names else -1
        self.post_message(SortRequested(names[(current + 1) % len(names)], False))

    def action_sort_reverse(self) -> None:
        self.post_message(SortRequested(self.state.sort_column, not self.state.sort_reverse))

    def action_metrics(self) -> None:
        """Show or hide the TCP metrics columns (RTT, retransmits, bytes, rates)."""
        self.show_metrics = not self.show_metrics
        self._metrics_chosen = True
        self.refresh()

    async def _on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            column = self._column_at(offset.x + int(self.scroll_x))
            if column is not None:
                reverse = column == self.state.sort_column and not self.state.sort_reverse
                self.post_message(SortRequested(column, reverse))
        else:
            self._move_cursor(int(self.scroll_y) + offset.y - 1)
            self.refresh()

    def _column_at(self, x: int) -> str | None:
        position = 1  # after the "mine" gutter
        for column, width in zip(self.columns, self._column_widths(), strict=True):
            if position <= x < position + width + 1:
                return column.name
            position += width + 1
        return None

    # -- drawing -----------------------------------------------------------------------------

    def _column_widths(self) -> tuple[int, ...]:
        width = self.scrollable_content_region.width
        if (width, self.show_metrics) != self._widths_for:
            columns = self.columns
            widths = [column.width for column in columns]
            spare = width - 1 - sum(widths) - len(widths)
            if spare > 0:
                shares = sum(GROWING.values())
                for index, column in enumerate(columns):
                    if column.name in GROWING:
                        grown = widths[index] + spare * GROWING[column.name] // shares
                        widths[index] = min(grown, MAX_ADDRESS_WIDTH) if column.name.endswith("_ip") else grown
            self._widths, self._widths_for = tuple(widths), (width, self.show_metrics)
        return self._widths

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        widths = self._column_widths()
        if y == 0:
            return self._header_strip(widths, width)
        index = int(self.scroll_y) + y - 1
        visible = self.state.visible
        if index >= len(visible):
            return Strip.blank(width, self.rich_style)
        try:
            return self._row_strip(visible[index], index == self.cursor_index, widths, width)
        except Exception as error:  # one row that cannot be drawn must not end the dashboard
            return self._undrawable_row_strip(error, width)

    def _undrawable_row_strip(self, error: Exception, width: int) -> Strip:
        reason = f"a row could not be drawn: {error!r}"
        if reason != self._drawing_error:  # drawn again on every refresh: reported once
            self._drawing_error = reason
            self.app.post_message(ErrorOccurred(reason))  # drawn by the screen: a bubble would stop there
        style = self.rich_style + self.get_component_rich_style("socket-table--closed")
        return Strip([Segment(f" {reason}", style)]).adjust_cell_length(width, style)

    def _header_strip(self, widths: tuple[int, ...], width: int) -> Strip:
        style = self.get_component_rich_style("socket-table--header")
        segments = [Segment(" ", style)]
        for column, column_width in zip(self.columns, widths, strict=True):
            title = column.title
            if column.name == self.state.sort_column:
                title += "▼" if self.state.sort_reverse else "▲"
            segments.append(Segment(_fit(title, column_width, column) + " ", style))
        return Strip(segments).adjust_cell_length(width, style)

    def _row_strip(self, row: Row, is_cursor: bool, widths: tuple[int, ...], width: int) -> Strip:
        component = self.get_component_rich_style
        state = self.state
        base = self.rich_style
        sock = row.sock
        mine = sock.four_tuple in state.mine
        if row.mark:
            base = base + component(f"socket-table--{row.mark}")
        if is_cursor:
            base = base + component("socket-table--cursor")
        segments = [Segment("●" if mine else " ", base + component("socket-table--mine") if mine else base)]
        now = self.clock()
        for column, column_width in zip(self.columns, widths, strict=True):
            text = _fit(cell(state, row, column.name, now), column_width, column) + " "
            style = base
            if column.name == "state":
                style = base + component(f"socket-table--state-{STATE_CLASSES.get(sock.state, 'none')}")
                if row.mark:  # the mark wins over the state colour
                    style = style + component(f"socket-table--{row.mark}")
                if is_cursor:
                    style = style + component("socket-table--cursor")
            elif column.name == "count" and text.strip():
                style = base + component("socket-table--unique-warning")
            segments.append(Segment(text, style))
        return Strip(segments).adjust_cell_length(width, base)

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self.state.visible) + 1)
        if not self._metrics_chosen:  # shown by default when there is room for them
            self.show_metrics = self.size.width >= WIDE_ENOUGH_FOR_METRICS


def _fit(text: str, width: int, column: Column) -> str:
    if len(text) > width:
        return text[: max(0, width - 1)] + "…"
    return text.rjust(width) if column.align == "right" else text.ljust(width)
