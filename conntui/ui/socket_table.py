"""The socket table: a virtualised line-API widget over a `TableState`.

Only the lines on screen are rendered (no per-row widgets), so 100,000 rows cost no more to
draw than 40. Line 0 is the pinned column header; clicking a title asks for that order. The
cursor follows a socket key, so it stays on the same socket across refreshes and re-sorts.
A row that cannot be drawn shows why in its place and is reported (`ErrorOccurred`): the rest
of the table, and the dashboard, go on.

Columns are as wide as the rows on screen need (within each column's bounds). When the terminal
is too narrow for all of them, `lay_out` joins each address and port into one `ip:port` column,
then moves the columns of lowest priority off the first screen to the right (the header says
"→ more"), then squeezes the widest; `←`/`→` (or shift+wheel) scroll to every column.

When the view is grouped (`conntui.grouping`), a group's header is a line of its own kind (the
cursor stops on it; space toggles it) drawn across the columns: its name, sockets by state and
summed rates.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from conntui.grouping import Group, group_label
from conntui.model import FourTuple
from conntui.names import NO_NAMES, SERVICE_MARK, SERVICE_WIDTH, Names
from conntui.text import cell_width, fit_cells, printable
from conntui.ui.keys import CURSOR_BINDINGS
from conntui.ui.messages import CursorMoved, ErrorOccurred, GroupToggleRequested, SortRequested
from conntui.view import COLUMN_BY_NAME, COLUMNS, EMPTY_STATE, Column, Row, TableState, format_bytes

WIDE_ENOUGH_FOR_METRICS = 200  # columns
MORE_HINT = " → more"  # at the right end of the first screen's header when columns are off screen
MORE_RIGHT = "→"  # in its last cell once scrolled, while columns remain to the right
MORE_LEFT = "←"  # in the header's gutter while columns are off screen to the left
GUTTER = 1  # the "mine" mark before the first column
PORT_COLUMNS = frozenset({"local_port", "remote_port"})  # wider when service names are shown
JOINED_PARTS = frozenset(part for column in COLUMNS for part in column.parts)
STATE_CLASSES = {
    "ESTABLISHED": "established", "LISTEN": "listen", "TIME_WAIT": "time-wait", "CLOSE_WAIT": "close-wait",
    "SYN_SENT": "syn", "SYN_RECV": "syn", "FIN_WAIT1": "fin", "FIN_WAIT2": "fin", "LAST_ACK": "fin",
    "CLOSING": "fin", "CLOSE": "close", "NONE": "none",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Layout:
    """Where each column goes: those on the first screen, then those off it to the right."""

    columns: tuple[Column, ...]
    widths: tuple[int, ...]
    starts: tuple[int, ...]  # x of each column on the line (the gutter is at 0)
    first_screen: int  # how many of `columns` fit on the first screen
    gap: int  # blank cells between them and the rest, so that no part of the rest shows on the first screen
    width: int  # of the whole line

    @property
    def hidden(self) -> bool:
        return self.first_screen < len(self.columns)


def lay_out(columns: Sequence[Column], natural: dict[str, int], width: int) -> Layout:
    """The columns' places for a screen `width` wide, given the width each one's text needs.

    Split addresses and ports when every column but the metrics fits so; else one `ip:port`
    column per end. Then columns leave the first screen by priority (the highest number and the
    rightmost first) until the rest fit beside the "→ more" hint, and if the priority-1 columns
    still do not fit, the widest of them give up characters down to their minimum width.
    """
    split = _fit_columns([column for column in columns if not column.parts], natural, width)
    if all(column.metric for column in split.columns[split.first_screen :]) and _unsqueezed(split, natural):
        return split
    return _fit_columns([column for column in columns if column.name not in JOINED_PARTS], natural, width)


def _unsqueezed(layout: Layout, natural: dict[str, int]) -> bool:
    return all(natural[column.name] == width for column, width in zip(layout.columns, layout.widths, strict=True))


def _fit_columns(candidates: list[Column], natural: dict[str, int], width: int) -> Layout:
    kept = list(candidates)

    def needed(columns: list[Column]) -> int:
        return GUTTER + sum(natural[column.name] + 1 for column in columns)

    by_priority = sorted(candidates, key=lambda column: (column.priority, candidates.index(column)), reverse=True)
    for column in by_priority:
        room = width - (len(MORE_HINT) if len(kept) < len(candidates) else 0)
        if needed(kept) <= room or column.priority == 1:
            break
        kept.remove(column)
    room = width - (len(MORE_HINT) if len(kept) < len(candidates) else 0)
    widths = {column.name: natural[column.name] for column in candidates}
    excess = needed(kept) - room
    while excess > 0:  # squeeze the column with the most to give, one character at a time
        slack, name = max((widths[c.name] - min(c.min_width, natural[c.name]), c.name) for c in kept)
        if slack <= 0:
            break
        widths[name] -= 1
        excess -= 1
    ordered = kept + [column for column in candidates if column not in kept]
    starts, x, gap = [], GUTTER, 0
    for index, column in enumerate(ordered):
        if index == len(kept):  # the first screen shows no part of the columns it has no room for
            gap = max(0, width - x)
            x += gap
        starts.append(x)
        x += widths[column.name] + 1
    return Layout(tuple(ordered), tuple(widths[column.name] for column in ordered), tuple(starts), len(kept), gap, x)


@dataclass(frozen=True, slots=True)
class _Page:
    """The rows on screen, their cell texts (for every column, split and joined) and the layout they need."""

    key: tuple
    top: int
    texts: list[dict[str, str] | Exception | None]  # column name -> text for each row on screen, or why it
    # has none; None for a group's header
    layout: Layout


class SocketTable(ScrollView, can_focus=True):
    COMPONENT_CLASSES = {
        "socket-table--header", "socket-table--cursor", "socket-table--new", "socket-table--closed",
        "socket-table--changed", "socket-table--mine", "socket-table--unique-warning", "socket-table--more",
        "socket-table--group",
        *(f"socket-table--state-{name}" for name in set(STATE_CLASSES.values())),
    }  # fmt: skip
    BINDINGS = [
        *CURSOR_BINDINGS,
        Binding("left", "scroll_columns(-1)", "Columns left", show=False, tooltip="Scroll the table a column left"),
        Binding("right", "scroll_columns(1)", "Columns right", show=False, tooltip="Scroll the table a column right"),
        Binding("s", "sort_next", "Sort", tooltip="Sort by the next column on screen (or click a column title)"),
        Binding("S", "sort_reverse", "Reverse", show=False, tooltip="Reverse the order of the sort"),
        Binding(
            "m",
            "metrics",
            "Metrics",
            show=False,
            tooltip="Show or hide the TCP metrics: RTT, retransmits, bytes, rates",
        ),
        Binding(
            "space", "toggle_group", "Fold group", show=False, tooltip="Collapse or expand the group at the cursor"
        ),
    ]

    def __init__(self, clock: Callable[[], float] = time.monotonic, names: Names = NO_NAMES, **kwargs) -> None:
        super().__init__(**kwargs)
        self.clock = clock
        self.names = names  # service and host names, when shown
        self.state: TableState = EMPTY_STATE
        self.show_metrics = False
        self._metrics_chosen = False  # once the user toggles them, the width no longer decides
        self.cursor_index = 0
        self.cursor_key: object | None = None
        self._page_cache: _Page | None = None
        # The widest text each column has drawn, kept while the same rows are shown (same filter and
        # grouping): a sort or a scroll that brings narrower or wider rows into view moves no column.
        self._widest: dict[str, int] = {}
        self._widest_for: tuple[object, ...] = ()
        self._drawing_error = ""
        self._frame: tuple[Style, Region] | None = None  # while a frame is drawn: the style and region of its lines

    @property
    def columns(self) -> tuple[Column, ...]:
        """Every column drawn, in order: those on the first screen, then those off it to the right."""
        return self._page().layout.columns

    @property
    def columns_width(self) -> int:
        """The cells every column together needs, side by side."""
        return self._page().layout.width

    @property
    def on_screen(self) -> list[Column]:
        """The columns wholly inside the screen at the current horizontal scroll."""
        layout, left = self._page().layout, int(self.scroll_x)
        right = left + self.scrollable_content_region.width
        return [
            column
            for column, start, width in zip(layout.columns, layout.starts, layout.widths, strict=True)
            if start >= left and start + width <= right
        ]

    # -- data --------------------------------------------------------------------------------

    def show(self, state: TableState) -> None:
        """Draw a new state; the cursor stays on its socket (or its place, if that is gone)."""
        self.state = state
        self.virtual_size = Size(self.virtual_size.width, len(state.lines) + 1)
        position = None
        if self.cursor_key is not None:  # where it was, as a rule: no lookup among every line then
            stayed = self._key_at_in(state, self.cursor_index) == self.cursor_key
            position = self.cursor_index if stayed else state.position(self.cursor_key)
        if position is None:  # in a group just collapsed: on its header
            position = state.hidden.get(self.cursor_key)
        if position is None:
            position = min(self.cursor_index, max(0, len(state.lines) - 1))
        self._move_cursor(position, announce=position != self.cursor_index or self._key_at(position) != self.cursor_key)
        self.refresh()

    def redraw_changed_cells(self) -> None:
        """Time moved on (ages) or names came in: redraw only the columns whose text changed on
        screen, and nothing when none did; everything when the layout changed with them."""
        before = self._page_cache
        page = self._page()
        if page is before:
            return
        if (
            before is None
            or (before.top, before.layout, len(before.texts)) != (page.top, page.layout, len(page.texts))
            or any(type(old) is not type(new) for old, new in zip(before.texts, page.texts, strict=True))
        ):
            self.refresh()
            return
        changed = {
            name
            for old, new in zip(before.texts, page.texts, strict=True)
            if isinstance(old, dict) and isinstance(new, dict) and old != new
            for name, text in new.items()
            if old.get(name) != text
        }
        left, layout = int(self.scroll_x), page.layout
        for column, start, width in zip(layout.columns, layout.starts, layout.widths, strict=True):
            if column.name in changed:
                self.refresh(Region(start - left, 1, width, len(page.texts)))

    @property
    def cursor_line(self) -> Row | Group | None:
        lines = self.state.lines
        return lines[self.cursor_index] if 0 <= self.cursor_index < len(lines) else None

    @property
    def cursor_row(self) -> Row | None:
        """The socket's row under the cursor (None on a group's header)."""
        line = self.cursor_line
        return line if isinstance(line, Row) else None

    def _key_at(self, index: int) -> object | None:
        return self._key_at_in(self.state, index)

    @staticmethod
    def _key_at_in(state: TableState, index: int) -> object | None:
        lines = state.lines
        return lines[index].key if 0 <= index < len(lines) else None

    def move_to_key(self, key: object) -> bool:
        position = self.state.position(key)
        if position is None:
            return False
        self._move_cursor(position)
        self.refresh()
        return True

    def _move_cursor(self, index: int, announce: bool = True) -> None:
        count = len(self.state.lines)
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
        self._move_cursor(index if index >= 0 else len(self.state.lines) - 1)
        self.refresh()

    def action_toggle_group(self) -> None:
        """Collapse or expand the group whose header is under the cursor."""
        line = self.cursor_line
        if isinstance(line, Group):
            self.post_message(GroupToggleRequested(line.key))

    def action_sort_next(self) -> None:
        """Sort by the next column on screen (what cannot be seen is not sorted by)."""
        shown = self.on_screen
        if not shown:
            return
        names = [column.name for column in shown]
        current = next((index for index, column in enumerate(shown) if self._is_sorted_by(column)), -1)
        self.post_message(SortRequested(names[(current + 1) % len(names)], False))

    def action_scroll_columns(self, direction: int) -> None:
        """Scroll sideways to the next column's start (`→`) or the previous one's (`←`)."""
        x = int(self.scroll_x)
        starts = [0, *self._page().layout.starts[1:]]
        if direction > 0:
            target = next((start for start in starts if start > x), x)
        else:
            target = next((start for start in reversed(starts) if start < x), 0)
        self.scroll_to(x=target, animate=False, immediate=True, force=True)

    def action_sort_reverse(self) -> None:
        self.post_message(SortRequested(self.state.sort_column, not self.state.sort_reverse))

    def action_metrics(self) -> None:
        """Show or hide the TCP metrics columns (RTT, retransmits, bytes, rates)."""
        self.show_metrics = not self.show_metrics
        self._metrics_chosen = True
        if self.show_metrics:  # bring them into view, even if they had to go off screen
            layout = self._page().layout
            first = next(index for index, column in enumerate(layout.columns) if column.metric)
            if first >= layout.first_screen:
                self.scroll_to(x=layout.starts[first], animate=False, immediate=True, force=True)
        else:  # back to the first screen: no view left in the middle of a column
            self.scroll_to(x=0, animate=False, immediate=True, force=True)
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
        layout = self._page().layout
        for column, start, width in zip(layout.columns, layout.starts, layout.widths, strict=True):
            if start <= x < start + width + 1:
                return column.name
        return None

    def _is_sorted_by(self, column: Column) -> bool:
        """Whether this column shows the order: its own, a part's (joined), or its whole's (split)."""
        sort_column = self.state.sort_column
        if column.name == sort_column or sort_column in column.parts:
            return True
        whole = COLUMN_BY_NAME.get(sort_column)
        return whole is not None and whole.parts[:1] == (column.name,)

    # -- drawing -----------------------------------------------------------------------------

    def render_lines(self, crop: Region) -> list[Strip]:
        """One frame's lines: the widget's style and region are looked up once for all of them
        (each lookup walks the DOM: once a line, they were a third of a frame)."""
        self._frame = (self.rich_style, self.scrollable_content_region)
        try:
            return super().render_lines(crop)
        finally:
            self._frame = None

    def _base_style(self) -> Style:
        return self._frame[0] if self._frame is not None else self.rich_style

    def _region(self) -> Region:
        return self._frame[1] if self._frame is not None else self.scrollable_content_region

    def _page(self) -> _Page:
        """The rows on screen and the layout they need, built once per change (not once per line)."""
        region = self._region()
        top, now = int(self.scroll_y), self.clock()
        names = self.names
        key = (self.state, top, region.width, region.height, self.show_metrics, int(now), names.version)
        page = self._page_cache
        if page is not None and page.key == key:
            return page
        state = self.state
        columns = [self._as_shown(column) for column in COLUMNS if self.show_metrics or not column.metric]
        counts = state.tuple_counts
        lines = state.lines[top : top + max(0, region.height - 1)]
        texts = [_cell_texts(line, columns, counts, now, names) if isinstance(line, Row) else None for line in lines]
        drawable = [row_texts for row_texts in texts if isinstance(row_texts, dict)]
        shown_rows = (state.filter.text, state.grouping, self.show_metrics, names.services_shown)
        if shown_rows != self._widest_for:
            self._widest, self._widest_for = {}, shown_rows
        natural, kept = {}, self._widest
        for column in columns:
            widest = max((cell_width(row_texts[column.name]) for row_texts in drawable), default=0)
            widest = kept[column.name] = max(widest, kept.get(column.name, 0))
            natural[column.name] = max(len(column.title), min(column.max_width, widest))  # titles are never cut
        layout = self._with_room_for_the_marker(columns, natural, region.width)
        self._page_cache = page = _Page(key, top, texts, layout)
        if self.virtual_size.width != layout.width:  # the next frame scrolls as far as the last column
            self.virtual_size = Size(layout.width, len(state.lines) + 1)
        return page

    def _with_room_for_the_marker(self, columns: list[Column], natural: dict[str, int], width: int) -> Layout:
        """`lay_out`'s layout with a cell more for the sort marker in every column as wide as its title,
        when the screen has room for all of them: the same columns, the rest moved along. Without
        it, a sorted column's marker takes the space after its title (`_title`). Either way the layout
        does not depend on which column is sorted: the sort never moves a column."""
        layout = lay_out(columns, natural, width)
        first = list(zip(layout.columns[: layout.first_screen], layout.widths, strict=False))
        title_wide = {column.name for column, column_width in first if len(column.title) >= column_width}
        if not title_wide:
            return layout
        wider = lay_out(columns, {**natural, **{name: natural[name] + 1 for name in title_wide}}, width)
        widths = tuple(
            column_width + (column.name in title_wide)
            for column, column_width in zip(layout.columns, layout.widths, strict=True)
        )
        if (wider.columns, wider.widths, wider.first_screen) == (layout.columns, widths, layout.first_screen):
            return wider
        return layout

    def _as_shown(self, column: Column) -> Column:
        """With service names shown, a port column is wider and left-aligned (numbers padded)."""
        if self.names.services_shown and column.name in PORT_COLUMNS:
            return replace(column, align="left", max_width=column.max_width + SERVICE_WIDTH)
        return column

    def render_line(self, y: int) -> Strip:
        width = self._region().width
        page = self._page()
        left = int(self.scroll_x)
        if y == 0:
            return self._header_strip(page.layout, left, width)
        index = page.top + y - 1
        lines = self.state.lines
        if index >= len(lines):
            return Strip.blank(width, self._base_style())
        row = lines[index]
        if isinstance(row, Group):
            return self._group_strip(row, index == self.cursor_index, width)
        texts = page.texts[y - 1] if y - 1 < len(page.texts) else None
        if texts is None:  # a line below the page (asked for directly)
            texts = _cell_texts(row, page.layout.columns, self.state.tuple_counts, self.clock(), self.names)
        try:
            if isinstance(texts, Exception):
                raise texts
            return self._row_strip(row, texts, index == self.cursor_index, page.layout).crop(left, left + width)
        except Exception as error:  # one row that cannot be drawn must not end the dashboard
            return self._undrawable_row_strip(error, width)

    def _undrawable_row_strip(self, error: Exception, width: int) -> Strip:
        reason = f"a row could not be drawn: {error!r}"
        if reason != self._drawing_error:  # drawn again on every refresh: reported once
            self._drawing_error = reason
            self.screen.post_message(ErrorOccurred(reason))  # to the screen that shows it: no bubble from a render
        style = self._base_style() + self.get_component_rich_style("socket-table--closed")
        return Strip([Segment(f" {reason}", style)]).adjust_cell_length(width, style)

    def _group_strip(self, group: Group, is_cursor: bool, width: int) -> Strip:
        """A group's header, from the left edge whatever the sideways scroll: it belongs to no column."""
        names = self.names
        label = group_label(group.key, names.host, lambda port: names.service(port, "tcp"))
        sockets = "socket" if group.count == 1 else "sockets"
        moving = group.tx_rate or group.rx_rate  # idle groups say nothing of rates
        rates = f"↑ {format_bytes(group.tx_rate)}/s ↓ {format_bytes(group.rx_rate)}/s" if moving else ""
        fold = "▸" if group.collapsed else "▾"
        text = f"{fold} {printable(label)} — {group.count} {sockets}: {group.states_text()}   {rates}".rstrip()
        style = self._base_style() + self.get_component_rich_style("socket-table--group")
        if is_cursor:
            style = style + self.get_component_rich_style("socket-table--cursor")
        return Strip([Segment(" " + text, style)]).adjust_cell_length(width, style)

    def _header_strip(self, layout: Layout, left: int, width: int) -> Strip:
        style = self.get_component_rich_style("socket-table--header")
        segments = [Segment(" " * GUTTER, style)]
        for index, (column, column_width) in enumerate(zip(layout.columns, layout.widths, strict=True)):
            if index == layout.first_screen and layout.gap:
                segments.append(Segment(" " * layout.gap, style))
            segments.append(Segment(self._title(column, column_width), style))
        strip = Strip(segments).adjust_cell_length(max(width, layout.width), style).crop(left, left + width)
        hint = self.get_component_rich_style("socket-table--more")
        if left > 0:
            strip = Strip.join([Strip([Segment(MORE_LEFT, style + hint)]), strip.crop(1, width)])
        if left + width < layout.width:  # the first screen keeps room for the words; scrolled, an arrow
            more = MORE_HINT if left == 0 else MORE_RIGHT
            strip = Strip.join([strip.crop(0, width - len(more)), Strip([Segment(more, style + hint)])])
        return strip

    def _title(self, column: Column, width: int) -> str:
        """A column's title and the space after it. The sorted one's marker goes beside the title, on the
        side away from its alignment (the title stays where it is), or in that space when the title
        fills the column: the sort never moves a title, widens a column, nor moves one off the screen."""
        if not self._is_sorted_by(column):
            return _fit(column.title, width, column) + " "
        marker = "▼" if self.state.sort_reverse else "▲"
        if len(column.title) >= width:
            return _fit(column.title, width, column) + marker
        marked = marker + column.title if column.align == "right" else column.title + marker
        return _fit(marked, width, column) + " "

    def _row_strip(self, row: Row, texts: dict[str, str], is_cursor: bool, layout: Layout) -> Strip:
        """One row's line: neighbouring cells of the same style share one segment (most of the line
        is one: fewer segments make every later step of the frame cheaper)."""
        component = self.get_component_rich_style
        base = self._base_style()
        sock = row.sock
        mine = sock.four_tuple in self.state.mine
        if row.mark:
            base = base + component(f"socket-table--{row.mark}")
        if is_cursor:
            base = base + component("socket-table--cursor")
        segments = [Segment("●" if mine else " ", base + component("socket-table--mine") if mine else base)]
        run: list[str] = []  # the texts of the current run of cells in the base style

        def cell(text: str, style: Style) -> None:
            if run:
                segments.append(Segment("".join(run), base))
                run.clear()
            segments.append(Segment(text, style))

        for index, (column, column_width) in enumerate(zip(layout.columns, layout.widths, strict=True)):
            if index == layout.first_screen and layout.gap:
                run.append(" " * layout.gap)
            text = _fit(texts[column.name], column_width, column) + " "
            if column.name == "state":
                style = base + component(f"socket-table--state-{STATE_CLASSES.get(sock.state, 'none')}")
                if row.mark:  # the mark wins over the state colour
                    style = style + component(f"socket-table--{row.mark}")
                if is_cursor:
                    style = style + component("socket-table--cursor")
                cell(text, style)
            elif column.name == "count" and text.strip():
                cell(text, base + component("socket-table--unique-warning"))
            else:
                run.append(text)
        if run:
            segments.append(Segment("".join(run), base))
        return Strip(segments).adjust_cell_length(max(self._region().width, layout.width), base)

    def on_resize(self) -> None:
        self.virtual_size = Size(self.virtual_size.width, len(self.state.lines) + 1)
        if not self._metrics_chosen:  # shown by default when there is room for them
            self.show_metrics = self.size.width >= WIDE_ENOUGH_FOR_METRICS


def _cell_texts(
    row: Row, columns: Sequence[Column], counts: Counter[FourTuple], now: float, names: Names
) -> dict[str, str] | Exception:
    """Column name -> the row's text (with the names shown), or the error that stops the row from being drawn."""
    try:
        texts = {column.name: column.text(row, counts, now) for column in columns}
        names.decorate(texts, row.sock)
        return texts
    except Exception as error:
        return error


def _fit(text: str, width: int, column: Column) -> str:
    """The text cut (with …) or padded to `width`, as the column aligns and clips. An endpoint's
    service name (after SERVICE_MARK) is cut first, then dropped: the address and port stay."""
    if SERVICE_MARK in text:
        endpoint, _, service = text.partition(SERVICE_MARK)
        if len(endpoint) + 2 > width:
            text = endpoint
        elif len(text) > width:
            return f"{endpoint} {service}"[: width - 1] + "…"
        else:
            text = f"{endpoint} {service}"
    if len(text) > width and column.clip == "middle" and width >= 5 and text.isascii():
        head = (width - 1) // 3  # `192.168…0:55555`: the port stays readable
        return text[:head] + "…" + text[head + 1 - width :]
    return fit_cells(text, width, column.align)  # a process name may hold wide characters
