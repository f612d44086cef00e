"""Every available backend against real loopback sockets whose truth we know."""

from __future__ import annotations

import os
import socket
import time

import pytest

from conntui.model import Snapshot
from conntui.poller import Poller
from conntui.sources import SourceError, open_source
from tests.conftest import BACKENDS, HAS_IPV6, find, linux_only, poll_until

TRUTHFUL = {"netlink", "proc"}  # one row per kernel socket, every owner


@linux_only
def test_auto_backend_on_linux_is_netlink() -> None:
    source = open_source("auto")
    try:
        assert source.name == "netlink"
    finally:
        source.close()


def test_unknown_backend_is_an_error() -> None:
    with pytest.raises(SourceError, match="unknown backend"):
        open_source("carrier-pigeon")


def test_listener_and_established_pair(poller: Poller, sockets) -> None:
    listener = sockets.listener()
    client, _server = sockets.connection(listener)
    lport = listener.getsockname()[1]
    cport = client.getsockname()[1]
    snapshot, _ = poller.poll()
    (listen_row,) = [row for row in find(snapshot.sockets, ("127.0.0.1", lport)) if row.state == "LISTEN"]
    assert listen_row.remote_ip is None and listen_row.remote_port is None
    (client_row,) = find(snapshot.sockets, ("127.0.0.1", cport), ("127.0.0.1", lport))
    (server_row,) = find(snapshot.sockets, ("127.0.0.1", lport), ("127.0.0.1", cport))
    assert client_row.state == server_row.state == "ESTABLISHED"
    for row in (listen_row, client_row, server_row):
        assert os.getpid() in row.pids
        assert row.process and row.user
    assert client_row.four_tuple != server_row.four_tuple
    assert client_row.peer_tuple == server_row.four_tuple


@pytest.mark.skipif(not HAS_IPV6, reason="no IPv6 loopback")
def test_ipv6(poller: Poller, sockets) -> None:
    listener = sockets.listener("::1")
    client, _server = sockets.connection(listener)
    snapshot, _ = poller.poll()
    rows = find(snapshot.sockets, ("::1", client.getsockname()[1]), ("::1", listener.getsockname()[1]))
    assert len(rows) == 1 and rows[0].family == 6 and rows[0].state == "ESTABLISHED"


def test_udp_bound_and_connected(poller: Poller, sockets) -> None:
    bound = sockets.keep(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    bound.bind(("127.0.0.1", 0))
    connected = sockets.keep(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    connected.connect(bound.getsockname())
    snapshot, _ = poller.poll()
    (bound_row,) = find(snapshot.sockets, bound.getsockname(), proto="udp")
    assert bound_row.state == "NONE" and bound_row.remote_ip is None
    (connected_row,) = find(snapshot.sockets, connected.getsockname(), proto="udp")
    assert (connected_row.remote_ip, connected_row.remote_port) == bound.getsockname()


def test_time_wait_is_a_row_without_owner(poller: Poller, sockets) -> None:
    listener = sockets.listener()
    client, server = sockets.connection(listener)
    local, remote = client.getsockname(), client.getpeername()
    client.close()  # the side that closes first waits in TIME_WAIT
    time.sleep(0.05)
    server.close()
    rows = poll_until(poller, lambda socks: [s for s in find(socks, local, remote) if s.state == "TIME_WAIT"])
    assert rows[0].pids == () and rows[0].process is None and rows[0].user is None


@pytest.mark.parametrize("backend", sorted(TRUTHFUL & set(BACKENDS)))
def test_socket_shared_with_a_child_lists_both_owners(poller: Poller, sockets, child_holding) -> None:
    listener = sockets.listener()
    child = child_holding(listener)
    snapshot, _ = poller.poll()
    (row,) = find(snapshot.sockets, listener.getsockname())
    assert row.state == "LISTEN"
    assert set(row.pids) == {os.getpid(), child.pid}


@pytest.mark.parametrize("backend", sorted(TRUTHFUL & set(BACKENDS)))
def test_reuseport_listeners_are_two_rows_with_the_same_tuple(poller: Poller, sockets) -> None:
    first = sockets.listener(reuseport=True)
    sockets.listener(reuseport=True, port=first.getsockname()[1])
    snapshot, _ = poller.poll()
    rows = find(snapshot.sockets, first.getsockname())
    assert len(rows) == 2 and rows[0].key != rows[1].key
    counts = snapshot.tuple_counts()
    assert counts[rows[0].four_tuple] == 2 and counts.get(rows[0].four_tuple, 1) == 2
    assert all(count > 1 for count in counts.values())  # only the shared four-tuples are kept


def test_backends_agree_on_the_same_sockets(sockets) -> None:
    listener = sockets.listener()
    pairs = [sockets.connection(listener) for _ in range(3)]
    ports = {listener.getsockname()[1]} | {client.getsockname()[1] for client, _ in pairs}

    def ours(snapshot: Snapshot) -> set:
        return {
            (s.four_tuple, s.state)
            for s in snapshot.sockets
            if s.proto == "tcp" and s.local_port in ports and (s.remote_port is None or s.remote_port in ports)
            and s.local_ip == "127.0.0.1" and s.state in ("LISTEN", "ESTABLISHED")
        }  # fmt: skip

    seen = {}
    for name in BACKENDS:
        poller = Poller(open_source(name), "tcp4")
        try:
            seen[name] = ours(poller.poll()[0])
        finally:
            poller.close()
    assert len(seen[BACKENDS[0]]) == 7  # a listener and three connections, both ends
    assert all(value == seen[BACKENDS[0]] for value in seen.values()), seen


@pytest.mark.skipif("netlink" not in BACKENDS, reason="netlink only")
def test_netlink_reports_what_the_application_sent_and_received(sockets) -> None:
    listener = sockets.listener()
    client, server = sockets.connection(listener)
    poller = Poller(open_source("netlink"), "tcp4")

    def rows() -> tuple:
        snapshot, _ = poller.poll()
        (mine,) = find(snapshot.sockets, client.getsockname(), client.getpeername())
        (peer,) = find(snapshot.sockets, server.getsockname(), server.getpeername())
        (listening,) = [row for row in find(snapshot.sockets, listener.getsockname()) if row.state == "LISTEN"]
        return mine, peer, listening

    try:
        mine, peer, listening = rows()
        assert (mine.bytes_sent, mine.bytes_received) == (0, 0)  # the SYN is not data
        assert listening.rtt_ms is None and listening.bytes_sent is None  # no connection to measure
        client.sendall(b"x" * 1000)
        assert server.recv(2000)
        client.shutdown(socket.SHUT_WR)  # the FIN is not data either
        time.sleep(0.05)
        mine, peer, _ = rows()
    finally:
        poller.close()
    assert mine.bytes_sent == 1000 and mine.rtt_ms is not None and mine.rtt_ms >= 0 and mine.cwnd
    assert peer.state == "CLOSE_WAIT" and peer.bytes_received == 1000


@linux_only
def test_netlink_parser_stops_at_the_dumps_end_and_raises_the_kernels_error(sockets) -> None:
    """A datagram of the kernel's own rows, then the messages that end a dump: rows of another
    request are skipped, NLMSG_DONE ends the dump mid-datagram, NLMSG_ERROR raises its errno."""
    import struct

    from conntui.sources import netlink

    listener = sockets.listener()
    source = netlink.NetlinkSource()
    try:
        source._sequence = 7
        request = netlink._DIAG_REQUEST.pack(socket.AF_INET, socket.IPPROTO_TCP, 2, 1 << 10)  # listeners, tcp_info
        header = netlink._NLMSG_HEADER.pack(16 + len(request), netlink.SOCK_DIAG_BY_FAMILY, 0x301, 7, 0)
        source._netlink.sendto(header + request, (0, 0))
        rows_of_7 = source._netlink.recv(1 << 16)
    finally:
        source.close()
    first_length = struct.unpack_from("=I", rows_of_7)[0]
    assert first_length > 88 and struct.unpack_from("=H", rows_of_7, 4)[0] == netlink.SOCK_DIAG_BY_FAMILY
    first_row = rows_of_7[: (first_length + 3) & ~3]

    def control(kind: int, error: int = 0) -> bytes:
        return netlink._NLMSG_HEADER.pack(20, kind, 2, 7, 0) + struct.pack("=i", error)

    def parse(datagram: bytes, sequence: int = 7) -> list:
        rows: list = []
        done = netlink.DiagParser().parse(memoryview(datagram), sequence, "tcp", 4, True, rows, {}, {}, None)
        return [done, *rows]

    done, *rows = parse(first_row + control(netlink.NLMSG_DONE) + first_row)
    assert done and len(rows) == 1 and rows[0].state == "LISTEN" and rows[0].inode
    assert parse(first_row + control(netlink.NLMSG_DONE), sequence=8) == [False]  # another request's: not ours
    assert parse(first_row + control(netlink.NLMSG_ERROR, 0))[0]  # an acknowledgement ends it too
    with pytest.raises(OSError) as refused:
        parse(first_row + control(netlink.NLMSG_ERROR, -13))
    assert refused.value.errno == 13 and "tcp4" in str(refused.value)
    assert listener.getsockname()[1] in {row.local_port for row in parse(rows_of_7)[1:]}


def test_udp_rows_have_no_tcp_metrics(poller: Poller, sockets) -> None:
    bound = sockets.keep(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    bound.bind(("127.0.0.1", 0))
    snapshot, _ = poller.poll()
    (row,) = find(snapshot.sockets, bound.getsockname(), proto="udp")
    assert (row.rtt_ms, row.retrans, row.bytes_sent, row.bytes_received) == (None, None, None, None)


def test_a_process_that_is_gone_is_left_out_of_the_details() -> None:
    import subprocess
    import sys

    from conntui.sources.processes import ProcessDirectory

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)  # the pid is gone (and reaped) before we ask about it
    directory = ProcessDirectory()
    details = directory.describe([os.getpid(), child.pid])
    assert os.getpid() in details and child.pid not in details
    assert details[os.getpid()].name and details[os.getpid()].cmdline
