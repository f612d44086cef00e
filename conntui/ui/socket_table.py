"""The socket table: a virtualised line-API widget over `ConnectionView.visible`.

Only the lines on screen are rendered (no per-row widgets), so 100,000 rows cost no more to
draw than 40. Line 0 is the pinned column header; clicking a title sorts by it. The cursor
follows a socket key, so it stays on the same socket across refreshes and re-sorts.
"""

from __future__ import annotations

from rich.segment import Segment
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from conntui.ui.messages import CursorMoved
from conntui.view import COLUMN_NAMES, COLUMNS, Column, ConnectionView, Row

GROWING = {"local_ip": 2, "remote_ip": 2, "process": 1}  # share of spare width
STATE_CLASSES = {
    "ESTABLISHED": "established",
    "LISTEN": "listen",
    "TIME_WAIT": "time-wait",
    "CLOSE_WAIT": "close-wait",
    "SYN_SENT": "syn",
    "SYN_RECV": "syn",
    "FIN_WAIT1": "fin",
    "FIN_WAIT2": "fin",
    "LAST_ACK": "fin",
    "CLOSING": "fin",
    "CLOSE": "close",
    "NONE": "none",
}


class SocketTable(ScrollView, can_focus=True):
    COMPONENT_CLASSES = {
        "socket-table--header",
        "socket-table--cursor",
        "socket-table--new",
        "socket-table--closed",
        "socket-table--changed",
        "socket-table--mine",
        "socket-table--unique-warning",
        *(f"socket-table--state-{name}" for name in set(STATE_CLASSES.values())),
    }
    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
        Binding("s", "sort_next", "Sort"),
        Binding("S", "sort_reverse", "Reverse", show=False),
    ]

    def __init__(self, view: ConnectionView, **kwargs) -> None:
        super().__init__(**kwargs)
        self.view = view
        self.cursor_index = 0
        self.cursor_key: object | None = None
        self._widths: tuple[int, ...] = ()
        self._widths_for = -1

    # -- data --------------------------------------------------------------------------------

    def data_changed(self) -> None:
        """Call after the view changed: keeps the cursor on its socket, redraws."""
        visible = self.view.visible
        self.virtual_size = Size(self.size.width, len(visible) + 1)
        position = self.view.position(self.cursor_key) if self.cursor_key is not None else None
        if position is None:
            position = min(self.cursor_index, max(0, len(visible) - 1))
        self._move_cursor(position, announce=position != self.cursor_index or self._key_at(position) != self.cursor_key)
        self.refresh()

    @property
    def cursor_row(self) -> Row | None:
        visible = self.view.visible
        return visible[self.cursor_index] if 0 <= self.cursor_index < len(visible) else None

    def _key_at(self, index: int) -> object | None:
        visible = self.view.visible
        return visible[index].sock.key if 0 <= index < len(visible) else None

    def move_to_key(self, key: object) -> bool:
        position = self.view.position(key)
        if position is None:
            return False
        self._move_cursor(position)
        self.refresh()
        return True

    def _move_cursor(self, index: int, announce: bool = True) -> None:
        count = len(self.view.visible)
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
            self.post_message(CursorMoved(key))

    # -- actions -----------------------------------------------------------------------------

    def action_cursor(self, delta: int) -> None:
        self._move_cursor(self.cursor_index + delta)
        self.refresh()

    def action_page(self, direction: int) -> None:
        self.action_cursor(direction * max(1, self.scrollable_content_region.height - 2))

    def action_jump(self, index: int) -> None:
        self._move_cursor(index if index >= 0 else len(self.view.visible) - 1)
        self.refresh()

    def action_sort_next(self) -> None:
        current = COLUMN_NAMES.index(self.view.sort_column)
        self.sort_by(COLUMN_NAMES[(current + 1) % len(COLUMN_NAMES)], False)

    def action_sort_reverse(self) -> None:
        self.sort_by(self.view.sort_column, not self.view.sort_reverse)

    def sort_by(self, column: str, reverse: bool) -> None:
        self.view.set_sort(column, reverse)
        self.data_changed()

    async def _on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            column = self._column_at(offset.x + int(self.scroll_x))
            if column is not None:
                reverse = column == self.view.sort_column and not self.view.sort_reverse
                self.sort_by(column, reverse)
        else:
            self._move_cursor(int(self.scroll_y) + offset.y - 1)
            self.refresh()

    def _column_at(self, x: int) -> str | None:
        position = 1  # after the "mine" gutter
        for column, width in zip(COLUMNS, self._column_widths(), strict=False):
            if position <= x < position + width + 1:
                return column.name
            position += width + 1
        return None

    # -- drawing -----------------------------------------------------------------------------

    def _column_widths(self) -> tuple[int, ...]:
        width = self.scrollable_content_region.width
        if width != self._widths_for:
            widths = [column.width for column in COLUMNS]
            spare = width - 1 - sum(widths) - len(widths)
            if spare > 0:
                shares = sum(GROWING.values())
                for index, column in enumerate(COLUMNS):
                    if column.name in GROWING:
                        widths[index] += spare * GROWING[column.name] // shares
                widths[COLUMN_NAMES.index("local_ip")] = min(widths[COLUMN_NAMES.index("local_ip")], 39)
                widths[COLUMN_NAMES.index("remote_ip")] = min(widths[COLUMN_NAMES.index("remote_ip")], 39)
            self._widths, self._widths_for = tuple(widths), width
        return self._widths

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        widths = self._column_widths()
        if y == 0:
            return self._header_strip(widths, width)
        index = int(self.scroll_y) + y - 1
        visible = self.view.visible
        if index >= len(visible):
            return Strip.blank(width, self.rich_style)
        return self._row_strip(visible[index], index == self.cursor_index, widths, width)

    def _header_strip(self, widths: tuple[int, ...], width: int) -> Strip:
        style = self.get_component_rich_style("socket-table--header")
        segments = [Segment(" ", style)]
        for column, column_width in zip(COLUMNS, widths, strict=False):
            title = column.title
            if column.name == self.view.sort_column:
                title += "▼" if self.view.sort_reverse else "▲"
            segments.append(Segment(_fit(title, column_width, column) + " ", style))
        return Strip(segments).adjust_cell_length(width, style)

    def _row_strip(self, row: Row, is_cursor: bool, widths: tuple[int, ...], width: int) -> Strip:
        component = self.get_component_rich_style
        base = self.rich_style
        sock = row.sock
        mine = sock.four_tuple in self.view.mine
        if row.mark:
            base = base + component(f"socket-table--{row.mark}")
        if is_cursor:
            base = base + component("socket-table--cursor")
        segments = [Segment("●" if mine else " ", base + component("socket-table--mine") if mine else base)]
        view = self.view
        for column, column_width in zip(COLUMNS, widths, strict=False):
            text = _fit(view.cell(row, column.name), column_width, column) + " "
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
        self.virtual_size = Size(self.size.width, len(self.view.visible) + 1)


def _fit(text: str, width: int, column: Column) -> str:
    if len(text) > width:
        return text[: max(0, width - 1)] + "…"
    return text.rjust(width) if column.align == "right" else text.ljust(width)
