"""The overview strip (`o`): a few lines above the table, drawn from the engine's `Overview`."""

from __future__ import annotations

from rich.console import Group as RenderGroup
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from conntui.overview import Overview
from conntui.text import printable
from conntui.view import format_bytes, sparkline

BAR_WIDTH = 14  # cells of the longest state bar
STATE_LINES = 4  # states shown (the most common)


def _bar(count: int, top: int) -> str:
    return "█" * max(1, round(count / top * BAR_WIDTH)) if count else ""


def _top(title: str, items: list[str]) -> Text:
    return Text.assemble((title, "bold"), " · ".join(items) or "-")


def render_overview(overview: Overview) -> RenderGroup:
    """The strip's lines: states as bars beside the sparklines, then the top lists."""
    grid = Table.grid(padding=(0, 2), expand=True)
    grid.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
    grid.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
    top_count = max((count for _, count in overview.states), default=0)
    states = [
        Text.assemble((f"{state:<11} ", "bold"), f"{count:>6} ", (_bar(count, top_count), "green"))  # a narrow
        # strip cuts the bar, never the count
        for state, count in overview.states[:STATE_LINES]
    ]
    flows = [
        Text.assemble(("opened/s ", "bold"), (sparkline(list(overview.opened_per_second)), "green"),
                      f" {overview.opened_per_second[-1]:.1f}"),
        Text.assemble(("closed/s ", "bold"), (sparkline(list(overview.closed_per_second)), "red"),
                      f" {overview.closed_per_second[-1]:.1f}"),
    ]  # fmt: skip
    host = overview.host_rates
    if host is None:
        flows.append(Text("host rates: not available here (Linux /proc/net/dev)", "dim"))
    elif not host:
        flows.append(Text("host rx/tx: measuring…", "dim"))
    else:
        for name, index, colour in (("host rx  ", 0, "cyan"), ("host tx  ", 1, "magenta")):
            series = [rates[index] for rates in host]
            flows.append(Text.assemble((name, "bold"), (sparkline(series), colour), f" {format_bytes(series[-1])}/s"))
    for index in range(max(len(states), len(flows))):
        grid.add_row(states[index] if index < len(states) else "", flows[index] if index < len(flows) else "")
    by_connections = [f"{printable(name)} {count}" for name, count in overview.top_by_connections]
    by_rate = [f"{printable(name)} {format_bytes(rate)}/s" for name, rate in overview.top_by_rate]
    remotes = [f"{endpoint} {count}" for endpoint, count in overview.top_remotes]
    tops = Table.grid(expand=True)
    tops.add_column(no_wrap=True, overflow="ellipsis")
    tops.add_row(_top("top processes: ", by_connections))
    tops.add_row(_top("by bytes/s in+out (TCP): ", by_rate))
    tops.add_row(_top("top remotes: ", remotes))
    return RenderGroup(grid, tops)


class OverviewStrip(Static):
    def show(self, overview: Overview | None) -> None:
        self.update(render_overview(overview) if overview is not None else "overview: waiting for the first poll…")
