"""iftop's 2 s, 10 s and 40 s averages and the total, from the TCP byte counters of a real
loopback connection that moves a known number of bytes; the poll times are set, so the windows
are exact (the bytes are the kernel's)."""

from __future__ import annotations

import dataclasses

from conntui.changes import Changes
from conntui.model import Snapshot
from conntui.poller import Poller
from conntui.sources import open_source
from conntui.view import ConnectionView, cell
from tests.conftest import find, linux_only, poll_until

SENT = 300_000


def at(snapshot: Snapshot, seconds: float) -> Snapshot:
    return dataclasses.replace(snapshot, taken_at=seconds)


@linux_only
def test_averages_and_total_of_a_connection_that_sent_a_known_number_of_bytes(sockets) -> None:
    listener = sockets.listener()
    port = listener.getsockname()[1]
    client, server = sockets.connection(listener)
    _idle_client, _idle_server = sockets.connection(listener)
    local = client.getsockname()
    poller = Poller(open_source("netlink"), "tcp")
    try:
        view = ConnectionView()
        before = poll_until(poller, lambda socks: find(socks, local, ("127.0.0.1", port)))[0]
        snapshot, _ = poller.poll()
        view.apply(at(snapshot, 100.0), Changes())
        client.sendall(b"x" * SENT)
        received = 0
        while received < SENT:
            received += len(server.recv(65536))

        def acked(socks):
            rows = find(socks, local, ("127.0.0.1", port))
            return rows and rows[0].bytes_sent == before.bytes_sent + SENT

        poll_until(poller, acked)
        snapshot, _ = poller.poll()
        row = next(row for row in view.rows.values() if row.sock.four_tuple == before.four_tuple)
        averages = {}
        for seconds in (101.0, 103.0, 111.0, 140.0, 142.0):
            view.apply(at(snapshot, seconds), Changes())
            assert row.traffic is not None
            averages[seconds] = row.traffic.averages
        assert averages[101.0] == (SENT / 1, SENT / 1, SENT / 1)  # seen for one second: averaged over it
        assert averages[103.0] == (0, SENT / 3, SENT / 3)
        assert averages[111.0] == (0, 0, SENT / 11)
        assert averages[140.0] == (0, 0, SENT / 40)
        assert averages[142.0] == (0, 0, 0) and not view.moving  # all quiet: polls cost nothing again
        assert row.traffic.total == SENT
        assert cell(view.state(), row, "total", 0) == "293.0 KiB"
        server_side = next(row for row in view.rows.values() if row.sock.four_tuple == before.peer_tuple)
        assert server_side.traffic is not None and server_side.traffic.total == SENT  # received
        idle = [row for row in view.rows.values() if row.sock.local_port == port and row.sock.state == "LISTEN"]
        assert idle and all(row.traffic is None for row in idle)  # idle rows keep no history
        view.set_sort("total", reverse=True)  # the busy ones first
        assert {view.state().visible[0].key, view.state().visible[1].key} == {row.key, server_side.key}
    finally:
        poller.close()
