"""Pins the dashboard's look with SVG snapshots (pytest-textual-snapshot).

The app is fed a fixed snapshot: `data/dashboard_sockets.json` was captured once with
`conntui list --json` from real loopback sockets (a listener on 8080 with three clients and a
TIME_WAIT, two SO_REUSEPORT listeners on 9090, an IPv6 listener, a UDP socket), with the pid
and user names made neutral. The clock is frozen so ages do not move. The overview reads the
host's byte counters from a recorded /proc/net/dev (`data/net_dev.txt`).
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

from conntui.changes import Changes, diff
from conntui.model import ProcessInfo, Snapshot, Socket
from conntui.sources.netdev import read_host_bytes
from conntui.ui.app import ConntuiApp

FIXTURE = Path(__file__).with_name("data") / "dashboard_sockets.json"
NET_DEV = Path(__file__).with_name("data") / "net_dev.txt"
SIZE = (150, 32)


class ReplayPoller:
    """Serves the captured sockets on every poll."""

    def __init__(self) -> None:
        rows = json.loads(FIXTURE.read_text())
        self.sockets = tuple(
            Socket(
                index,
                row["proto"],
                row["family"],
                row["local_ip"],
                row["local_port"],
                row["remote_ip"],
                row["remote_port"],
                row["state"],
                pids=tuple(row["pids"]),
                process=row["process"],
                user=row["user"],
            )
            for index, row in enumerate(rows)
        )
        self.processes = {4242: ProcessInfo(4242, "python3", "alice", ("python3", "demo.py"))}
        self.first = True

    def poll(self) -> tuple[Snapshot, Changes]:
        snapshot = Snapshot(self.sockets, self.processes, taken_at=0.0, duration_ms=3.0, backend="netlink")
        changes = diff({}, {s.key: s for s in self.sockets}) if self.first else Changes()
        self.first = False
        return snapshot, changes

    def close(self) -> None:
        pass


def frozen_app(filter_text: str = "") -> ConntuiApp:
    return ConntuiApp(ReplayPoller(), interval=60, filter_text=filter_text, clock=lambda: 1000.0)


async def first_poll(pilot) -> None:
    while pilot.app.dashboard.poll_count < 1:
        await pilot.pause(0.05)


def test_dashboard(snap_compare) -> None:
    assert snap_compare(frozen_app(), terminal_size=SIZE, run_before=first_poll)


def test_dashboard_with_detail_pane(snap_compare) -> None:
    async def select_client(pilot) -> None:
        await first_poll(pilot)
        await pilot.press("down", "down", "enter")
        while pilot.app.query_one("#detail").content == "":  # described on a worker thread
            await pilot.pause(0.05)

    assert snap_compare(frozen_app("port:8080"), terminal_size=SIZE, run_before=select_client)


def test_grouped_by_local_port_with_a_group_folded(snap_compare) -> None:
    async def group_and_fold(pilot) -> None:
        await first_poll(pilot)
        for _ in range(3):  # process, remote host, local port
            await pilot.press("G")
        while pilot.app.dashboard.state.grouping != "local_port":
            await pilot.pause(0.05)
        await pilot.press("home", "down", "down", "space")  # the second group's header: port 8080's
        while not any(group.collapsed for group in pilot.app.dashboard.state.groups):
            await pilot.pause(0.05)

    assert snap_compare(frozen_app(), terminal_size=SIZE, run_before=group_and_fold)


def test_overview_at_80x24(snap_compare) -> None:
    app = frozen_app()
    app.dashboard.engine.view.overview_tracker.read_host = partial(read_host_bytes, NET_DEV)

    async def show_overview(pilot) -> None:
        await first_poll(pilot)
        await pilot.press("o")
        while pilot.app.dashboard.state.overview is None:
            await pilot.pause(0.05)

    assert snap_compare(app, terminal_size=(80, 24), run_before=show_overview)
