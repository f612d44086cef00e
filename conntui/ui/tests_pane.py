"""The tests pane: each launched test with its seven-step timeline, four-tuples, statuses, errors;
an experiment (`compare`) as its runs side by side in aligned bars.

The pane is a list of lines with a cursor: the keys move it line by line, the view follows a
running test as it grows while the cursor is on the last line, and enter on a connection's lines
asks the app to show that connection's socket (elsewhere in a test: its first socket).
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import RenderableType
from rich.segment import Segment
from rich.table import Table
from rich.text import Text
from textual.binding import Binding
from textual.events import Click, Resize
from textual.geometry import Size
from textual.strip import Strip

from conntui.http.comparison_text import COLUMN_GAP, heading, note_lines, table_lines
from conntui.http.experiments import Comparison, TestRecord
from conntui.http.records import ConnectionRecord, Step
from conntui.http.timeline import BAR_WIDTH, CALL_WIDTH, scale_for, summary, tcp_line, timeline, tuple_text
from conntui.model import FourTuple
from conntui.ui.cursor_view import CursorView
from conntui.ui.keys import CURSOR_BINDINGS
from conntui.ui.messages import SocketWanted
from conntui.ui.room import say_if_no_room

STEP_COLOURS = {
    "parse": "grey62",
    "dns": "cyan",
    "connect": "green",
    "tls": "magenta",
    "send": "blue",
    "ttfb": "yellow",
    "transfer": "bright_yellow",
    "hold": "grey50",
    "close": "red",
}


@dataclass(frozen=True)
class PaneLine:
    """One drawn line and the sockets enter on it asks for."""

    strip: Strip
    test_id: int
    four_tuples: tuple[FourTuple, ...]


class TestsPane(CursorView, can_focus=True):
    __test__ = False  # not a pytest test class

    BINDINGS = [
        *CURSOR_BINDINGS,
        Binding("enter", "show_socket", "Show socket", tooltip="In the tests pane: show this connection's socket"),
    ]
    COMPONENT_CLASSES = {"tests-pane--cursor"}

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.results: dict[int, TestRecord] = {}
        self.lines: list[PaneLine] = []
        self._drawn_width = 0

    def show_test(self, test_id: int, result: TestRecord) -> None:
        """Add the test, or redraw it in place as its steps complete; a new test is followed."""
        new = test_id not in self.results
        following = new or self.cursor >= len(self.lines) - 1
        self.results[test_id] = result
        self._draw_lines()
        if following:
            self._move_cursor(len(self.lines) - 1)
        if new:
            self._say_if_no_room()

    def _say_if_no_room(self) -> None:
        """Once laid out: its border and a line on the screen, or a word on why not."""
        # after the refresh that shows the pane, and the one that lays it out
        self.call_after_refresh(self.call_after_refresh, say_if_no_room, self, "tests pane", 2)

    def _draw_lines(self) -> None:
        width = max(1, self.scrollable_content_region.width)
        self._drawn_width = width
        console = self.app.console
        options = console.options.update_width(width)
        lines: list[PaneLine] = []
        for test_id, result in self.results.items():
            for renderable, four_tuples in parts_of_test(test_id, result, width):
                for segments in console.render_lines(renderable, options, pad=False):
                    lines.append(PaneLine(Strip(segments), test_id, four_tuples))
        self.lines = lines
        self.virtual_size = Size(width, len(lines))
        self.refresh()

    def on_resize(self, _event: Resize) -> None:
        """Redraw at a new width; keep the cursor in view at any new height (and on the last line if it was)."""
        following = self.cursor >= len(self.lines) - 1
        if self.scrollable_content_region.width != self._drawn_width and self.results:
            self._draw_lines()
        self._move_cursor(len(self.lines) - 1 if following else self.cursor)

    @property
    def line_count(self) -> int:
        return len(self.lines)

    def action_show_socket(self) -> None:
        if self.lines:
            self.post_message(SocketWanted(self.lines[self.cursor].four_tuples))

    def on_click(self, event: Click) -> None:
        offset = event.get_content_offset(self)
        if offset is not None:
            self._move_cursor(int(self.scroll_y) + offset.y)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        index = int(self.scroll_y) + y
        if index >= len(self.lines):
            return Strip.blank(width, self.rich_style)
        strip = self.lines[index].strip.crop(int(self.scroll_x), int(self.scroll_x) + width)
        strip = strip.adjust_cell_length(width, self.rich_style).apply_style(self.rich_style)
        if index == self.cursor and self.has_focus:  # over the lines' own colours, not under them
            cursor = self.get_component_rich_style("tests-pane--cursor")
            strip = Strip(Segment.apply_style(strip, post_style=cursor), strip.cell_length)
        return strip

    def on_focus(self) -> None:
        self.refresh()
        self._say_if_no_room()

    def on_blur(self) -> None:
        self.refresh()


Parts = list[tuple[RenderableType, tuple[FourTuple, ...]]]
# The bars of a comparison, by column: total time, connections, Nagle on, Nagle off.
COMPARISON_BAR_COLOURS = {"total_bar": "yellow", "conns_bar": "green", "nagle_bar": "red", "nodelay_bar": "cyan"}
INDENT = "  "  # before a comparison's table lines (its notes are indented as much)


def parts_of_test(test_id: int, result: TestRecord, width: int) -> Parts:
    """The test's renderables in order for a pane `width` cells wide, each with the sockets enter
    on its lines asks for."""
    if isinstance(result, Comparison):
        return parts_of_comparison(test_id, result, width)
    everyone = _tuples(result.connections)
    verdict_style = "yellow" if not result.done else "green" if result.ok else "bold red"
    scale = scale_for(result)
    parts: Parts = [
        (Text.assemble((f"#{test_id} ", "bold"), (summary(result), verdict_style)), everyone),
        (_timeline_grid(result.steps, scale), everyone),
    ]
    for record in result.connections:
        own = (record.four_tuple,) if record.four_tuple is not None else ()
        parts.append((Text(f"  connection {record.index + 1}  {tuple_text(record)}", "bold"), own))
        parts.append((_timeline_grid(record.steps, scale), own))
        answers = "  ".join(
            f"{r.status} {r.bytes}B {r.total_ms:.1f}ms"
            if r.error is None and r.total_ms is not None
            else r.error or "…"
            for r in record.responses
        )
        if answers:
            parts.append((Text(f"    responses: {answers}", "dim"), own))
        if (tcp := tcp_line(record)) is not None:
            parts.append((Text(f"    tcp: {tcp}", "dim"), own))
        if record.error:
            parts.append((Text(f"    error: {record.error}", "bold red"), own))
    if result.error:
        parts.append((Text(f"  error: {result.error}", "bold red"), everyone))
    return parts


def parts_of_comparison(test_id: int, comparison: Comparison, width: int) -> Parts:
    """The heading, then a line per run (or per request, for Nagle) with its bars, as many columns
    as fit `width`: enter on a run's line asks for that run's sockets, elsewhere for all of them."""
    everyone = _tuples(comparison.connections)
    by_run = {run.label: _tuples(run.result.connections) for run in comparison.runs}
    verdict_style = "yellow" if not comparison.done else "green" if comparison.ok else "bold red"
    parts: Parts = [(Text.assemble((f"#{test_id} ", "bold"), (heading(comparison), verdict_style)), everyone)]
    for number, line in enumerate(table_lines(comparison, width - len(INDENT))):
        text = Text(INDENT, "bold" if number == 0 else "")  # the first line is the header
        for index, cell in enumerate(line.cells):
            if index:
                text.append(COLUMN_GAP)
            text.append(cell, COMPARISON_BAR_COLOURS[line.bars[index]] if index in line.bars else "")
        text.rstrip()
        parts.append((text, by_run.get(line.run or "", everyone)))
    parts += [(Text(line, "dim"), everyone) for line in note_lines(comparison, width)]
    return parts


def _tuples(records: list[ConnectionRecord]) -> tuple[FourTuple, ...]:
    return tuple(record.four_tuple for record in records if record.four_tuple is not None)


def _timeline_grid(steps: list[Step], scale: float) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(min_width=14)
    grid.add_column(min_width=CALL_WIDTH)
    grid.add_column(justify="right", min_width=10)
    grid.add_column(min_width=BAR_WIDTH)
    grid.add_column(overflow="fold")  # a long word (a quoted response) is folded, never cut short
    for row, step in zip(timeline(steps, scale), steps, strict=True):
        style = STEP_COLOURS.get(step.name, "white") if row.ok else "bold red"
        grid.add_row(
            Text("  " + row.label),
            Text(row.call, "dim"),
            Text(f"{row.ms:.2f} ms"),
            Text(row.bar, style),
            Text(row.detail + ("" if row.ok else "  ✗"), "" if row.ok else "red"),
        )
    return grid
