"""The tests pane: each launched test with its seven-step timeline, four-tuples, statuses, errors.

Selecting a test (enter or click) asks the app to jump to its socket in the table.
"""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option, OptionDoesNotExist

from conntui.http.records import ProbeResult, Step
from conntui.http.timeline import BAR_WIDTH, scale_for, summary, timeline, tuple_text

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


class TestsPane(OptionList):
    __test__ = False  # not a pytest test class

    def show_test(self, test_id: int, result: ProbeResult) -> None:
        """Add the test, or redraw it in place as its steps complete."""
        option_id = f"test-{test_id}"
        prompt = render_test(test_id, result)
        try:
            self.replace_option_prompt(option_id, prompt)
        except OptionDoesNotExist:
            self.add_option(Option(prompt, id=option_id))
            self.highlighted = self.option_count - 1


def render_test(test_id: int, result: ProbeResult) -> Group:
    verdict_style = "yellow" if not result.done else "green" if result.ok else "bold red"
    parts: list = [Text.assemble((f"#{test_id} ", "bold"), (summary(result), verdict_style))]
    scale = scale_for(result)
    parts.append(_timeline_grid(result.steps, scale))
    for record in result.connections:
        parts.append(Text(f"  connection {record.index + 1}  {tuple_text(record)}", "bold"))
        parts.append(_timeline_grid(record.steps, scale))
        answers = "  ".join(
            f"{r.status} {r.bytes}B {r.total_ms:.1f}ms"
            if r.error is None and r.total_ms is not None
            else r.error or "…"
            for r in record.responses
        )
        if answers:
            parts.append(Text(f"    responses: {answers}", "dim"))
        if record.error:
            parts.append(Text(f"    error: {record.error}", "bold red"))
    if result.error:
        parts.append(Text(f"  error: {result.error}", "bold red"))
    return Group(*parts)


def _timeline_grid(steps: list[Step], scale: float) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(min_width=14)
    grid.add_column(justify="right", min_width=10)
    grid.add_column(min_width=BAR_WIDTH)
    grid.add_column()
    for row, step in zip(timeline(steps, scale), steps, strict=True):
        style = STEP_COLOURS.get(step.name, "white") if row.ok else "bold red"
        grid.add_row(
            Text("  " + row.label),
            Text(f"{row.ms:.2f} ms"),
            Text(row.bar, style),
            Text(row.detail + ("" if row.ok else "  ✗"), "" if row.ok else "red"),
        )
    return grid
