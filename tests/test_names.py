"""Names for numbers: service names, reverse DNS (asynchronous, bounded, timed out, sanitised), the
filter matching the names shown, and the `self` and `ssh` terms — on real loopback sockets."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from conntui.filters import parse_filter, ssh_session
from conntui.model import Socket
from conntui.names import Names, service_name
from conntui.poller import Poller
from conntui.sources import open_source
from conntui.ui.app import ConntuiApp
from conntui.ui.socket_table import SocketTable
from tests.conftest import find, linux_only, poll_until, wait_for
from tests.test_columns import line_of

NAMED_PORTS = (8080, 3306, 5432, 6379, 8000, 8443, 9000, 5000)  # ports with a well-known service name


def named_listener(sockets) -> socket.socket:
    """A loopback listener on a free port that has a service name."""
    for port in NAMED_PORTS:
        if service_name(port, "tcp") is None:
            continue
        try:
            return sockets.listener(port=port)
        except OSError:
            continue
    pytest.skip("no free port with a service name")


def wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_service_names_come_from_the_services_database() -> None:
    assert service_name(443, "tcp") == "https"
    assert service_name(22, "tcp") == "ssh"
    assert service_name(64999, "tcp") is None


def test_reverse_dns_fills_in_the_background_and_is_cached() -> None:
    calls: list[str] = []

    def resolve(ip: str) -> str | None:
        calls.append(ip)
        return socket.gethostbyaddr(ip)[0]  # the real resolver: 127.0.0.1 is in /etc/hosts

    names = Names(resolve=resolve)
    assert names.host("127.0.0.1") is None  # hidden: numbers only, nothing looked up
    assert calls == []
    names.toggle_hosts()
    assert names.host("127.0.0.1") is None  # asked, not waited for
    wait_until(lambda: names.host("127.0.0.1") is not None)
    assert names.host("127.0.0.1") == socket.gethostbyaddr("127.0.0.1")[0]
    assert names.host("0.0.0.0") is None and names.host(None) is None  # wildcards are not looked up
    assert calls == ["127.0.0.1"]


def test_lookups_are_bounded_in_flight_and_a_slow_one_keeps_its_number() -> None:
    # A resolver that hangs (DNS unreachable) cannot be produced on loopback: this one blocks until released.
    release, running, most = threading.Event(), [0], [0]
    lock = threading.Lock()

    def hanging(ip: str) -> str:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        release.wait(10)
        with lock:
            running[0] -= 1
        return "late.example"

    names = Names(resolve=hanging, in_flight=2, timeout=0.2)
    names.toggle_hosts()
    try:
        addresses = [f"127.0.0.{n}" for n in range(2, 8)]
        names.look_up(addresses)
        wait_until(lambda: running[0] == 2)
        time.sleep(0.3)
        assert names.host("127.0.0.2") is None  # given up: the number stays
        assert names._hosts["127.0.0.2"] is None
        assert most[0] == 2  # the given-up lookups still hold their places
    finally:
        release.set()
    wait_until(lambda: all(ip in names._hosts for ip in addresses))
    assert most[0] == 2
    assert names._hosts["127.0.0.2"] is None  # a late answer does not undo the timeout
    assert "late.example" in names._hosts.values()  # those started later answered in time


def test_a_hostile_name_is_drawn_escaped() -> None:
    names = Names(resolve=lambda ip: "evil\x1b]0;pwned\x07\u202e.example")
    names.toggle_hosts()
    sock = Socket(1, "tcp", 4, "127.0.0.1", 40000, "127.0.0.9", 80, "ESTABLISHED")
    names.look_up(["127.0.0.9"])
    wait_until(lambda: "127.0.0.9" in names._hosts)
    texts = {"remote": "127.0.0.9:80", "remote_ip": "127.0.0.9"}
    names.decorate(texts, sock)
    assert texts["remote_ip"] == "evil\\x1b]0;pwned\\x07\\u202e.example"
    assert texts["remote"] == "evil\\x1b]0;pwned\\x07\\u202e.example:80"


def test_the_filter_matches_the_names_shown_and_only_then() -> None:
    names = Names(resolve=lambda ip: "db.internal")
    web = Socket(1, "tcp", 4, "127.0.0.1", 40000, "127.0.0.9", 443, "ESTABLISHED")
    assert not parse_filter("https").matches(web, (), names)
    names.toggle_services()
    assert parse_filter("https").matches(web, (), names)
    assert not parse_filter("host:db").matches(web, (), names)
    names.toggle_hosts()
    names.look_up(["127.0.0.9"])
    wait_until(lambda: names.known_host("127.0.0.9") is not None)
    assert parse_filter("host:DB.int").matches(web, (), names)
    assert parse_filter("internal").matches(web, (), names)
    assert not parse_filter("!host:db").matches(web, (), names)


@linux_only
def test_self_is_conntuis_own_sockets(sockets) -> None:
    listener = sockets.listener()
    port = listener.getsockname()[1]
    poller = Poller(open_source(), "tcp")
    try:
        rows = poll_until(poller, lambda socks: find(socks, ("127.0.0.1", port)))
        snapshot_rows = poller.poll()[0].sockets
    finally:
        poller.close()
    assert parse_filter("self").matches(rows[0])
    assert not parse_filter("!self").matches(rows[0])
    assert not any(parse_filter("self").matches(sock) for sock in snapshot_rows if os.getpid() not in sock.pids)


def test_ssh_is_the_session_in_ssh_connection(sockets, monkeypatch) -> None:
    listener = sockets.listener()
    client, server = sockets.connection(listener)
    client_ip, client_port = client.getsockname()[:2]
    server_ip, server_port = server.getsockname()[:2]
    monkeypatch.setenv("SSH_CONNECTION", f"{client_ip} {client_port} {server_ip} {server_port}")
    poller = Poller(open_source(), "tcp")
    try:
        rows = poll_until(poller, lambda socks: find(socks, (server_ip, server_port), (client_ip, client_port)))
        other_end = find(poller.poll()[0].sockets, (client_ip, client_port), (server_ip, server_port))
    finally:
        poller.close()
    assert parse_filter("ssh").matches(rows[0])  # sshd's side of the user's connection
    assert not parse_filter("!ssh").matches(rows[0])
    assert not parse_filter("ssh").matches(other_end[0])
    monkeypatch.delenv("SSH_CONNECTION")
    assert not parse_filter("ssh").matches(rows[0])  # not logged in over SSH: nothing is the session


@pytest.mark.parametrize(
    "value",
    ["", "1.2.3.4 22", "1.2.3.4 x 5.6.7.8 22", "1.2.3.4 1 nonsense 22", f"1.2.3.4 {'9' * 5000} 5.6.7.8 22"],
)
def test_a_malformed_ssh_connection_means_no_session(value: str) -> None:
    assert ssh_session({"SSH_CONNECTION": value}) is None


def test_a_v4_mapped_ssh_connection_is_its_ipv4_form() -> None:
    session = ssh_session({"SSH_CONNECTION": "::ffff:10.0.0.2 50000 ::ffff:10.0.0.1 22"})
    sock = Socket(1, "tcp", 4, "10.0.0.1", 22, "10.0.0.2", 50000, "ESTABLISHED")
    assert session is not None
    assert parse_filter("ssh").matches(sock) is False  # parse_filter reads the real environment
    from conntui.filters import _same_connection

    assert _same_connection(sock, session)


@linux_only
async def test_n_and_d_show_names_in_the_table(sockets) -> None:
    listener = named_listener(sockets)
    port = listener.getsockname()[1]
    client, _server = sockets.connection(listener)
    client_port = client.getsockname()[1]
    service = service_name(port, "tcp")
    host = socket.gethostbyaddr("127.0.0.1")[0]
    app = ConntuiApp(Poller(open_source(), "tcp"), interval=0.2, filter_text=f"port:{port} !state:time-wait")
    async with app.run_test(size=(120, 30)) as pilot:
        table = app.query_one(SocketTable)

        def client_row():
            return next((row for row in app.dashboard.state.visible if row.sock.local_port == client_port), None)

        await wait_for(pilot, lambda: client_row() is not None)
        key = client_row().sock.key
        assert service not in line_of(table, key)
        await pilot.press("n")
        await pilot.pause(0.1)
        assert f"{port} {service}" in line_of(table, key)
        await pilot.press("d")
        await wait_for(pilot, lambda: host in line_of(table, key))
        await pilot.press("slash", *f" host:{host}", "enter")
        await wait_for(pilot, lambda: app.dashboard.state.filter.text == f"port:{port} !state:time-wait host:{host}")
        # both ends of the connection have 127.0.0.1 as their remote address; the listener has none
        assert sorted(row.sock.local_port for row in app.dashboard.state.visible) == sorted([port, client_port])
        await pilot.press("d", "n")
        await wait_for(pilot, lambda: not app.dashboard.state.visible)  # names hidden: host: matches none
        assert app.dashboard.names.services_shown is False


def test_a_service_name_is_cut_before_the_address_and_port() -> None:
    from conntui.ui.socket_table import _fit
    from conntui.view import COLUMN_BY_NAME

    names = Names()
    names.toggle_services()
    sock = Socket(1, "tcp", 4, "127.0.0.3", 5432, "127.0.0.1", 40000, "ESTABLISHED")
    texts = {"local": "127.0.0.3:5432", "local_port": "5432", "remote_port": "40000"}
    names.decorate(texts, sock)
    service = service_name(5432, "tcp")
    assert texts["local_port"] == f" 5432 {service}" and texts["remote_port"] == "40000"  # numbers line up
    joined = COLUMN_BY_NAME["local"]
    assert _fit(texts["local"], 40, joined).rstrip() == f"127.0.0.3:5432 {service}"
    assert _fit(texts["local"], 18, joined) == f"127.0.0.3:5432 {service}"[:17] + "…"
    assert _fit(texts["local"], 15, joined).rstrip() == "127.0.0.3:5432"  # no room for a name: none
    assert _fit(texts["local"], 12, joined).endswith(":5432")  # the address gives way, the port stays
