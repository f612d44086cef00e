"""An experiment's record (`conntui.http.experiments.Comparison`) as aligned rows with bars. Pure text.

Shared by `conntui probe --compare` (plain text) and the dashboard's tests pane (which adds
colour): one row per way of making the requests (`mode_rows`), or one per request with Nagle on
and off side by side (`nagle_rows`).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from conntui.http.experiments import Comparison, Run
from conntui.http.timeline import format_bytes, simulated_note, urls_text
from conntui.text import printable

UNLIMITED = 10_000  # the width when none is given: every column at its widest
COLUMN_GAP = "  "


@dataclass(frozen=True)
class Column:
    """One column of the side-by-side table: its header (and a shorter one for a narrow width),
    and for a bar its widest and its narrowest, in cells (0 for a column of text)."""

    key: str
    header: str
    right: bool = False  # numbers are right-aligned
    bar_width: int = 0
    short_header: str | None = None
    min_bar_width: int = 6  # a bar would be narrower: the column is dropped instead

    def title(self, short: bool) -> str:
        return self.short_header if short and self.short_header is not None else self.header


MODE_COLUMNS: tuple[Column, ...] = (
    Column("mode", "mode"),
    Column("total", "total", right=True),
    Column("total_bar", "", bar_width=30),
    Column("conns", "conns", right=True),
    Column("conns_bar", "", bar_width=10, min_bar_width=10),
    Column("connect", "connect Σ", right=True),
    Column("ttfb", "median ttfb", right=True),
    Column("time_wait", "TIME_WAIT", right=True),
    Column("bytes", "bytes", right=True),
)
NAGLE_COLUMNS: tuple[Column, ...] = (
    Column("request", ""),
    Column("nagle", "Nagle on (TCP_NODELAY off)", right=True, short_header="Nagle on"),
    Column("nagle_bar", "", bar_width=20),
    Column("nodelay", "TCP_NODELAY on", right=True, short_header="NODELAY"),
    Column("nodelay_bar", "", bar_width=20),
)
# The columns a narrow width gives up, first to last (the first column is always kept).
MODE_DROPS: tuple[str, ...] = ("conns_bar", "bytes", "time_wait", "ttfb", "connect", "conns", "total_bar")
NAGLE_DROPS = ("nodelay_bar", "nagle_bar")
NAGLE_NOTE = "each request written in two writes (its line, then its headers), over one keep-alive connection"


@dataclass(frozen=True)
class TableRow:
    """One run (or, for Nagle, one request): its cells as text, its bars as fractions of the longest."""

    run: str | None  # the run it is about; None for a request's row, which is about both runs
    cells: dict[str, str]
    bars: dict[str, float]


def bar(fraction: float, width: int) -> str:
    """A bar of `fraction` of `width` cells; anything above nothing shows one cell at least."""
    return "█" * max(1 if fraction > 0 else 0, min(width, round(fraction * width)))


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


def mode_rows(comparison: Comparison) -> list[TableRow]:
    slowest = max((run.total_ms or 0.0 for run in comparison.runs), default=0.0)
    most = max((run.connections for run in comparison.runs), default=0)
    rows = []
    for run in comparison.runs:
        cells = {
            "mode": run.label,
            "total": f"{run.total_ms:.1f} ms" if run.total_ms is not None else "…",
            "conns": str(run.connections),
            "connect": f"{run.connect_ms_sum:.2f} ms",
            "ttfb": f"{run.ttfb_ms_median:.1f} ms" if run.ttfb_ms_median is not None else "-",
            "time_wait": _count(run.time_wait_left) if run.done else "…",
            "bytes": format_bytes(run.bytes),
        }
        bars = {"total_bar": _fraction(run.total_ms, slowest), "conns_bar": _fraction(run.connections, most)}
        rows.append(TableRow(run.label, cells, bars))
    return rows


def nagle_rows(comparison: Comparison) -> list[TableRow]:
    runs: dict[str, Run] = {run.label: run for run in comparison.runs}
    times = {label: run.request_ms for label, run in runs.items()}
    slowest = max((ms for column in times.values() for ms in column if ms is not None), default=0.0)
    nagle, nodelay = times.get("nagle", []), times.get("nodelay", [])
    rows = []
    for index in range(max(len(nagle), len(nodelay))):
        on = nagle[index] if index < len(nagle) else None
        off = nodelay[index] if index < len(nodelay) else None
        cells = {"request": f"request {index + 1}", "nagle": _ms(on), "nodelay": _ms(off)}
        bars = {"nagle_bar": _fraction(on, slowest), "nodelay_bar": _fraction(off, slowest)}
        rows.append(TableRow(None, cells, bars))
    return rows


@dataclass(frozen=True)
class TableLine:
    """One line of the side-by-side table: its cells padded to their column, which cells are bars
    (and of which column, by key), and the run it is about (None for the header)."""

    cells: tuple[str, ...]
    bars: dict[int, str]
    run: str | None

    @property
    def text(self) -> str:
        return COLUMN_GAP.join(self.cells).rstrip()


def table_lines(comparison: Comparison, width: int = UNLIMITED) -> list[TableLine]:
    """The header and one line per mode (or per request, for Nagle), aligned, within `width` cells:
    a narrow width shortens the bars first, then gives up the columns that matter least."""
    if comparison.experiment == "modes":
        columns, drops, rows = MODE_COLUMNS, MODE_DROPS, mode_rows(comparison)
    else:
        columns, drops, rows = NAGLE_COLUMNS, NAGLE_DROPS, nagle_rows(comparison)
    for dropped in range(len(drops) + 1):
        kept = [column for column in columns if column.key not in drops[:dropped]]
        for short in (False, True):
            widths = _widths(kept, rows, short, width)
            if widths is not None:
                return _lines(kept, rows, short, widths)
    # Narrower than the first column and the total: they are shown whole, the terminal cuts them.
    return _lines(kept, rows, True, _widths(kept, rows, True, UNLIMITED) or [])


def _widths(columns: list[Column], rows: list[TableRow], short: bool, width: int) -> list[int] | None:
    """Each column's width, the bars sharing what the text leaves (each from its narrowest up to its
    widest); None if the text and the narrowest bars do not fit."""
    text_width = {
        column.key: max([len(column.title(short)), *(len(row.cells[column.key]) for row in rows)])
        for column in columns
        if not column.bar_width
    }
    bars = [column for column in columns if column.bar_width]
    left = width - sum(text_width.values()) - len(COLUMN_GAP) * (len(columns) - 1)
    left -= sum(column.min_bar_width for column in bars)
    if left < 0:
        return None
    growing = sorted(bars, key=lambda column: column.bar_width - column.min_bar_width)
    for count, column in enumerate(growing):
        extra = min(column.bar_width - column.min_bar_width, left // (len(bars) - count))
        text_width[column.key] = column.min_bar_width + extra
        left -= extra
    return [text_width[column.key] for column in columns]


def _lines(columns: list[Column], rows: list[TableRow], short: bool, widths: list[int]) -> list[TableLine]:
    bars = {index: column.key for index, column in enumerate(columns) if column.bar_width}
    header = tuple(
        _pad(column.title(short), width, column.right) for column, width in zip(columns, widths, strict=True)
    )
    lines = [TableLine(header, {}, None)]
    for row in rows:
        cells = tuple(
            bar(row.bars[column.key], width).ljust(width)
            if column.bar_width
            else _pad(row.cells[column.key], width, column.right)
            for column, width in zip(columns, widths, strict=True)
        )
        lines.append(TableLine(cells, bars, row.run))
    return lines


def notes(comparison: Comparison) -> list[str]:
    """What the table leaves out: how Nagle's requests were written, why a run failed."""
    said = [NAGLE_NOTE] if comparison.experiment == "nagle" else []
    said += [f"{run.label}: {run.error}" for run in comparison.runs if run.error]
    if comparison.error:
        said.append(comparison.error)
    return said


def format_comparison(comparison: Comparison, width: int = UNLIMITED) -> str:
    """`conntui probe --compare`'s human output within `width` cells: a heading, then aligned
    columns, then notes (the heading and the notes wrapped)."""
    lines = textwrap.wrap(heading(comparison), width, subsequent_indent="  ")
    lines += [line.text for line in table_lines(comparison, width)]
    lines += note_lines(comparison, width)
    return "\n".join(printable(line) for line in lines) + "\n"


def note_lines(comparison: Comparison, width: int = UNLIMITED) -> list[str]:
    """The notes, indented under the table and wrapped to `width` (a wrapped line indented further)."""
    lines = []
    for note in notes(comparison):
        lines += textwrap.wrap(printable(note), width, initial_indent="  ", subsequent_indent="    ")
    return lines


def _ms(value: float | None) -> str:
    return f"{value:.1f} ms" if value is not None else "-"


def _fraction(value: float | None, longest: float) -> float:
    return 0.0 if value is None or longest <= 0 else value / longest


def _pad(cell: str, width: int, right: bool) -> str:
    return cell.rjust(width) if right else cell.ljust(width)


def _count(value: int | None) -> str:
    return "n/a" if value is None else str(value)
