"""The dashboard's history of closed connections (`h`) and its counts, with real loopback sockets."""

from __future__ import annotations

import os
import signal
import socket
import time

import pytest

from conntui.changes import Changes
from conntui.filters import parse_filter
from conntui.history import ConnectionHistory
from conntui.http.runner import ProbeRequest
from conntui.model import Socket
from conntui.poller import Poller
from conntui.socket_events import Event
from conntui.sources import open_source
from conntui.sources.destroy_events import DestroyEventsUnavailable, DestroyListener
from conntui.ui.app import ConntuiApp
from conntui.ui.history_pane import HistoryPane, HistoryTable
from tests.conftest import linux_only, wait_for
from tests.test_app import reset, status_text
from tests.test_text import CONTROL, named_listener  # noqa: F401 (a fixture)
from tests.test_watch import WAIT, short_connection

pytestmark = linux_only  # destroy events and /proc/net/snmp
NEVER = 3600.0  # seconds between polls: after the first one, none sees the test's connections
BURST = 4000  # connections in the burst test: under a second on loopback


def history_app(filter_text: str = "", *, history: int = 10_000, interval: float = NEVER, backend: str = "auto"):
    return ConntuiApp(Poller(open_source(backend), "tcp"), interval=interval, filter_text=filter_text, history=history)


def record_of(app: ConntuiApp, local_port: int) -> Event | None:
    return next((r for r in app.dashboard.state.history.visible if r.sock.local_port == local_port), None)


def drawn_lines(app: ConntuiApp) -> list[str]:
    table = app.query_one(HistoryTable)
    return [table.render_line(y).text for y in range(table.scrollable_content_region.height)]


async def test_a_connection_shorter_than_a_poll_is_in_the_history_between_polls(sockets) -> None:
    listener = sockets.listener()
    port = listener.getsockname()[1]
    app = history_app(f"port:{port}")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.dashboard.poll_count >= 1, timeout=WAIT)
        before = app.dashboard.state.history
        client_port = short_connection(listener, b"hello")  # lives about a millisecond; the next poll is in an hour
        await wait_for(pilot, lambda: record_of(app, client_port) and record_of(app, port), timeout=WAIT)
        await pilot.press("h")
        await pilot.pause()
        client = record_of(app, client_port)
        assert client is not None and not client.seen_in_poll and client.lifetime_ms is None
        assert client.sock.four_tuple == ("tcp", "127.0.0.1", client_port, "127.0.0.1", port)
        assert client.sock.bytes_sent == 5  # the kernel's final figures
        history = app.dashboard.state.history
        assert history.between_polls >= before.between_polls + 2  # both ends
        assert history.seen >= before.seen + 2
        assert history.kernel is not None and history.kernel.opens >= 2  # the kernel counted them too
        lines = drawn_lines(app)
        assert "Closed at" in lines[0] and "Lifetime" in lines[0] and "Local address" in lines[0]
        assert any(f"between polls tcp4  127.0.0.1:{client_port} 127.0.0.1:{port}" in line for line in lines)
        assert "between polls" in status_text(app) and "TCP opens" in status_text(app)
        summary = str(app.query_one("#history-summary").content)
        assert "between polls" in summary and "Kernel since start" in summary


async def test_a_test_connection_from_the_app_is_in_the_history_marked_mine() -> None:
    app = history_app("mine")
    async with app.run_test(size=(200, 50)) as pilot:
        await wait_for(pilot, lambda: app.dashboard.poll_count >= 1, timeout=WAIT)
        await pilot.press("h")
        app.dashboard.launch(ProbeRequest("", "single", 1, 0.0))  # the built-in server: a few ms, no poll sees it
        await wait_for(
            pilot, lambda: app.dashboard.tests.get(1) is not None and app.dashboard.tests[1].done, timeout=WAIT
        )
        test = app.dashboard.tests[1]
        four_tuple = test.connections[0].four_tuple
        assert test.ok and four_tuple is not None
        await wait_for(
            pilot,
            lambda: any(r.sock.four_tuple == four_tuple for r in app.dashboard.state.history.visible),
            timeout=WAIT,
        )
        record = next(r for r in app.dashboard.state.history.visible if r.sock.four_tuple == four_tuple)
        assert not record.seen_in_poll
        await pilot.pause()
        lines = drawn_lines(app)
        client_line = next(line for line in lines if f"127.0.0.1:{four_tuple[2]} " in line)
        assert client_line.startswith("●") and "between polls" in client_line
        assert "→ more" not in lines[0]  # at 200 columns every column is on the first screen
        assert all(line.startswith("●") for line in lines[1:] if line.strip())  # the filter: only mine


async def test_the_filter_box_filters_the_history_too(sockets) -> None:
    first, second = sockets.listener(), sockets.listener()
    app = history_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.dashboard.poll_count >= 1, timeout=WAIT)
        await pilot.press("h")
        first_client, second_client = short_connection(first), short_connection(second)
        await wait_for(pilot, lambda: record_of(app, first_client) and record_of(app, second_client), timeout=WAIT)
        await pilot.press("slash", *f"port:{first.getsockname()[1]}", "enter")
        await wait_for(pilot, lambda: record_of(app, second_client) is None, timeout=WAIT)
        visible = app.dashboard.state.history.visible
        assert record_of(app, first_client) is not None
        assert all(first.getsockname()[1] in (r.sock.local_port, r.sock.remote_port) for r in visible)
        assert all(str(second_client) not in line for line in drawn_lines(app))


def test_the_history_keeps_at_most_its_bound_newest_first(sockets) -> None:
    """Fed the kernel's own destroy events of five real connections (both ends: ten), a bound of 3
    keeps the newest three, and the filter's list follows the evictions."""
    listener = sockets.listener()
    port = listener.getsockname()[1]
    destroyed = DestroyListener([("tcp", 4)])
    try:
        client_ports = [short_connection(listener) for _ in range(5)]
        ours: list[Socket] = []
        deadline = time.monotonic() + WAIT
        while len(ours) < 10 and time.monotonic() < deadline:
            ours += [sock for sock in destroyed.receive(timeout=0.5) if port in (sock.local_port, sock.remote_port)]
    finally:
        destroyed.close()
    assert len(ours) == 10
    history = ConnectionHistory(3, destroy_events=True)
    history.set_filter(parse_filter(f"rport:{port}"))  # the client ends
    history.polled(Changes(), time.time())
    for sock in ours:
        history.destroyed([sock], time.time())
    state = history.state()
    assert (state.kept, state.closed, state.between_polls, state.bound) == (3, 10, 10, 3)
    kept = [record.sock for record in history.records]
    assert kept == ours[-3:]  # the newest three
    assert [record.sock for record in state.visible] == [sock for sock in reversed(kept) if sock.remote_port == port]
    assert client_ports[-1] in [record.sock.local_port for record in state.visible]
    history.set_filter(parse_filter(""))
    assert [record.sock for record in history.state().visible] == kept[::-1]  # newest first


async def test_without_destroy_events_the_status_says_so_and_polls_fill_the_history(sockets, monkeypatch) -> None:
    def refused(kinds: object) -> None:  # what a seccomp filter does; cannot be set up unprivileged
        raise DestroyEventsUnavailable("sock_diag destroy events unavailable: [Errno 1] Operation not permitted")

    monkeypatch.setattr("conntui.destroy_feed.DestroyListener", refused)
    listener = sockets.listener()
    port = listener.getsockname()[1]
    app = history_app(f"port:{port}", interval=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.dashboard.poll_count >= 1, timeout=WAIT)
        assert app.dashboard.feed is None
        status = app.query_one("#status")
        assert "closes from polls only" in status_text(app)

        def drawn() -> str:
            return "".join(strip.text for strip in status.render_lines(status.region.reset_offset))

        # visible at 80x24 with the rest, once the status line's new text is laid out
        await wait_for(pilot, lambda: status.region.height == 2 and "closes from polls only" in drawn(), timeout=WAIT)
        client, _server = sockets.connection(listener)
        client_port = client.getsockname()[1]
        await wait_for(
            pilot, lambda: any(row.sock.local_port == client_port for row in app.dashboard.state.visible), timeout=WAIT
        )
        reset(client)  # gone at once; polling goes on: the poll that misses it closes it
        await wait_for(pilot, lambda: record_of(app, client_port), timeout=WAIT)
        assert record_of(app, client_port).seen_in_poll
        await pilot.press("h")
        assert "Operation not permitted" in str(app.query_one("#history-summary").content)
        assert "between polls" not in status_text(app)


async def test_the_proc_backend_has_no_destroy_events_and_says_so() -> None:
    app = history_app(backend="proc", interval=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.dashboard.poll_count >= 1, timeout=WAIT)
        assert "closes from polls only" in status_text(app)
        assert "proc backend has no destroy events" in app.dashboard.closes_note


def test_the_history_counts_start_at_the_first_poll() -> None:
    from conntui.sources.kernel_counts import KernelCounts

    readings = iter([KernelCounts(10, 10, 0, 0, 5, 5), KernelCounts(12, 11, 1, 0, 5, 6)])
    history = ConnectionHistory(destroy_events=True, read_counts=lambda: next(readings))
    history.polled(Changes(), now=100.0)
    state = history.state()
    assert state.kernel is not None and (state.kernel.opens, state.kernel.attempt_fails, state.kernel.udp_out) == (
        3,
        1,
        1,
    )


@pytest.mark.parametrize("size", [(80, 24), (200, 50)])
async def test_the_history_pane_fits_with_every_pane_open(size: tuple[int, int]) -> None:
    app = history_app(interval=0.5, history=3)
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: app.dashboard.poll_count >= 1, timeout=WAIT)
        await pilot.press("enter", "T", "l", "h")
        await pilot.pause()
        screen = app.screen.region
        for selector in ("#sockets", "#history-table", "#history-summary", "#filter", "#status", "Footer"):
            widget = app.query_one(selector)
            assert widget.region.height >= 1 and screen.contains_region(widget.region), selector
        assert app.query_one(HistoryTable).scrollable_content_region.height >= 2  # titles and a line at least
        assert not app.query_one(HistoryPane).has_class("hidden")
        assert app.dashboard.state.history.bound == 3  # as given (conntui --history 3)
        await pilot.press("h")
        assert app.query_one(HistoryPane).has_class("hidden")


def test_a_socket_a_poll_missed_under_churn_is_neither_closed_nor_opened_again() -> None:
    """A dump taken while sockets come and go can miss a live one: the next poll has it again."""
    from conntui.socket_events import EventTracker

    sock = Socket(7, "tcp", 4, "127.0.0.1", 40000, "127.0.0.1", 8080, "ESTABLISHED", inode=1, pids=(42,))
    tracker = EventTracker(destroy_events=True)
    assert tracker.polled(Changes(opened=(sock,)), now=1.0) == []  # the baseline
    assert tracker.polled(Changes(closed=(sock,)), now=2.0) == []  # missed: its destroy event awaited
    assert tracker.polled(Changes(opened=(sock,)), now=3.0) == []  # back: not news
    assert tracker.next_deadline is None and tracker.overdue(now=10.0) == []
    closed = tracker.destroyed(sock._replace(state="CLOSE", pids=()), now=4.0)
    assert closed.seen_in_poll and closed.first_seen == 1.0 and closed.sock.pids == (42,)


async def test_a_hostile_process_name_is_escaped_in_the_history(named_listener) -> None:  # noqa: F811 (the fixture)
    name, real, shown = b"\x1b]0;pwn\x07[/]\xc2\x9b\x7f", "\x1b]0;pwn\x07[/]\x9b\x7f", r"\x1b]0;pwn\x07[/]\x9b\x7f"
    app = history_app("proc:pwn", interval=0.2)
    async with app.run_test(size=(200, 50)) as pilot:
        await wait_for(pilot, lambda: app.dashboard.poll_count >= 1, timeout=WAIT)
        await pilot.press("h")
        pid, port = named_listener(name)
        await wait_for(
            pilot, lambda: any(row.sock.local_port == port for row in app.dashboard.state.visible), timeout=WAIT
        )
        os.kill(pid, signal.SIGKILL)  # the child this test started: its listener ends with it
        await wait_for(pilot, lambda: record_of(app, port), timeout=WAIT)
        assert record_of(app, port).sock.process == real  # the owner the poll saw
        await pilot.pause()
        drawn = [line for line in drawn_lines(app) if f":{port} " in line]
        assert drawn and shown[:19] in drawn[0] and not CONTROL.search(drawn[0])  # cut at 20 characters


async def test_destroy_events_lost_in_a_burst_are_said_and_the_history_goes_on(sockets) -> None:
    """A real loss: the feed's receive buffer shrunk to the minimum, a burst of closes overflows it."""
    listener = sockets.listener()
    port = listener.getsockname()[1]
    app = history_app(f"port:{port}")
    feed = app.dashboard.feed
    assert feed is not None
    feed.listener._netlink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)  # the kernel's minimum
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.dashboard.poll_count >= 1, timeout=WAIT)
        for _ in range(200):  # bounded: the buffer holds a few events at most
            short_connection(listener)
            if app.dashboard.closes_lost:
                break
            await pilot.pause(0)
        await wait_for(pilot, lambda: app.dashboard.closes_lost, timeout=WAIT)
        assert "some closes lost" in status_text(app) and "closes from polls only" not in status_text(app)
        assert any("dropped destroy events" in line for line in app.dashboard.events)
        polls = app.dashboard.poll_count
        await pilot.press("r")  # the dashboard goes on
        await wait_for(pilot, lambda: app.dashboard.poll_count > polls, timeout=WAIT)


def test_a_destroy_event_read_after_the_wait_is_not_a_second_end() -> None:
    """A busy engine can read a destroy event after `overdue` closed its socket as the poll saw it:
    that end is not announced twice, nor counted as a connection between polls."""
    from conntui.socket_events import DESTROY_EVENT_WAIT, EventTracker

    sock = Socket(9, "tcp", 4, "127.0.0.1", 40001, "127.0.0.1", 8080, "ESTABLISHED", inode=1, pids=(42,))
    other = sock._replace(key=10, local_port=40002)
    tracker = EventTracker(destroy_events=True)
    tracker.polled(Changes(opened=(sock,)), now=1.0)  # the baseline
    tracker.polled(Changes(closed=(sock,)), now=2.0)  # gone: its destroy event awaited
    time.sleep(DESTROY_EVENT_WAIT + 0.1)
    assert [event.sock.key for event in tracker.overdue(now=3.0)] == [9]
    assert tracker.destroyed(sock._replace(state="CLOSE"), now=4.0) is None  # late: already closed
    late_other = tracker.destroyed(other._replace(state="CLOSE"), now=4.0)
    assert late_other is not None and not late_other.seen_in_poll  # a socket no poll saw is still news


async def test_a_burst_of_closes_is_not_lost_while_the_dashboard_draws(sockets) -> None:
    """Thousands of connections closed in a fraction of a second: the feed reads as they come (a
    burst waiting in the kernel's buffer overflowed it), so every end is in the history."""
    listener = sockets.listener()
    port = listener.getsockname()[1]
    app = history_app(f"port:{port}", interval=0.5)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: app.dashboard.poll_count >= 1, timeout=WAIT)
        await pilot.press("h")
        client_ports = set()
        for _ in range(BURST):  # bounded: each lives a moment, the client closing first
            client = socket.create_connection(listener.getsockname()[:2])
            server, _ = listener.accept()
            client_ports.add(client.getsockname()[1])
            client.close()
            server.close()
        await wait_for(pilot, lambda: app.dashboard.state.history.closed >= 2 * BURST, timeout=WAIT)
        assert not app.dashboard.closes_lost
        recorded = {record.sock.local_port for record in app.dashboard.state.history.visible}
        assert client_ports <= recorded


def test_a_socket_gone_before_the_first_poll_was_in_is_kept_but_not_counted_as_seen() -> None:
    """It may have opened before the counts started (a busy machine, a slow first poll): counting it
    would claim more connections seen than the kernel counted."""
    sock = Socket(11, "tcp", 4, "127.0.0.1", 40003, "127.0.0.1", 8080, "CLOSE", inode=0)
    later = sock._replace(key=12, local_port=40004)
    history = ConnectionHistory(10, destroy_events=True)
    history.start_counting(100.0)
    history.destroyed([sock], 100.5)  # read during the first poll
    history.polled(Changes(), 101.0)  # the first poll is in
    history.destroyed([later], 102.0)
    state = history.state()
    assert (state.closed, state.between_polls, state.seen) == (2, 1, 1)


def test_your_own_tests_stay_when_others_closes_pass_the_bound() -> None:
    mine = Socket(20, "tcp", 4, "127.0.0.1", 41000, "127.0.0.1", 8080, "CLOSE", inode=0)
    history = ConnectionHistory(3, destroy_events=True)
    history.polled(Changes(), 1.0)
    history.set_mine(frozenset({mine.four_tuple}))
    history.destroyed([mine], 2.0)
    others = [mine._replace(key=21 + n, local_port=41001 + n) for n in range(5)]
    history.destroyed(others, 3.0)
    state = history.state()
    assert [record.sock.key for record in state.visible] == [25, 24, 23, 20]  # the bound's newest three, then mine
    assert state.kept == 4
    history.set_filter(parse_filter("mine"))
    assert [record.sock.key for record in history.state().visible] == [20]


def test_seen_never_exceeds_the_kernels_count() -> None:
    from conntui.sources.kernel_counts import KernelCounts

    counts = iter([KernelCounts(10, 10, 0, 0, 0, 0), KernelCounts(11, 10, 0, 0, 0, 0)])
    history = ConnectionHistory(
        10, destroy_events=True, read_counts=lambda: next(counts, KernelCounts(11, 10, 0, 0, 0, 0))
    )
    sock = Socket(30, "tcp", 4, "127.0.0.1", 42000, "127.0.0.1", 8080, "ESTABLISHED", inode=5)
    history.polled(Changes(), 1.0)  # the baseline
    opened = [sock._replace(key=31 + n, local_port=42001 + n) for n in range(2)]
    history.polled(Changes(opened=tuple(opened)), 2.0)  # one of them opened before the counts started
    state = history.state()
    assert state.kernel is not None and state.kernel.opens == 1 and state.seen == 1


def test_a_reset_connection_seen_by_a_poll_keeps_its_four_tuple(sockets) -> None:
    """Closed with SO_LINGER 0, a socket is disconnected before it is destroyed: the kernel's
    destroy message has no four-tuple left. The poll that saw it has it."""
    import struct

    from conntui.socket_events import EventTracker

    listener = sockets.listener()
    client, _server = sockets.connection(listener)
    ends = (client.getsockname()[1], listener.getsockname()[1])
    poller = Poller(open_source(), "tcp")
    destroyed = DestroyListener([("tcp", 4)])
    tracker = EventTracker(destroy_events=True)
    try:
        snapshot, changes = poller.poll()
        tracker.polled(changes, time.time())  # the baseline: ours among it
        polled = next(sock for sock in snapshot.sockets if (sock.local_port, sock.remote_port) == ends)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        deadline, ours = time.monotonic() + WAIT, None
        while ours is None and time.monotonic() < deadline:
            ours = next((sock for sock in destroyed.receive(timeout=0.5) if sock.key == polled.key), None)
    finally:
        destroyed.close()
        poller.close()
    assert ours is not None and not ours.remote_port  # what the kernel says: port 0
    event = tracker.destroyed(ours, time.time())
    assert event is not None and (event.sock.local_port, event.sock.remote_port) == ends


async def test_a_connection_open_before_the_dashboard_started_closes_once_with_its_owner_and_lifetime(sockets) -> None:
    """The first rows go out before their owners: the history still knows those sockets from the
    first poll (a lifetime of at least the time since) and takes in their owners when they come."""
    listener = sockets.listener()
    port = listener.getsockname()[1]
    client, server = sockets.connection(listener)
    client_port = client.getsockname()[1]
    app = history_app(f"port:{port}", interval=0.5)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.dashboard.poll_count >= 2, timeout=WAIT)  # the rows, then their owners
        time.sleep(1.0)
        client.close()
        server.close()
        listener.close()
        await wait_for(pilot, lambda: record_of(app, client_port) and record_of(app, port), timeout=WAIT)
        records = [r for r in app.dashboard.state.history.visible if port in (r.sock.local_port, r.sock.remote_port)]
        assert len(records) == len({r.sock.key for r in records}) == 3  # each end once, and the listener once
        for record in records:
            assert record.sock.pids == (os.getpid(),) and record.sock.process  # the owner the polls saw
            assert record.lifetime_ms is None and record.first_seen is not None  # open before the first poll
            assert record.at - record.first_seen >= 1.0  # shown as "≥1s", not "≥0s"


def test_seen_follows_each_poll_even_when_the_kernels_counters_have_not_moved_since() -> None:
    """The state is kept while nothing changes; a poll counting new connections changes it, whether
    or not the kernel's counters moved since they were last read (`expire` reads them too)."""
    history = ConnectionHistory(bound=100, destroy_events=False)
    history.polled(Changes(), time.time())
    assert history.state().seen == 0  # kept from here
    new = Socket(1, "tcp", 4, "127.0.0.1", 40000, "127.0.0.1", 80, "ESTABLISHED", 5, 0, (), None, None,
                 None, None, None, None, None, None)  # fmt: skip
    history.expire()
    history.polled(Changes(opened=(new,)), time.time())
    assert history.state().seen == 1
