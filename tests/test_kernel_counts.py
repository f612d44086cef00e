"""The kernel's counters from /proc/net/snmp: the real file, real connections, and bad files."""

from __future__ import annotations

import socket

import pytest

from conntui.sources.kernel_counts import read_kernel_counts
from tests.conftest import LINUX


@pytest.mark.skipif(not LINUX, reason="/proc/net/snmp is Linux's")
def test_the_counts_move_when_connections_are_made_and_datagrams_sent(sockets) -> None:
    before = read_kernel_counts()
    assert before is not None
    listener = sockets.listener()
    for _ in range(3):
        sockets.connection(listener)
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))  # bound, never listening: a connect to it is refused
    with socket.socket() as client, pytest.raises(ConnectionRefusedError):
        client.connect(refused.getsockname())
    refused.close()
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender,
    ):
        receiver.bind(("127.0.0.1", 0))
        sender.sendto(b"x", receiver.getsockname())
        receiver.recv(1)
    after = read_kernel_counts()
    assert after is not None
    moved = after.since(before)
    # Other processes may open connections meanwhile: at least ours.
    assert moved.active_opens >= 4 and moved.passive_opens >= 3 and moved.attempt_fails >= 1
    assert moved.opens == moved.active_opens + moved.passive_opens
    assert moved.udp_in >= 1 and moved.udp_out >= 1


@pytest.mark.parametrize(
    "content",
    [
        None,  # no file
        "",
        "Tcp: ActiveOpens PassiveOpens\nTcp: 1 2\n",  # lacks counters
        "Tcp: RtoAlgorithm ActiveOpens PassiveOpens AttemptFails EstabResets\nTcp: 1 x 2 3 4\n"
        "Udp: InDatagrams OutDatagrams\nUdp: 5 6\n",  # not a number
        "Tcp: ActiveOpens PassiveOpens AttemptFails EstabResets\nTcp: 1 2 3\n",  # a value short
        "\x00\xff garbage\n" * 3,
    ],
)
def test_a_missing_or_bad_file_gives_no_counts_not_an_error(tmp_path, content: str | None) -> None:
    path = tmp_path / "snmp"
    if content is not None:
        path.write_text(content, encoding="latin-1")
    assert read_kernel_counts(path, tmp_path / "no-snmp6") is None


def test_a_good_file_without_snmp6_counts_ipv4_udp(tmp_path) -> None:
    path = tmp_path / "snmp"
    path.write_text(
        "Ip: Forwarding\nIp: 2\n"
        "Tcp: RtoAlgorithm ActiveOpens PassiveOpens AttemptFails EstabResets\nTcp: 1 10 20 3 4\n"
        "Udp: InDatagrams NoPorts OutDatagrams\nUdp: 5 0 6\n"
    )
    snmp6 = tmp_path / "snmp6"
    snmp6.write_text("Udp6InDatagrams                 \t7\nUdp6OutDatagrams \t8\nbad line here\n")
    counts = read_kernel_counts(path, snmp6)
    assert counts is not None and (counts.opens, counts.attempt_fails, counts.estab_resets) == (30, 3, 4)
    assert (counts.udp_in, counts.udp_out) == (12, 14)
    assert read_kernel_counts(path, tmp_path / "none") == counts.__class__(10, 20, 3, 4, 5, 6)
