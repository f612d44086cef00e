"""The overview strip (`o`): its figures from real loopback sockets and their polls' changes, the
host's counters from /proc/net/dev (a recorded copy, and the live file on Linux), and its look at
80 columns."""

from __future__ import annotations

import io
import re
import sys
from collections import Counter
from pathlib import Path

from rich.console import Console

from conntui.overview import BUCKET_SECONDS, BUCKETS, Overview, OverviewTracker
from conntui.sources.netdev import parse_net_dev, read_host_bytes
from conntui.ui.overview_strip import OverviewStrip, render_overview
from conntui.view import ConnectionView
from tests.conftest import wait_for
from tests.test_app import make_app, plain, reset

NET_DEV = Path(__file__).with_name("data") / "net_dev.txt"  # /proc/net/dev as captured on a test machine


def test_host_bytes_are_summed_over_every_interface_but_loopback() -> None:
    assert parse_net_dev(NET_DEV.read_text()) == (1125081837, 2460499)  # eth0 (ifb0 and ifb1 are idle), not lo
    assert read_host_bytes(NET_DEV.with_name("no such file")) is None
    assert parse_net_dev("Inter-|\n face |\n") is None  # no interfaces: unknown, not zero
    if sys.platform.startswith("linux"):
        assert read_host_bytes() is not None


def test_opened_and_closed_are_counted_per_second_in_buckets_and_the_host_rates_between_reads() -> None:
    counters = iter([(1000, 500), (4000, 1500)])
    tracker = OverviewTracker(read_host=lambda: next(counters))
    tracker.record_host(10.0)
    tracker.record_host(10.0)  # the same poll again: not read twice
    tracker.record_changes(10.0, 12, 0)
    tracker.record_changes(100.0, 6, 3)
    tracker.record_host(12.0)
    overview = tracker.summary([])
    assert overview.opened_per_second[-1] == 6 / BUCKET_SECONDS and overview.closed_per_second[-1] == 3 / BUCKET_SECONDS
    assert overview.opened_per_second[-1 - int(90 // BUCKET_SECONDS)] == 12 / BUCKET_SECONDS
    assert len(overview.opened_per_second) == BUCKETS and sum(overview.opened_per_second) * BUCKET_SECONDS == 18
    assert overview.host_rates == ((1500.0, 500.0),)
    tracker.record_changes(10.0 + BUCKETS * BUCKET_SECONDS, 0, 0)  # two minutes on: the first poll's count is gone
    assert sum(tracker.summary([]).opened_per_second) * BUCKET_SECONDS == 6
    elsewhere = OverviewTracker(read_host=lambda: None)
    elsewhere.record_host(1.0)
    assert elsewhere.summary([]).host_rates is None  # off Linux: left out


def test_the_strip_is_readable_at_80_columns() -> None:
    overview = Overview(
        states=(("ESTABLISHED", 1200), ("TIME_WAIT", 310), ("LISTEN", 12), ("CLOSE_WAIT", 3), ("SYN_SENT", 1)),
        opened_per_second=tuple(float(n) for n in range(BUCKETS)),
        closed_per_second=tuple(float(n) for n in range(BUCKETS)),
        host_rates=((1e6, 2e5),) * 20,
        top_by_connections=(("a-process-with-a-very-long-name-indeed", 900), ("nginx", 200), ("sshd", 3)),
        top_by_rate=(("nginx", 1.5 * 2**20), ("curl", 2e5)),
        top_remotes=(("[2001:db8::1234:5678:9abc]:443", 300), ("10.0.0.1:5432", 20), ("127.0.0.1:8080", 3)),
    )
    console = Console(width=78, record=True, file=io.StringIO())  # 80 columns less the strip's padding
    console.print(render_overview(overview))
    lines = console.export_text().splitlines()
    assert len(lines) == 7 and all(len(line) <= 78 for line in lines)
    text = "\n".join(lines)
    for label in ("ESTABLISHED", "opened/s", "closed/s", "host rx", "host tx", "top processes: ", "nginx 1.5 MiB/s",
                  "top remotes: [2001:db8::1234:5678:9abc]:443 300"):  # fmt: skip
        assert label in text


async def test_the_strip_counts_the_table_s_states_and_its_opened_and_closed_sockets(sockets) -> None:
    listener = sockets.listener()
    port = listener.getsockname()[1]
    sockets.connection(listener)
    sockets.connection(listener)
    app = make_app(f"port:{port} state:listen,established")
    async with app.run_test(size=(80, 24)) as pilot:
        # every socket and its owner (the first poll shows the rows, the next one their owners)
        await wait_for(
            pilot, lambda: len(app.dashboard.state.visible) == 5 and app.dashboard.state.visible[0].sock.pids
        )
        await pilot.press("o")
        strip = app.query_one(OverviewStrip)
        await wait_for(pilot, lambda: app.dashboard.state.overview is not None and "ESTABLISHED" in plain(strip))
        overview = app.dashboard.state.overview
        table_states = Counter(row.sock.state for row in app.dashboard.state.visible)
        assert dict(overview.states) == table_states == {"ESTABLISHED": 4, "LISTEN": 1}
        assert re.search(r"ESTABLISHED +4 █+", plain(strip)) and re.search(r"LISTEN +1 █+", plain(strip))
        assert dict(overview.top_remotes)[f"127.0.0.1:{port}"] == 2
        process = app.dashboard.state.visible[0].sock.process
        assert dict(overview.top_by_connections)[process] == 5

        client, server = sockets.connection(listener)  # one opens (two sockets), then closes at once (RST)
        await wait_for(pilot, lambda: len(app.dashboard.state.visible) == 7)
        reset(client)
        reset(server)

        def counted() -> bool:
            current = app.dashboard.state.overview
            return current is not None and round(sum(current.closed_per_second) * BUCKET_SECONDS) == 2

        await wait_for(pilot, counted)  # both ends, as the filter lets them through
        overview = app.dashboard.state.overview
        assert round(sum(overview.opened_per_second) * BUCKET_SECONDS) == 2
        await pilot.press("o")
        assert strip.has_class("hidden")
        await wait_for(pilot, lambda: app.dashboard.state.overview is None)  # hidden: not computed


def test_while_the_strip_is_shown_every_poll_is_taken_in_so_the_host_rates_move_on() -> None:
    view = ConnectionView()
    assert not view.moving  # an unchanged poll is skipped: an idle dashboard does nothing
    view.show_overview(True)
    assert view.moving and view.state().overview is not None
    view.show_overview(False)
    assert not view.moving and view.state().overview is None
