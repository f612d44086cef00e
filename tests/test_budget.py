"""The four-tuple budget: real loopback connections closed client-first leave TIME_WAIT four-tuples."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from conntui.budget import (
    BudgetTracker,
    BudgetUnavailable,
    PortSpace,
    budget,
    parse_reserved_ports,
    read_port_space,
    read_tw_reuse,
    usage_level,
)
from conntui.model import Snapshot, Socket
from conntui.poller import Poller
from tests.conftest import Sockets, linux_only
from tests.test_cli import conntui

K = 20  # connections per scenario: bounded, well inside any ephemeral range
JSON_FIELDS = [
    "proto",
    "local_ip",
    "remote_ip",
    "remote_port",
    "established",
    "time_wait",
    "other",
    "ports_in_use",
    "port_range",
    "reserved",
    "usage",
    "new_per_s",
    "ceiling_per_s",
    "exhaustion_s",
]


def close_client_first(sockets: Sockets, listener: socket.socket, count: int) -> set[int]:
    """Open and close `count` connections, the client closing first (so its side stays in TIME_WAIT)."""
    ports = set()
    for _ in range(count):
        client, server = sockets.connection(listener)
        ports.add(client.getsockname()[1])
        client.close()
        server.settimeout(5)
        assert server.recv(1) == b""  # the client's FIN has arrived: now the server closes
        server.close()
    return ports


def destination_line(lines, port: int):
    [line] = [line for line in lines if (line.proto, line.remote_ip, line.remote_port) == ("tcp", "127.0.0.1", port)]
    return line


def test_reserved_ports_are_a_comma_list_of_ports_and_ranges() -> None:
    assert parse_reserved_ports("1024-1100,2000\n") == frozenset(range(1024, 1101)) | {2000}
    assert parse_reserved_ports("\n") == frozenset()
    with pytest.raises(BudgetUnavailable):
        parse_reserved_ports("1024-x")


def test_port_space_is_read_from_the_proc_files(tmp_path: Path) -> None:
    (tmp_path / "ip_local_port_range").write_text("1050\t1200\n")
    (tmp_path / "ip_local_reserved_ports").write_text("1024-1100,2000\n")
    (tmp_path / "tcp_tw_reuse").write_text("2\n")
    space = read_port_space(tmp_path)
    assert (space.low, space.high, space.reserved_in_range) == (1050, 1200, 51)  # 1050..1100 are in the range
    assert space.usable == 151 - 51
    assert not space.is_ephemeral(1060) and space.is_ephemeral(1101) and not space.is_ephemeral(2000)
    assert read_tw_reuse(tmp_path) == 2


def test_without_the_proc_files_the_budget_says_why(tmp_path: Path) -> None:
    with pytest.raises(BudgetUnavailable, match="cannot read the ephemeral port range"):
        read_port_space(tmp_path / "not-linux")
    (tmp_path / "ip_local_port_range").write_text("60999 32768\n")
    with pytest.raises(BudgetUnavailable, match="malformed"):
        read_port_space(tmp_path)
    assert read_tw_reuse(tmp_path) is None


@linux_only
def test_time_wait_connections_fill_their_destinations_budget(poller: Poller, sockets: Sockets) -> None:
    listener = sockets.listener()
    port = listener.getsockname()[1]
    ports = close_client_first(sockets, listener, K)
    space = read_port_space()
    snapshot, _ = poller.poll()
    line = destination_line(budget([snapshot], space), port)
    assert line.time_wait >= K and line.ports_in_use >= K
    assert line.established == 0  # the server sides (local port = the listener's) are not outgoing
    assert line.usage == line.ports_in_use / space.usable
    assert line.ceiling_per_s == (space.usable - line.ports_in_use) / 60
    assert line.new_per_s is None and line.exhaustion_s is None  # one snapshot: no rate
    in_budget = {sock.local_port for sock in snapshot.sockets if sock.remote_port == port and sock.state == "TIME_WAIT"}
    assert ports <= in_budget


@linux_only
def test_successive_snapshots_give_the_rate_and_the_time_to_exhaustion(poller: Poller, sockets: Sockets) -> None:
    listener = sockets.listener()
    port = listener.getsockname()[1]
    close_client_first(sockets, listener, K)
    before, _ = poller.poll()
    close_client_first(sockets, listener, K)
    after, _ = poller.poll()
    line = destination_line(budget([before, after], read_port_space()), port)

    def client_ports(snapshot: Snapshot) -> set[int]:
        return {sock.local_port for sock in snapshot.sockets if sock.remote_port == port and sock.local_port != port}

    elapsed = after.taken_at - before.taken_at
    new = client_ports(after) - client_ports(before)  # a port seen again is reused only after TIME_WAIT
    growth = len(client_ports(after)) - len(client_ports(before))
    assert new and line.new_per_s == pytest.approx(len(new) / elapsed)
    free = read_port_space().usable - line.ports_in_use
    assert line.exhaustion_s == (pytest.approx(free / (growth / elapsed)) if growth > 0 else None)


def test_a_full_range_is_usage_one_and_no_ceiling() -> None:
    sockets = tuple(
        Socket(("tw", port), "tcp", 4, "127.0.0.1", port, "127.0.0.2", 80, "TIME_WAIT") for port in range(40000, 40010)
    )
    [line] = budget([Snapshot(sockets)], PortSpace(40000, 40010, frozenset({40010})))
    assert (line.time_wait, line.ports_in_use) == (10, 10)
    assert line.usage == 1.0 and line.ceiling_per_s == 0.0  # every usable port (40010 is reserved) is taken


@linux_only
def test_list_budget_json_shows_the_destinations_time_wait(sockets: Sockets) -> None:
    listener = sockets.listener()
    port = listener.getsockname()[1]
    close_client_first(sockets, listener, K)
    result = conntui("list", "--budget", "--json", "--port", str(port))
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert all(list(row) == JSON_FIELDS for row in rows)
    assert [row["usage"] for row in rows] == sorted((row["usage"] for row in rows), reverse=True)
    [row] = [row for row in rows if (row["proto"], row["remote_ip"], row["remote_port"]) == ("tcp", "127.0.0.1", port)]
    assert row["time_wait"] >= K and row["ports_in_use"] >= K
    space = read_port_space()
    assert row["port_range"] == [space.low, space.high] and row["reserved"] == space.reserved_in_range
    assert row["new_per_s"] is None and row["exhaustion_s"] is None


@linux_only
def test_list_budget_table_explains_the_ceiling_and_filters_select(sockets: Sockets) -> None:
    listener = sockets.listener()
    port = listener.getsockname()[1]
    close_client_first(sockets, listener, K)
    result = conntui("list", "--budget", "--port", str(port))
    assert result.returncode == 0, result.stderr
    header, reuse, titles, *rows = result.stdout.splitlines()
    assert "free ports / 60 s" in header and reuse.startswith("# tcp_tw_reuse=")
    assert titles.split()[:3] == ["PROTO", "LOCAL", "IP"]
    assert any(f"127.0.0.1:{port}" in row for row in rows)
    established_only = conntui("list", "--budget", "--json", "--port", str(port), "--filter", "state:established")
    assert established_only.returncode == 0, established_only.stderr
    assert json.loads(established_only.stdout) == []  # every connection is in TIME_WAIT


def test_list_budget_bad_arguments_exit_2() -> None:
    result = conntui("list", "--budget", "--csv")
    assert result.returncode == 2 and "--budget" in result.stderr
    assert conntui("list", "--budget", "--filter", "nosuch:1").returncode == 2


def tuples_toward(remote_port: int, local_ports, state: str = "TIME_WAIT") -> tuple[Socket, ...]:
    return tuple(
        Socket(("tw", port), "tcp", 4, "127.0.0.1", port, "127.0.0.2", remote_port, state) for port in local_ports
    )


def test_the_tracker_counts_new_ports_over_the_last_minute_without_keeping_snapshots() -> None:
    space = PortSpace(40000, 40099)
    tracker = BudgetTracker(space, tw_reuse=2)
    [first] = tracker.add(Snapshot(tuples_toward(80, range(40000, 40002)), taken_at=0.0)).lines
    assert first.new_per_s is None and first.ports_in_use == 2
    [line] = tracker.add(Snapshot(tuples_toward(80, range(40000, 40004)), taken_at=30.0)).lines
    assert line.new_per_s == 2 / 30 and line.exhaustion_s == (100 - 4) / (2 / 30)
    report = tracker.add(Snapshot(tuples_toward(80, range(40002, 40005)), taken_at=70.0))
    [line] = report.lines  # the poll at 0 s has left the minute: 40004 is new since 30 s, and fewer in use
    assert line.new_per_s == 1 / 40 and line.exhaustion_s is None and line.ports_in_use == 3
    unchanged = Snapshot(tuples_toward(80, range(40002, 40005)), taken_at=100.0, unchanged=True)
    [line] = tracker.add(unchanged).lines  # 30 s and its four new ports are gone from the minute
    assert line.new_per_s == 0.0 and line.ports_in_use == 3
    assert budget([Snapshot(tuples_toward(80, range(40000, 40002)), taken_at=0.0)] * 1, space)[0].new_per_s is None


def test_a_destination_that_comes_back_counts_its_ports_as_new() -> None:
    tracker = BudgetTracker(PortSpace(40000, 40099))
    tracker.add(Snapshot(tuples_toward(80, range(40000, 40003)), taken_at=0.0))
    assert tracker.add(Snapshot((), taken_at=10.0)).lines == ()
    [line] = tracker.add(Snapshot(tuples_toward(80, range(40000, 40003)), taken_at=20.0)).lines
    assert line.new_per_s == 3 / 20 and line.exhaustion_s is None  # as many in use as at 0 s: not growing


def test_the_report_gives_an_outgoing_sockets_line_in_words() -> None:
    listener = Socket("listen", "tcp", 4, "127.0.0.1", 40050, None, None, "LISTEN")
    accepted = Socket("accepted", "tcp", 4, "127.0.0.1", 40050, "127.0.0.2", 80, "ESTABLISHED")
    outgoing = tuples_toward(80, range(40000, 40003))
    report = BudgetTracker(PortSpace(40000, 40099), tw_reuse=0).add(Snapshot((listener, accepted, *outgoing)))
    [line] = report.lines
    assert report.line_for(outgoing[0]) is line and report.line_for(accepted) is None
    assert report.line_for(listener) is None
    assert line.sentence() == (
        "destination 127.0.0.2:80 from 127.0.0.1: 3 in use of 100 (3.0%), 3 in TIME_WAIT, ceiling 2/s"
    )


def test_usage_levels_start_at_50_and_80_percent() -> None:
    assert [usage_level(usage) for usage in (0.0, 0.49, 0.5, 0.79, 0.8, 1.0)] == [
        "", "", "warning", "warning", "error", "error"
    ]  # fmt: skip
