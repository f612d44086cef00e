"""The status line: rows shown/total, counts by state, poll time, pause, permissions, errors."""

from __future__ import annotations

from collections import Counter

from rich.text import Text
from textual.widgets import Static

from conntui.model import Snapshot


class StatusBar(Static):
    def show(
        self,
        snapshot: Snapshot | None,
        shown: int,
        total: int,
        *,
        paused: bool,
        stretched_to: float | None,
        apply_ms: float = 0.0,
        hint: str,
        error: str,
    ) -> None:
        text = Text()
        if snapshot is None:
            text.append("waiting for the first poll…")
        else:
            text.append(f"{shown}/{total} sockets", "bold")
            states = Counter(sock.state for sock in snapshot.sockets)
            text.append(" │ " + "  ".join(f"{state} {count}" for state, count in states.most_common(5)))
            text.append(f"  │ poll {snapshot.duration_ms:.0f} ms ({snapshot.backend}), ui {apply_ms:.0f} ms")
        if stretched_to is not None:
            text.append(f"  │ interval stretched to {stretched_to:.1f} s", "yellow")
        if paused:
            text.append("  │ PAUSED", "bold reverse")
        if hint:
            text.append(f"  │ {hint}", "dim")
        if error:
            text.append(f"\n{error}", "bold red")
        self.update(text)
