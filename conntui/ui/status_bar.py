"""The status line: rows shown/total, counts by state, poll and UI times, pause, permissions, errors,
and what was not seen: connections seen against the kernel's count, between polls, closes from polls only."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from conntui.grouping import GROUPING_TITLES
from conntui.history import HistoryState
from conntui.text import printable
from conntui.view import TableState


class StatusBar(Static):
    _lines = 0  # rows the last text took: a new layout only when that changes (a layout costs ~10 ms)

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
        text = Text()
        if error:  # first: the line is two rows high, and an error must never be cut off
            text.append(f"{printable(error)}\n", "bold red")  # may quote the system or the user
        snapshot = state.snapshot
        if snapshot is None:
            text.append("waiting for the first poll…")
        else:
            text.append(f"{len(state.visible)}/{state.total} sockets", "bold")
            if state.grouping:
                groups = "group" if len(state.groups) == 1 else "groups"
                text.append(f" in {len(state.groups)} {groups} by {GROUPING_TITLES[state.grouping]}", "bold")
        if paused:
            text.append("  │ PAUSED", "bold reverse")
        if timing:
            text.append("  │ polls wait for the experiment", "yellow")
        if stretched_to is not None:
            text.append(f"  │ interval stretched to {stretched_to:.1f} s", "yellow")
        if closes_note:  # brief: the reason is in the event log and the history pane
            text.append("  │ closes from polls only", "yellow")
        elif closes_lost:
            text.append("  │ some closes lost", "yellow")
        if snapshot is not None and snapshot.hidden_owners:  # before the figures: what is not shown matters more
            text.append(
                f"  │ {snapshot.hidden_note(explain=False)}", "dim"
            )  # decided by what was unreadable, not by euid
        if snapshot is not None:
            text.append(f"  │ {seen_text(state.history, between_polls=not closes_note)}")
            counts = state.state_counts.most_common(5)
            text.append(" │ " + "  ".join(f"{name} {count}" for name, count in counts))
            if state.history.kernel is not None:
                text.append(f"  │ {kernel_text(state.history)}", "dim")
            text.append(f"  │ poll {snapshot.duration_ms:.0f} ms ({snapshot.backend}), ui {apply_ms:.0f} ms")
        lines = len(text.wrap(self.app.console, max(1, self.content_region.width)))  # as drawn: wrapped
        self.update(text, layout=lines != self._lines)
        self._lines = lines


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
