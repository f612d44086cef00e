"""The status line: rows shown/total, counts by state, poll and UI times, pause, permissions, errors."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from conntui.text import printable
from conntui.view import TableState


class StatusBar(Static):
    _lines = 0  # rows the last text took: a new layout only when that changes (a layout costs ~10 ms)

    def show(
        self,
        state: TableState,
        *,
        paused: bool,
        stretched_to: float | None,
        apply_ms: float = 0.0,
        error: str,
    ) -> None:
        text = Text()
        if error:  # first: the line is two rows high, and an error must never be cut off
            text.append(f"{printable(error)}\n", "bold red")  # may quote the system or the user
        snapshot = state.snapshot
        if snapshot is None:
            text.append("waiting for the first poll…")
        else:
            text.append(f"{len(state.visible)}/{state.total} sockets", "bold")
        if paused:
            text.append("  │ PAUSED", "bold reverse")
        if stretched_to is not None:
            text.append(f"  │ interval stretched to {stretched_to:.1f} s", "yellow")
        if snapshot is not None and snapshot.hidden_owners:  # before the figures: what is not shown matters more
            text.append(f"  │ {snapshot.hidden_note()}", "dim")  # decided by what was unreadable, not by euid
        if snapshot is not None:
            counts = state.state_counts.most_common(5)
            text.append(" │ " + "  ".join(f"{name} {count}" for name, count in counts))
            text.append(f"  │ poll {snapshot.duration_ms:.0f} ms ({snapshot.backend}), ui {apply_ms:.0f} ms")
        lines = text.plain.count("\n") + 1
        self.update(text, layout=lines != self._lines)
        self._lines = lines
