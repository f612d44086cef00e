"""The budget view (`b`): the four-tuple budget of every destination of the outgoing sockets.

A line-API widget like the tests pane: on top, pinned, the port range, the reserved ports, the
ceiling's rule and `tcp_tw_reuse` with its meaning, then the column titles; below them one line
per destination, highest usage first, coloured from `WARNING_USAGE` and `ERROR_USAGE`. The report
is computed on the engine thread (`conntui.budget.BudgetTracker`); the pane only draws the lines
on screen. The cursor stays on its destination across updates; enter on it asks the dashboard to
filter the table to that destination's sockets.

At 80 columns the columns of lowest priority leave the first screen (protocol, other, local IP, …)
for the right, where ← and → scroll (the column titles say "→ more", as the socket table's do), and
the header uses the short form of `tcp_tw_reuse`'s meaning.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.events import Click, Resize
from textual.geometry import Size
from textual.strip import Strip

from conntui.budget import (
    TIME_WAIT_S,
    BudgetLine,
    BudgetReport,
    DestinationKey,
    format_duration,
    format_rate,
    tw_reuse_meaning,
    usage_level,
)
from conntui.model import format_endpoint
from conntui.ui.cursor_view import CursorView
from conntui.ui.keys import CURSOR_BINDINGS
from conntui.ui.messages import DestinationChosen, ErrorOccurred
from conntui.ui.room import say_if_no_room
from conntui.ui.socket_table import MORE_HINT, MORE_LEFT, MORE_RIGHT

WIDE_HEADER = 120  # from this width the header says tcp_tw_reuse's meaning in full


@dataclass(frozen=True, slots=True)
class BudgetColumn:
    title: str
    text: Callable[[BudgetLine], str]
    right: bool = True
    priority: int = 1  # 1: always shown; higher numbers leave first when the line is too narrow


BUDGET_COLUMNS: tuple[BudgetColumn, ...] = (
    BudgetColumn("Proto", lambda line: line.proto, right=False, priority=5),
    BudgetColumn("From", lambda line: line.local_ip, right=False, priority=3),
    BudgetColumn("Destination", lambda line: format_endpoint(line.remote_ip, line.remote_port), right=False),
    BudgetColumn("Estab", lambda line: f"{line.established:,}", priority=2),
    BudgetColumn("TimeWait", lambda line: f"{line.time_wait:,}"),
    BudgetColumn("Other", lambda line: f"{line.other:,}", priority=4),
    BudgetColumn("Ports", lambda line: f"{line.ports_in_use:,}"),
    BudgetColumn("Usage", lambda line: f"{line.usage:.1%}"),
    BudgetColumn("New/s", lambda line: format_rate(line.new_per_s)),
    BudgetColumn("Ceiling/s", lambda line: f"{line.ceiling_per_s:,.0f}", priority=2),
    BudgetColumn("Exhausted in", lambda line: format_duration(line.exhaustion_s), priority=2),
)
MAX_CELL = 41  # an IPv6 endpoint is cut in the middle beyond this


def fit_budget_columns(lines: Sequence[BudgetLine], width: int) -> tuple[list[BudgetColumn], list[int]]:
    """The columns that fit `width` (those of lowest priority leave first, and once one has left,
    an arrow saying so needs its room) and their widths, as wide as `lines` (the lines on screen) need."""
    natural = _natural_widths(lines)
    kept = list(range(len(BUDGET_COLUMNS)))
    by_priority = sorted(kept, key=lambda index: (BUDGET_COLUMNS[index].priority, index), reverse=True)
    for index in by_priority:
        room = width if len(kept) == len(BUDGET_COLUMNS) else width - len(" " + MORE_RIGHT)
        if sum(natural[kept_index] + 1 for kept_index in kept) <= room or BUDGET_COLUMNS[index].priority == 1:
            break
        kept.remove(index)
    return [BUDGET_COLUMNS[index] for index in kept], [natural[index] for index in kept]


@dataclass(frozen=True)
class BudgetLayout:
    """Every column in drawn order, those on the first screen (`first_screen` of them) then the
    others, off it to the right from `screen` cells on; each column's width."""

    columns: list[BudgetColumn]
    widths: list[int]
    first_screen: int
    screen: int

    def join(self, cells: Sequence[str]) -> str:
        """The line of these cells (one per column, padded to its width)."""
        first, rest = " ".join(cells[: self.first_screen]), " ".join(cells[self.first_screen :])
        return first.ljust(self.screen) + rest if rest else first

    @property
    def width(self) -> int:
        return len(self.join([" " * width for width in self.widths]))

    @property
    def starts(self) -> list[int]:
        """Where each column starts, sideways: the first off-screen one where the screen ends."""
        first = [sum(width + 1 for width in self.widths[:index]) for index in range(self.first_screen)]
        rest = self.widths[self.first_screen :]
        return first + [self.screen + sum(width + 1 for width in rest[:index]) for index in range(len(rest))]


def lay_out_budget(lines: Sequence[BudgetLine], width: int) -> BudgetLayout:
    """The columns that fit `width` first (`fit_budget_columns`), then the rest in their order."""
    first, first_widths = fit_budget_columns(lines, width)
    natural = _natural_widths(lines)
    rest = [index for index, column in enumerate(BUDGET_COLUMNS) if column not in first]
    columns = first + [BUDGET_COLUMNS[index] for index in rest]
    return BudgetLayout(columns, first_widths + [natural[index] for index in rest], len(first), width)


def _natural_widths(lines: Sequence[BudgetLine]) -> list[int]:
    return [
        max([len(column.title), *(min(MAX_CELL, len(column.text(line))) for line in lines)])  # no lines: the title
        for column in BUDGET_COLUMNS
    ]


def budget_header(report: BudgetReport, width: int) -> list[str]:
    """The two pinned lines: the port space and the ceiling's rule; tcp_tw_reuse and its meaning."""
    space, wide = report.space, width >= WIDE_HEADER
    setting = "?" if report.tw_reuse is None else report.tw_reuse
    ports = f"{space.low}-{space.high}: {space.usable:,} usable, {space.reserved_in_range:,} reserved"
    rule = f"free ports / {TIME_WAIT_S:.0f} s"
    return [
        f"ephemeral ports {ports} · ceiling per destination = {rule} in TIME_WAIT"
        if wide
        else f"ports {ports} · ceiling = {rule}",
        f"tcp_tw_reuse={setting}: {tw_reuse_meaning(report.tw_reuse, short=not wide)}",
    ]


def _cell(text: str, width: int, right: bool) -> str:
    if len(text) > width:
        head = (width - 1) // 3  # cut in the middle: an endpoint keeps its port
        return text[:head] + "…" + text[head + 1 - width :]
    return text.rjust(width) if right else text.ljust(width)


class BudgetPane(CursorView, can_focus=True):
    BINDINGS = [
        *CURSOR_BINDINGS,
        Binding(
            "enter",
            "choose",
            "Filter destination",
            show=False,
            tooltip="In the budget view: filter the table to this destination",
        ),
        Binding("left", "scroll_columns(-1)", "Columns left", show=False),
        Binding("right", "scroll_columns(1)", "Columns right", show=False),
    ]
    COMPONENT_CLASSES = {
        "budget-pane--header",
        "budget-pane--titles",
        "budget-pane--cursor",
        "budget-pane--warning",
        "budget-pane--error",
        "budget-pane--more",
    }
    PINNED = 3  # the header's two lines and the column titles

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.report: BudgetReport | None = None
        self.unavailable = ""  # why there is no budget on this system
        self._cursor_destination: DestinationKey | None = None
        self._drawing_error = ""

    @property
    def lines(self) -> tuple[BudgetLine, ...]:
        return self.report.lines if self.report is not None else ()

    def show(self, report: BudgetReport) -> None:
        """Take the engine's latest report; the cursor stays on its destination while it is there."""
        self.report = report
        self.virtual_size = Size(self.virtual_size.width, self.PINNED + len(report.lines))
        index = next(
            (i for i, line in enumerate(report.lines) if line.destination == self._cursor_destination), self.cursor
        )
        self._move_cursor(index)

    def show_unavailable(self, reason: str) -> None:
        self.unavailable = reason
        self.refresh()

    def select_destination(self, destination: DestinationKey) -> None:
        """Put the cursor on the destination's line, now or when a report brings it."""
        self._cursor_destination = destination
        index = next((i for i, line in enumerate(self.lines) if line.destination == destination), None)
        if index is not None:
            self._move_cursor(index)

    @property
    def cursor_line(self) -> BudgetLine | None:
        return self.lines[self.cursor] if self.cursor < len(self.lines) else None

    @property
    def line_count(self) -> int:
        return len(self.lines)

    def _cursor_moved(self) -> None:
        line = self.cursor_line
        self._cursor_destination = line.destination if line is not None else None

    def action_scroll_columns(self, direction: int) -> None:
        """Scroll sideways to the next column's start (`→`) or the previous one's (`←`)."""
        x = int(self.scroll_x)
        starts = self._layout().starts
        if direction > 0:
            target = next((start for start in starts if start > x), x)
        else:
            target = next((start for start in reversed(starts) if start < x), 0)
        self.scroll_to(x=target, animate=False, immediate=True, force=True)

    def action_choose(self) -> None:
        line = self.cursor_line
        if line is not None:
            self.post_message(DestinationChosen(line.destination))

    def on_click(self, event: Click) -> None:
        offset = event.get_content_offset(self)
        if offset is not None and offset.y >= self.PINNED:
            self._move_cursor(int(self.scroll_y) + offset.y - self.PINNED)

    def on_resize(self, _event: Resize) -> None:
        self.virtual_size = Size(self.virtual_size.width, self.PINNED + len(self.lines))
        self._move_cursor(self.cursor)

    def on_focus(self) -> None:
        self.refresh()
        # its border with the title, the pinned lines and a destination, or a word on why not
        self.call_after_refresh(say_if_no_room, self, "budget view", 1 + self.PINNED + 1)

    def on_blur(self) -> None:
        self.refresh()

    def _on_screen(self) -> tuple[BudgetLine, ...]:
        top = int(self.scroll_y)
        return self.lines[top : top + max(0, self.scrollable_content_region.height - self.PINNED)]

    def _layout(self) -> BudgetLayout:
        """The columns for the lines on screen; the sideways scroll reaches the last one."""
        layout = lay_out_budget(self._on_screen(), self.scrollable_content_region.width)
        if self.virtual_size.width != layout.width:
            self.virtual_size = Size(layout.width, self.PINNED + len(self.lines))
        return layout

    def render_line(self, y: int) -> Strip:
        try:
            return self._line(y)
        except Exception as error:  # a line that cannot be drawn must not end the dashboard
            reason = f"a budget line could not be drawn: {error!r}"
            if reason != self._drawing_error:  # drawn again on every refresh: reported once
                self._drawing_error = reason
                self.screen.post_message(ErrorOccurred(reason))
            return self._text_strip(reason, self.rich_style, self.scrollable_content_region.width)

    def _line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        report = self.report
        if report is None:
            message = f"No budget on this system: {self.unavailable}" if self.unavailable else "waiting for a poll…"
            return self._text_strip(message if y == 0 else "", base, width)
        if y < 2:  # pinned sideways too
            style = base + self.get_component_rich_style("budget-pane--header")
            return self._text_strip(budget_header(report, width)[y], style, width)
        layout, left = self._layout(), int(self.scroll_x)
        columns, widths = layout.columns, layout.widths
        if y == 2:
            style = base + self.get_component_rich_style("budget-pane--titles")
            titles = layout.join([_cell(c.title, w, c.right) for c, w in zip(columns, widths, strict=True)])
            return self._titles_strip(titles[left : left + width], style, left, width, layout.width)
        index = int(self.scroll_y) + y - self.PINNED
        if index >= len(report.lines):
            return Strip.blank(width, base)
        line = report.lines[index]
        style = base
        if level := usage_level(line.usage):
            style += self.get_component_rich_style(f"budget-pane--{level}", partial=True)
        if index == self.cursor and self.has_focus:  # a background only: the usage's colour stays
            style += self.get_component_rich_style("budget-pane--cursor", partial=True)
        cells = layout.join([_cell(c.text(line), w, c.right) for c, w in zip(columns, widths, strict=True)])
        return self._text_strip(cells[left : left + width], style, width)

    def _titles_strip(self, titles: str, style: Style, left: int, width: int, whole: int) -> Strip:
        """The column titles with "→ more" at the right end while columns are off screen to the right
        (an arrow alone once scrolled, or where the words have no room), and ← at the left end once
        scrolled, as the socket table's header."""
        hint = style + self.get_component_rich_style("budget-pane--more")
        strip = self._text_strip(titles, style, width)
        if left > 0:
            strip = Strip.join([Strip([Segment(MORE_LEFT, hint)]), strip.crop(1, width)])
        if left + width < whole:
            room = width - len(titles.rstrip())
            more = MORE_HINT if left == 0 and room >= len(MORE_HINT) else MORE_RIGHT
            strip = Strip.join([strip.crop(0, width - len(more)), Strip([Segment(more, hint)])])
        return strip

    @staticmethod
    def _text_strip(text: str, style: Style, width: int) -> Strip:
        if len(text) > width:  # never wider than the pane
            text = text[: max(0, width - 1)] + "…"
        return Strip([Segment(text, style)]).adjust_cell_length(width, style)
