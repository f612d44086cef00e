"""`list`'s forked child dumps the sockets into memory shared with `list`, which parses them as they come."""

from __future__ import annotations

import mmap
import os
import signal
import socket
import threading

import pytest

from conntui.poller import Poller
from conntui.sources import open_source
from conntui.sources.dumped import ROW_BYTES, SharedDump, room_for_a_dump
from conntui.sources.netlink import NetlinkSource
from conntui.sources.owners import scan_in_child
from tests.conftest import find, linux_only

pytestmark = linux_only


@pytest.fixture(autouse=True)
def always_fork(monkeypatch) -> None:
    """The child is forked whatever the machine's load (`worth_forking` would do the work here)."""
    import conntui.forked as forked

    monkeypatch.setattr(forked, "worth_forking", lambda: True)


@pytest.fixture
def many_connections(sockets) -> list[tuple[int, int]]:
    """300 connections (600 sockets, a dump of several replies): each one's (local, remote) port pair."""
    listener = sockets.listener()
    pairs = []
    for _ in range(300):
        client, _server = sockets.connection(listener)
        pairs.append(client.getsockname()[1])
    return [(port, listener.getsockname()[1]) for port in pairs]


def one_shot(kind: str, dump_kind: str | None) -> tuple[list, int]:
    """`list`'s poll of `kind` with its child dumping `dump_kind`: the rows, and how many dumps
    `list` asked the kernel for itself."""
    source = open_source("netlink")
    assert isinstance(source, NetlinkSource)
    poller = Poller(source, kind)
    try:
        snapshot = poller.one_shot(scan_in_child(poller.owners, dump_kind)).snapshot()
        return list(snapshot.sockets), source._sequence
    finally:
        poller.close()


def test_list_parses_the_childs_dump_and_asks_the_kernel_for_none_itself(many_connections) -> None:
    assert room_for_a_dump() >= 2 * 600 * ROW_BYTES  # the shared memory is sized for the sockets there are
    rows, own_dumps = one_shot("tcp4", "tcp4")
    assert own_dumps == 0
    clients = {(row.local_port, row.remote_port): row for row in rows}
    assert all(clients[pair].pids == (os.getpid(),) for pair in many_connections)  # every reply, each with its owner


def test_kinds_the_child_dumped_and_list_did_not_ask_for_are_passed_over(sockets) -> None:
    udp = sockets.keep(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    udp.bind(("127.0.0.1", 0))
    rows, own_dumps = one_shot("udp4", "inet")  # the child dumps tcp4 and tcp6 first
    assert own_dumps == 0 and len(find(rows, udp.getsockname(), proto="udp")) == 1


def test_a_kind_the_child_did_not_dump_is_dumped_by_list(sockets) -> None:
    listener = sockets.listener()
    rows, own_dumps = one_shot("tcp", "tcp6")  # tcp4 comes first, and only list dumps it
    assert own_dumps == 1 and len(find(rows, listener.getsockname())) == 1


def test_a_child_killed_while_it_dumps_costs_time_not_rows(many_connections) -> None:
    """A fault that cannot be had on cue otherwise: the child ends (SIGKILL) the moment it starts.
    `list` dumps and scans itself."""
    source = open_source("netlink")
    poller = Poller(source, "tcp4")
    try:
        pending = scan_in_child(poller.owners, "tcp4")
        if pending._child is not None:
            os.kill(pending._child.pid, signal.SIGKILL)
        rows = poller.one_shot(pending).snapshot().sockets
    finally:
        poller.close()
    clients = {(row.local_port, row.remote_port): row for row in rows}
    assert all(clients[pair].pids == (os.getpid(),) for pair in many_connections)


def test_a_dump_that_does_not_fit_the_shared_memory_gives_up_and_list_dumps_itself(many_connections) -> None:
    """Both sides of the dump in this process, through a real pipe: a mapping too small for the
    dump (one reply's room) makes the writer give up, and the reader then has no replies for it."""
    dump = SharedDump("tcp4")
    dump.memory = mmap.mmap(-1, 65536)
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb") as reader, os.fdopen(write_end, "wb") as writer:
        writing = threading.Thread(target=dump.write, args=(writer,))
        writing.start()
        sequence, replies = dump.replies(reader.read, "tcp", 4) or (0, iter(()))
        assert sequence == 1 and len(list(replies)) == 1  # the first reply, then no room for another: given up
        writing.join(timeout=10)
    assert dump.replies(reader.read, "tcp", 6) is None  # nothing more from it
