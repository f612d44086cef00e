"""Change detection and the dashboard's pure view, driven by real polls of real sockets."""

from __future__ import annotations

import socket
import struct
import time

from conntui.changes import diff, event_lines
from conntui.filters import parse_filter
from conntui.model import Snapshot, Socket
from conntui.poller import Poller
from conntui.sources import open_source
from conntui.uniqueness import find_peer, shared_parts
from conntui.view import CLOSED_SECONDS, NEW_SECONDS, ConnectionView, cell, format_age
from tests.conftest import find


def test_opened_closed_and_state_changes_between_real_polls(sockets) -> None:
    poller = Poller(open_source(), "tcp4")
    try:
        listener = sockets.listener()
        poller.poll()
        client, server = sockets.connection(listener)
        local, remote = client.getsockname(), client.getpeername()
        _, changes = poller.poll()
        assert {(s.local_port, s.remote_port) for s in changes.opened} >= {(local[1], remote[1]), (remote[1], local[1])}

        server.close()  # the server side closes first: the client side receives FIN -> CLOSE_WAIT
        state_changes = []

        def client_in_close_wait(socks) -> bool:
            return any(s.state == "CLOSE_WAIT" for s in find(socks, local, remote))

        deadline = time.monotonic() + 5
        while True:
            snapshot, changes = poller.poll()
            state_changes += changes.state_changed
            if client_in_close_wait(snapshot.sockets) or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert any(
            (after.local_port, before.state, after.state) == (local[1], "ESTABLISHED", "CLOSE_WAIT")
            for before, after in state_changes
        )
        client.close()  # CLOSE_WAIT -> gone (the server side is in TIME_WAIT/FIN_WAIT2, another socket)
        _, changes = poller.poll()
        assert any((s.local_port, s.remote_port) == (local[1], remote[1]) for s in changes.closed)
    finally:
        poller.close()


def test_diff_reports_state_and_owner_changes() -> None:
    before = Socket(1, "tcp", 4, "127.0.0.1", 1, "127.0.0.1", 2, "ESTABLISHED", pids=(10,))
    after = before._replace(state="CLOSE_WAIT", pids=(10, 11))
    changes = diff({1: before}, {1: after})
    assert changes.state_changed == ((before, after),)
    assert changes.owners_changed == ((before, after),)
    assert not changes.opened and not changes.closed
    lines = event_lines(changes)
    assert any("ESTABLISHED → CLOSE_WAIT" in line for line in lines)
    assert any("pids 10 → 10,11" in line for line in lines)
    assert not diff({1: before}, {1: before})


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_view_marks_new_then_keeps_closed_rows_marked_until_they_expire(sockets) -> None:
    clock = FakeClock()
    view = ConnectionView(clock=clock)
    poller = Poller(open_source(), "tcp4")
    try:
        listener = sockets.listener()
        view.apply(*poller.poll())
        assert all(row.mark == "" for row in view.state().visible)  # the first poll marks nothing
        client, server = sockets.connection(listener)
        key_of = {}
        view.apply(*poller.poll())
        for row in view.state().visible:  # exactly our connection: a TIME_WAIT may share the port
            if (row.sock.local_port, row.sock.remote_port) == (client.getsockname()[1], listener.getsockname()[1]):
                key_of["client"] = row.sock.key
                assert row.mark == "new"
        clock.now += NEW_SECONDS + 0.1
        assert view.expire()
        assert view.rows[key_of["client"]].mark == ""
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()  # linger 0: a reset, no TIME_WAIT, so the socket is really gone
        server.close()
        view.apply(*poller.poll())
        assert view.rows[key_of["client"]].mark == "closed"
        assert view.state().position(key_of["client"]) is not None
        clock.now += CLOSED_SECONDS + 0.1
        view.expire()
        assert key_of["client"] not in view.rows and view.state().position(key_of["client"]) is None
    finally:
        poller.close()


def test_view_filters_sorts_and_finds_positions() -> None:
    socks = tuple(
        Socket(port, "tcp", 4, f"10.0.0.{port}", port, None, None, "LISTEN", process=name)
        for port, name in ((9, "b"), (10, "a"), (100, "c"))
    )
    view = ConnectionView(clock=FakeClock())
    view.apply(Snapshot(socks), diff({}, {s.key: s for s in socks}))
    assert [row.sock.key for row in view.state().visible] == [9, 10, 100]
    view.set_sort("local_ip", reverse=True)
    assert [row.sock.key for row in view.state().visible] == [100, 10, 9]  # numeric, not text, order
    view.set_sort("process")
    assert [row.sock.key for row in view.state().visible] == [10, 9, 100]
    view.set_filter(parse_filter("port:9,100"))
    assert [row.sock.key for row in view.state().visible] == [9, 100]
    assert view.state().position(100) == 1 and view.state().position(10) is None


def test_uniqueness_counts_and_peer() -> None:
    server = Socket(1, "tcp", 4, "127.0.0.1", 8080, "127.0.0.1", 50001, "ESTABLISHED")
    clients = [Socket(10 + i, "tcp", 4, "127.0.0.1", 50001 + i, "127.0.0.1", 8080, "ESTABLISHED") for i in range(3)]
    everything = [server, *clients]
    sentences = [part.sentence() for part in shared_parts(clients[0], everything)]
    assert sentences == [
        "same four-tuple: 1 live socket — unique, as a connection must be",
        "same local endpoint 127.0.0.1:50001: 1 live socket — no other",
        "same remote endpoint 127.0.0.1:8080: 3 live sockets — 2 others differing only in local port",
        "same local port 50001: 1 live socket — no other",
        "same address pair 127.0.0.1 → 127.0.0.1: 4 live sockets — 3 others differing in ports",
    ]
    assert find_peer(clients[0], everything) == server
    assert find_peer(clients[1], everything) is None


def test_uniqueness_of_a_closed_socket_says_it_closed() -> None:
    closed = Socket(1, "tcp", 4, "127.0.0.1", 50001, "127.0.0.1", 8080, "TIME_WAIT")
    other = Socket(2, "tcp", 4, "127.0.0.1", 50002, "127.0.0.1", 8080, "ESTABLISHED")
    sentences = [part.sentence() for part in shared_parts(closed, [other])]
    assert sentences[:3] == [
        "same four-tuple: 0 live sockets — none: this socket has closed",
        "same local endpoint 127.0.0.1:50001: 0 live sockets — none now",
        "same remote endpoint 127.0.0.1:8080: 1 live socket — 1 other differing only in local port",
    ]


def test_uniqueness_of_identical_reuseport_listeners() -> None:
    listeners = [Socket(key, "tcp", 4, "0.0.0.0", 80, None, None, "LISTEN") for key in (1, 2, 3)]
    accepted = Socket(4, "tcp", 4, "10.0.0.1", 80, "10.0.0.2", 5000, "ESTABLISHED")
    sentences = [part.sentence() for part in shared_parts(listeners[0], [*listeners, accepted])]
    assert sentences == [
        "same four-tuple: 3 live sockets — identical: only SO_REUSEPORT sockets, unconnected UDP or separate "
        "network namespaces can share one",
        "same local endpoint 0.0.0.0:80: 3 live sockets — 2 identical to it",
        "same local port 80: 4 live sockets — 1 other differing in local address or remote endpoint, 2 identical to it",
    ]


def test_format_age() -> None:
    assert [format_age(s) for s in (0, 59, 61, 3600 + 120, 90000)] == ["0s", "59s", "1m01s", "1h02m", "1d01h"]


def test_sockets_open_before_the_first_poll_are_at_least_that_old_and_new_ones_exact() -> None:
    clock = FakeClock()
    view = ConnectionView(clock=clock)
    old = Socket(1, "tcp", 4, "127.0.0.1", 22, None, None, "LISTEN")
    new = Socket(2, "tcp", 4, "127.0.0.1", 80, None, None, "LISTEN")
    view.apply(Snapshot((old,)), diff({}, {1: old}))
    clock.now += 60
    view.apply(Snapshot((old, new)), diff({1: old}, {1: old, 2: new}))
    clock.now += 240
    state = view.state()
    ages = {row.sock.key: cell(state, row, "age", clock.now) for row in state.visible}
    assert ages == {1: "≥5m00s", 2: "4m00s"}


def test_a_closed_row_whose_key_comes_back_is_new_again() -> None:
    clock = FakeClock()
    view = ConnectionView(clock=clock)
    waiting = Socket(("tcp", 4, "127.0.0.1", 1, "127.0.0.1", 2, "TIME_WAIT"), "tcp", 4, "127.0.0.1", 1,
                     "127.0.0.1", 2, "TIME_WAIT")  # fmt: skip
    view.apply(Snapshot(()), diff({}, {}))
    view.apply(Snapshot((waiting,)), diff({}, {waiting.key: waiting}))
    view.apply(Snapshot(()), diff({waiting.key: waiting}, {}))
    assert view.rows[waiting.key].mark == "closed"
    view.apply(Snapshot((waiting,)), diff({}, {waiting.key: waiting}))
    clock.now += CLOSED_SECONDS + 0.1
    view.expire()
    assert waiting.key in view.rows  # alive: not dropped with the old "closed" mark
