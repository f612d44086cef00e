"""The detail pane: the selected socket's four values, what it shares with others, its owners (and
what each is: executable, working directory, threads, CPU, memory, start time), its destination's
four-tuple budget (outgoing sockets), its peer."""

from __future__ import annotations

import time

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from conntui.budget import BudgetReport
from conntui.grouping import GROUPING_TITLES, Group, group_label
from conntui.model import ProcessInfo, Snapshot
from conntui.rates import WINDOWS
from conntui.sources.processes import ProcessDetailsCache
from conntui.text import printable
from conntui.uniqueness import find_peer, shared_parts
from conntui.view import Row, format_bytes, sparkline


class DetailPane(Static):
    @staticmethod
    def describe_group(group: Group) -> RenderableType:
        """What the pane shows on a group's header: its sums, and the busiest of its sockets."""
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        grid.add_row("Group", Text(f"{printable(group_label(group.key))}  ({GROUPING_TITLES[group.key.grouping]})"))
        grid.add_row("Sockets", f"{group.count}: {group.states_text()}")
        grid.add_row("Rates", f"sent {format_bytes(group.tx_rate)}/s   received {format_bytes(group.rx_rate)}/s   "
                     "(summed from the TCP byte counters: TCP only)")  # fmt: skip
        busiest = sorted((row for row in group.rows if row.tx_rate or row.rx_rate),
                         key=lambda row: (row.tx_rate or 0) + (row.rx_rate or 0), reverse=True)[:3]  # fmt: skip
        for row in busiest:
            grid.add_row("Busiest", f"{row.sock.local} → {row.sock.remote}  ↑ {format_bytes(row.tx_rate)}/s "
                         f"↓ {format_bytes(row.rx_rate)}/s")  # fmt: skip
        grid.add_row("", "enter or space: collapse or expand; -: every group")
        return grid

    @staticmethod
    def describe(
        row: Row | None,
        snapshot: Snapshot | None,
        budget: BudgetReport | None = None,
        details: ProcessDetailsCache | None = None,
    ) -> RenderableType:
        """What the pane shows for a row; pure but for reading the owners' details (`details`), so
        the app builds it off the UI thread."""
        if row is None or snapshot is None:
            return "No socket selected."
        sock = row.sock
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        grid.add_row("Connection", Text(f"{sock.proto}{sock.family}  {sock.local} → {sock.remote}  {sock.state}"))
        if details is not None:  # second: in a small pane (80x24) the owner is what one looks for
            for pid in sock.pids:
                info = snapshot.processes.get(pid)
                if info is not None:
                    grid.add_row("Process", Text(_process_line(info, details)))
        grid.add_row(
            "Four values",
            f"source IP {sock.local_ip}   source port {sock.local_port}   "
            f"destination IP {sock.remote_ip or '*'}   destination port {sock.remote_port or '*'}",
        )
        for part in shared_parts(sock, snapshot.sockets):
            grid.add_row("", part.sentence())
        if sock.pids:
            for pid in sock.pids:
                info = snapshot.processes.get(pid)
                if info is None:
                    grid.add_row("Owner", f"{pid} (gone or hidden)")
                else:
                    command = printable(" ".join(info.cmdline)[:200]) or "-"
                    owner = f"{pid} {printable(info.name or '?')} ({printable(info.user or '?')})  {command}"
                    grid.add_row("Owner", Text(owner))  # Text: a name is not Rich markup
        elif sock.inode == 0 and snapshot.backend != "psutil":
            grid.add_row("Owner", "none: no process holds it, the kernel does (TIME_WAIT, a request or orphaned "
                         "socket, or a connection not yet accepted)")  # fmt: skip
        else:
            grid.add_row("Owner", "hidden: another user's process (run as root to see it) or another PID namespace")
        if sock.rtt_ms is not None:
            grid.add_row(
                "TCP",
                f"rtt {sock.rtt_ms:.3f} ms ± {sock.rttvar_ms:.3f}  retrans {sock.retrans}  cwnd {sock.cwnd}  "
                f"sent {format_bytes(sock.bytes_sent)}  received {format_bytes(sock.bytes_received)}",
            )
        if row.traffic is not None:
            history = list(row.traffic.history)
            grid.add_row(
                "Rates",
                Text.assemble(
                    ("tx ", "bold"), (sparkline([tx for tx, _ in history]), "green"),
                    f" {format_bytes(row.tx_rate)}/s   ",
                    ("rx ", "bold"), (sparkline([rx for _, rx in history]), "cyan"),
                    f" {format_bytes(row.rx_rate)}/s   (last {len(history)} polls)",
                ),
            )  # fmt: skip
            averages = "   ".join(f"{window:.0f}s {format_bytes(average)}/s" for window, average in
                                   zip(WINDOWS, row.traffic.averages, strict=True))  # fmt: skip
            grid.add_row("Averages", f"{averages}   total {format_bytes(row.traffic.total)} (both ways, since seen)")
        budget_line = budget.line_for(sock) if budget is not None else None
        if budget_line is not None:  # an outgoing socket: how much of its destination's budget is used
            grid.add_row("Budget", budget_line.sentence())
        peer = find_peer(sock, snapshot.sockets)
        if peer is not None:
            grid.add_row("Peer", f"{peer.proto}{peer.family}  {peer.local} → {peer.remote}  {peer.state}  (g: jump)")
        return grid


def _process_line(info: ProcessInfo, details: ProcessDetailsCache) -> str:
    """pid and name, CPU, memory, threads, start time, exe, cwd of an owner, on one line (it wraps)."""
    who = f"{info.pid} {printable(info.name or '?')}"
    if info.create_time is None:
        return f"{who}  details not readable (access denied)"
    found = details.details(info.pid, info.create_time)
    if found is None:
        return f"{who}  ended"

    def shown(value: str | None) -> str:
        return printable(value) if value is not None else "(access denied)"

    cpu = "…" if found.cpu_percent is None else f"{found.cpu_percent:.1f}%"
    threads = "?" if found.threads is None else str(found.threads)
    memory = "?" if found.memory_rss is None else format_bytes(found.memory_rss)
    started = time.localtime(found.started)
    today = time.localtime()[:3] == started[:3]
    return (
        f"{who}  cpu {cpu}  mem {memory}  threads {threads}  "
        f"started {time.strftime('%H:%M:%S' if today else '%Y-%m-%d %H:%M', started)}  "
        f"exe {shown(found.exe)}  cwd {shown(found.cwd)}"
    )
