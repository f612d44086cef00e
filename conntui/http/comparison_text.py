"""An experiment's record (`conntui.http.experiments.Comparison`) as aligned rows with bars. Pure text.

Shared by `conntui probe --compare` (plain text) and the dashboard's tests pane (which adds
colour): one row per way of making the requests (`mode_rows`), or one per request with Nagle on
and off side by side (`nagle_rows`).
"""

from __future__ import annotations

from dataclasses import dataclass

from conntui.http.experiments import Comparison, Run
from conntui.http.timeline import format_bytes, simulated_note, urls_text
from conntui.text import printable

BAR_WIDTH = 30  # the total-time bars
SMALL_BAR_WIDTH = 10  # the connections and per-request bars
MODE_HEADER = ("mode", "total", "", "conns", "", "connect Σ", "median ttfb", "TIME_WAIT", "bytes")


@dataclass(frozen=True)
class ModeRow:
    """One mode, its cells as text (right-aligned numbers) and its bars."""

    mode: str
    total: str
    total_bar: str
    connections: str
    connections_bar: str
    connect_sum: str
    ttfb_median: str
    time_wait: str
    bytes: str
    error: str | None

    @property
    def cells(self) -> tuple[str, ...]:
        return (
            self.mode,
            self.total,
            self.total_bar,
            self.connections,
            self.connections_bar,
            self.connect_sum,
            self.ttfb_median,
            self.time_wait,
            self.bytes,
        )


@dataclass(frozen=True)
class NagleRow:
    """One request: its time with Nagle on (TCP_NODELAY off) and off, each with its bar."""

    request: str
    nagle: str
    nagle_bar: str
    nodelay: str
    nodelay_bar: str


def bar(value: float | None, scale: float, width: int) -> str:
    if value is None or scale <= 0:
        return ""
    return "█" * max(1 if value > 0 else 0, min(width, round(value / scale * width)))


def heading(comparison: Comparison) -> str:
    """`compare modes ×10  http://…  ok  [server RTT 50 ms, simulated]`."""
    if not comparison.done:
        verdict = "running"
    elif comparison.ok:
        verdict = "ok"
    else:
        verdict = f"FAILED: {comparison.first_error}"
    rtt = comparison.simulated_rtt_ms
    distance = f"  {simulated_note(rtt)}" if rtt else ""
    return printable(f"{comparison.mode} ×{comparison.count}  {urls_text(comparison.urls)}  {verdict}{distance}")


def mode_rows(comparison: Comparison) -> list[ModeRow]:
    slowest = max((run.total_ms or 0.0 for run in comparison.runs), default=0.0)
    most = max((run.connections for run in comparison.runs), default=0)
    rows = []
    for run in comparison.runs:
        done = run.done
        rows.append(
            ModeRow(
                run.label,
                f"{run.total_ms:.1f} ms" if run.total_ms is not None else "…",
                bar(run.total_ms, slowest, BAR_WIDTH),
                str(run.connections),
                bar(run.connections, most, SMALL_BAR_WIDTH),
                f"{run.connect_ms_sum:.2f} ms",
                f"{run.ttfb_ms_median:.1f} ms" if run.ttfb_ms_median is not None else "-",
                _count(run.time_wait_left) if done else "…",
                format_bytes(run.bytes),
                run.error,
            )
        )
    return rows


def nagle_rows(comparison: Comparison) -> list[NagleRow]:
    runs: dict[str, Run] = {run.label: run for run in comparison.runs}
    times = {label: run.request_ms for label, run in runs.items()}
    slowest = max((ms for column in times.values() for ms in column if ms is not None), default=0.0)
    nagle, nodelay = times.get("nagle", []), times.get("nodelay", [])
    rows = []
    for index in range(max(len(nagle), len(nodelay))):
        on = nagle[index] if index < len(nagle) else None
        off = nodelay[index] if index < len(nodelay) else None
        rows.append(
            NagleRow(
                f"request {index + 1}",
                _ms(on),
                bar(on, slowest, SMALL_BAR_WIDTH * 2),
                _ms(off),
                bar(off, slowest, SMALL_BAR_WIDTH * 2),
            )
        )
    return rows


NAGLE_HEADER = ("", "Nagle on (TCP_NODELAY off)", "", "TCP_NODELAY on", "")
NAGLE_NOTE = "each request written in two writes (its line, then its headers), over one keep-alive connection"


@dataclass(frozen=True)
class TableLine:
    """One line of the side-by-side table: its cells padded to their column, which cells are bars,
    and the run it is about (None for the header)."""

    cells: tuple[str, ...]
    bars: frozenset[int]
    run: str | None

    @property
    def text(self) -> str:
        return "  ".join(self.cells).rstrip()


def table_lines(comparison: Comparison) -> list[TableLine]:
    """The header and one line per mode (or per request, for Nagle), aligned."""
    rows: list[tuple[str, ...]]
    header: tuple[str, ...]
    if comparison.experiment == "modes":
        rows = [row.cells for row in mode_rows(comparison)]
        header, right, bars = MODE_HEADER, {1, 3, 5, 6, 7, 8}, frozenset({2, 4})
        runs: list[str | None] = [row[0] for row in rows]
    else:
        rows = [(r.request, r.nagle, r.nagle_bar, r.nodelay, r.nodelay_bar) for r in nagle_rows(comparison)]
        header, right, bars = NAGLE_HEADER, {1, 3}, frozenset({2, 4})
        runs = [None] * len(rows)  # a request's line is about both runs
    table = [header, *rows]
    widths = [max(len(row[column]) for row in table) for column in range(len(header))]
    lines = []
    for row, run in zip(table, [None, *runs], strict=True):
        cells = tuple(
            cell.rjust(width) if index in right else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        lines.append(TableLine(cells, frozenset() if row is header else bars, run))
    return lines


def notes(comparison: Comparison) -> list[str]:
    """What the table leaves out: how Nagle's requests were written, why a run failed."""
    said = [NAGLE_NOTE] if comparison.experiment == "nagle" else []
    said += [f"{run.label}: {run.error}" for run in comparison.runs if run.error]
    if comparison.error:
        said.append(comparison.error)
    return said


def format_comparison(comparison: Comparison) -> str:
    """`conntui probe --compare`'s human output: a heading, then aligned columns, then notes."""
    lines = [heading(comparison), *(line.text for line in table_lines(comparison))]
    lines += [f"  {note}" for note in notes(comparison)]
    return "\n".join(printable(line) for line in lines) + "\n"


def _ms(value: float | None) -> str:
    return f"{value:.1f} ms" if value is not None else "-"


def _count(value: int | None) -> str:
    return "n/a" if value is None else str(value)
