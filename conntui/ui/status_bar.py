"""The status line: rows shown/total, counts by state, poll and UI times, pause, permissions, errors,
and what was not seen: connections seen against the kernel's count, between polls, closes from polls only.
At most two rows: in a narrow terminal the least important parts (the poll's times, then the
kernel's other counts, then the states) leave whole, rather than the line being cut."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from conntui.grouping import GROUPING_TITLES
from conntui.history import HistoryState
from conntui.text import printable
from conntui.view import TableState

MAX_ROWS = 2  # the status line's height at most (its `max-height` in conntui.tcss)

# One part of the line: (text, style, priority). Priority 0 is always shown; when the line would
# need more than MAX_ROWS rows, the parts of the highest number leave first (the last of them first).
Part = tuple[str, str, int]


class StatusBar(Static):
    _lines = 0  # rows the last text took: a new layout only when that changes (a layout costs ~10 ms)
    _error = ""
    _parts: list[Part] = []

    def show(
        self,
        state: TableState,
        *,
        paused: bool,
        timing: bool = False,
        stretched_to: float | None,
        apply_ms: float = 0.0,
        error: str,
        closes_note: str = "",
        closes_lost: bool = False,
    ) -> None:
        parts: list[Part] = []
        self._error = printable(error)  # first, on a row of its own; may quote the system or the user
        snapshot = state.snapshot
        if snapshot is None:
            parts.append(("waiting for the first poll…", "", 0))
        else:
            grouped = ""
            if state.grouping:
                groups = "group" if len(state.groups) == 1 else "groups"
                grouped = f" in {len(state.groups)} {groups} by {GROUPING_TITLES[state.grouping]}"
            parts.append((f"{len(state.visible)}/{state.total} sockets{grouped}", "bold", 0))
        if paused:
            parts.append(("  │ PAUSED", "bold reverse", 0))
        if timing:
            parts.append(("  │ polls wait for the experiment", "yellow", 1))
        if stretched_to is not None:
            parts.append((f"  │ interval stretched to {stretched_to:.2f} s", "yellow", 1))  # 1.04, not "1.0" at 1 s
        if closes_note:  # brief: the reason is in the event log and the history pane
            parts.append(("  │ closes from polls only", "yellow", 1))
        elif closes_lost:
            parts.append(("  │ some closes lost", "yellow", 1))
        if snapshot is not None and snapshot.hidden_owners:  # before the figures: what is not shown matters more
            # decided by what was unreadable, not by euid; what would show them: in the README
            parts.append((f"  │ {snapshot.hidden_note(explain=False)}", "dim", 2))
        if snapshot is not None:
            parts.append((f"  │ {seen_text(state.history, between_polls=not closes_note)}", "", 2))
            counts = state.state_counts.most_common(5)
            if counts:  # none when no socket is shown: no empty field between two bars
                parts.append((" │ " + "  ".join(f"{name} {count}" for name, count in counts), "", 3))
            if state.history.kernel is not None:
                parts.append((f"  │ {kernel_text(state.history)}", "dim", 4))
            parts.append((f"  │ poll {snapshot.duration_ms:.0f} ms ({snapshot.backend}), ui {apply_ms:.0f} ms", "", 5))
        self._parts = parts
        self._fit()

    def on_resize(self) -> None:
        self._fit()  # what fits changes with the width

    def _fit(self) -> None:
        """Draw the parts that fit in MAX_ROWS rows at the current width, the most important kept.
        An error takes the first row, cut to it (its end is the least telling: a filter error names
        the term and the filter still shown first), so that the sockets shown stay in sight."""
        width = self.content_region.width
        parts = list(self._parts)
        room = MAX_ROWS - 1 if self._error else MAX_ROWS
        text = Text.assemble(*((part, style) for part, style, _ in parts))
        rows = len(text.wrap(self.app.console, width)) if width > 0 else 1  # not laid out yet: all of it
        while rows > room and any(priority for _, _, priority in parts):
            least = max(range(len(parts)), key=lambda index: (parts[index][2], index))
            del parts[least]
            text = Text.assemble(*((part, style) for part, style, _ in parts))
            rows = len(text.wrap(self.app.console, width))
        if self._error:
            error = Text(self._error, "bold red", no_wrap=True, overflow="ellipsis")
            if width > 0:
                error.truncate(width, overflow="ellipsis")
            text = Text.assemble(error, "\n", text)
            rows += 1
        self.update(text, layout=rows != self._lines)
        self._lines = rows


def seen_text(history: HistoryState, *, between_polls: bool) -> str:
    """`seen 18 of 20 TCP opens, 9 between polls`: the connections seen since start against the
    kernel's count of them (the history pane's header says it in full)."""
    kernel = f" of {history.kernel.opens:,}" if history.kernel is not None else ""
    between = f", {history.between_polls:,} between polls" if between_polls else ""
    return f"seen {history.seen:,}{kernel} TCP opens{between}"


def kernel_text(history: HistoryState) -> str:
    """The kernel's other counts since start, short: `fail 0 rst 1 udp 40/40` (in, out)."""
    kernel = history.kernel
    assert kernel is not None
    return f"fail {kernel.attempt_fails:,} rst {kernel.estab_resets:,} udp {kernel.udp_in:,}/{kernel.udp_out:,}"
