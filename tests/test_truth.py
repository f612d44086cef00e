"""One scenario of every kind of socket loopback can make; the three backends and `ss` must agree.

v4, v6, v4-mapped v6, wildcard listeners of both families (the dual-stack pair sshd and nginx
open), connected and unconnected UDP, and the TCP states loopback can hold still: LISTEN,
SYN_SENT, SYN_RECV, ESTABLISHED, FIN_WAIT1, FIN_WAIT2 (owned and orphaned), CLOSE_WAIT and
TIME_WAIT. (LAST_ACK and CLOSING last microseconds on loopback.)
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from conntui.filters import parse_filter
from conntui.model import Snapshot
from conntui.poller import Poller
from conntui.sources import open_source
from tests.conftest import BACKENDS, HAS_IPV6, Sockets, linux_only

pytestmark = [linux_only, pytest.mark.skipif(not HAS_IPV6, reason="the scenario needs IPv6 loopback")]

FIELDS = ("proto", "family", "local_ip", "local_port", "remote_ip", "remote_port", "state", "pids", "user")


class Scenario:
    """The sockets, and the ports that are ours (so rows of other processes are left out)."""

    def __init__(self, sockets: Sockets) -> None:
        self.sockets = sockets
        self.ports: set[int] = set()
        # (local port, remote port, or None for any) of the sockets no process holds
        self.kernel_held: set[tuple[int, int | None]] = set()

    def keep(self, sock: socket.socket) -> socket.socket:
        self.sockets.keep(sock)
        self.ports.add(sock.getsockname()[1])
        return sock

    def listener(self, host: str, port: int = 0, *, v6only: bool | None = None, backlog: int = 16, opts=None):
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        if v6only is not None:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
        for (level, name), value in (opts or {}).items():
            sock.setsockopt(level, name, value)
        sock.bind((host, port))
        sock.listen(backlog)
        return self.keep(sock)

    def connect(self, address: tuple, opts=None) -> socket.socket:
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        for (level, name), value in (opts or {}).items():
            sock.setsockopt(level, name, value)
        sock.settimeout(5)
        sock.connect(address)
        return self.keep(sock)

    def accept(self, listener: socket.socket) -> socket.socket:
        server, _ = listener.accept()
        return self.keep(server)

    def udp(self, host: str, connect_to: tuple | None = None) -> socket.socket:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        if ":" in host:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, 0))
        if connect_to:
            sock.connect(connect_to)
        return self.keep(sock)


def build(sockets: Sockets) -> Scenario:
    s = Scenario(sockets)
    # The dual-stack pair: 0.0.0.0:P and [::]:P with IPV6_V6ONLY.
    wildcard4 = s.listener("0.0.0.0")
    s.listener("::", wildcard4.getsockname()[1], v6only=True)
    # Bound, neither listening nor connected: no backend lists it, as `ss -a` does not (Linux 6.5+
    # can dump such sockets as TCP_BOUND_INACTIVE; netlink leaves them out of its dumps).
    for host in ("127.0.0.1", "::1"):
        bound = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        bound.bind((host, 0))
        s.keep(bound)
    # A dual-stack [::] listener reached over IPv4: its accepted side is v4-mapped v6.
    mapped = s.listener("::", v6only=False)
    s.connect(("127.0.0.1", mapped.getsockname()[1]))
    s.accept(mapped)
    # Plain v4 and v6 connections, and one closed into TIME_WAIT on the client side.
    for host in ("127.0.0.1", "::1"):
        listener = s.listener(host)
        s.connect(listener.getsockname()[:2])
        s.accept(listener)
        closer = s.connect(listener.getsockname()[:2])
        server = s.accept(listener)
        s.kernel_held.add((closer.getsockname()[1], listener.getsockname()[1]))  # TIME_WAIT, after:
        closer.close()
        time.sleep(0.02)
        server.close()
    # SYN_SENT: the listener's accept queue (backlog 0) is full, so the SYN is dropped and retried.
    full = s.listener("127.0.0.1", backlog=0)
    s.connect(full.getsockname())  # completes and fills the queue; never accepted: no process holds it
    s.kernel_held.add((full.getsockname()[1], None))
    waiting = s.keep(socket.socket())
    waiting.setblocking(False)
    waiting.connect_ex(full.getsockname())
    s.ports.add(waiting.getsockname()[1])
    # SYN_RECV: TCP_DEFER_ACCEPT keeps a request socket until data arrives.
    deferred = s.listener("127.0.0.1", opts={(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT): 30})
    s.connect(deferred.getsockname())
    s.kernel_held.add((deferred.getsockname()[1], None))
    # FIN_WAIT1: the peer's receive window is full, so our FIN waits behind the data.
    small = s.listener("127.0.0.1", opts={(socket.SOL_SOCKET, socket.SO_RCVBUF): 4096})
    stuffed = s.connect(small.getsockname(), opts={(socket.SOL_SOCKET, socket.SO_SNDBUF): 4096})
    s.accept(small)
    stuffed.setblocking(False)
    try:
        for _ in range(1000):  # bounded: the buffers hold a few hundred KiB at most
            stuffed.send(b"x" * 65536)
    except BlockingIOError:
        pass
    stuffed.shutdown(socket.SHUT_WR)
    # FIN_WAIT2 owned (half-closed) with its CLOSE_WAIT peer, and FIN_WAIT2 orphaned (closed).
    halves = s.listener("127.0.0.1")
    s.connect(halves.getsockname()).shutdown(socket.SHUT_WR)
    s.accept(halves)
    orphan = s.connect(halves.getsockname())
    s.accept(halves)
    s.kernel_held.add((orphan.getsockname()[1], halves.getsockname()[1]))
    orphan.close()
    # UDP: unconnected (v4, v6, both wildcards) and connected.
    target = s.udp("127.0.0.1")
    s.udp("::1")
    s.udp("0.0.0.0")
    s.udp("::")
    s.udp("127.0.0.1", connect_to=target.getsockname())
    s.udp("::1", connect_to=s.udp("::1").getsockname()[:2])
    time.sleep(0.1)  # let the closes and the SYN settle
    return s


@pytest.fixture
def scenario() -> Iterator[Scenario]:
    opened = Sockets()
    try:
        yield build(opened)
    finally:
        opened.close_all()


def ours(scenario: Scenario, rows) -> set[tuple]:
    """Our rows, as tuples of FIELDS: both ports ours (or no remote)."""
    return {
        tuple(getattr(row, name) for name in FIELDS)
        for row in rows
        if row.local_port in scenario.ports and (row.remote_port is None or row.remote_port in scenario.ports)
    }


def netlink_snapshot() -> Snapshot:
    poller = Poller(open_source("netlink"))
    try:
        return poller.poll()[0]
    finally:
        poller.close()


def poll_all(scenario: Scenario) -> dict[str, set[tuple]]:
    seen = {}
    for name in BACKENDS:
        poller = Poller(open_source(name))
        try:
            seen[name] = ours(scenario, poller.poll()[0].sockets)
        finally:
            poller.close()
    return seen


def test_the_backends_agree_field_by_field(scenario: Scenario) -> None:
    seen = poll_all(scenario)
    reference = seen["netlink"]
    states = {row[FIELDS.index("state")] for row in reference}
    assert {"LISTEN", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT1", "FIN_WAIT2", "CLOSE_WAIT"} <= states
    assert {"TIME_WAIT", "NONE"} <= states
    for name, rows in seen.items():
        assert rows == reference, f"{name} differs from netlink: {rows ^ reference}"


def test_the_dual_stack_pair_is_two_distinct_rows(scenario: Scenario) -> None:
    snapshot = netlink_snapshot()
    listeners = [row for row in snapshot.sockets if row.state == "LISTEN" and row.local_port in scenario.ports]
    wildcards = {(row.family, row.local_ip) for row in listeners if row.local_ip in ("0.0.0.0", "::")}
    assert {(4, "0.0.0.0"), (6, "::")} <= wildcards
    counts = snapshot.tuple_counts()
    assert all(counts[row.four_tuple] == 1 for row in listeners)  # no false ×2
    v6 = parse_filter("ip:::/0")
    assert {row.family for row in listeners if v6.matches(row)} == {6}
    mapped = [
        row for row in snapshot.sockets if row.local_ip == "::ffff:127.0.0.1" and row.local_port in scenario.ports
    ]
    assert mapped and all(row.family == 6 for row in mapped)


def test_sockets_no_process_holds_have_no_owner_and_no_user(scenario: Scenario) -> None:
    port, remote, state, pids, user = (
        FIELDS.index(name) for name in ("local_port", "remote_port", "state", "pids", "user")
    )
    for name, rows in poll_all(scenario).items():
        held = [
            row
            for row in rows
            if row[remote] is not None
            and ((row[port], row[remote]) in scenario.kernel_held or (row[port], None) in scenario.kernel_held)
        ]
        # The TIME_WAITs, the request socket, the orphan and the connection nobody accepted yet.
        assert {"TIME_WAIT", "SYN_RECV", "FIN_WAIT2", "ESTABLISHED"} <= {row[state] for row in held}, name
        for row in held:
            assert row[pids] == () and row[user] is None, (name, row)


SS_STATES = {"ESTAB": "ESTABLISHED", "UNCONN": "NONE"}
SS_ROW = re.compile(r"^(\S+)\s+(\S+)\s+\d+\s+\d+\s+(\S+)\s+(\S+)\s*(.*)$")


def parse_ss(family: int, output: str) -> list[tuple]:
    rows = []
    for line in output.splitlines():
        match = SS_ROW.match(line)
        assert match, line
        proto, state, local, remote, users = match.groups()
        local_ip, local_port = split_endpoint(local, family)
        remote_ip, remote_port = split_endpoint(remote, family)
        state = "NONE" if proto == "udp" else SS_STATES.get(state, state.replace("-", "_"))
        state = {"FIN_WAIT_1": "FIN_WAIT1", "FIN_WAIT_2": "FIN_WAIT2"}.get(state, state)
        pids = tuple(sorted({int(pid) for pid in re.findall(r"pid=(\d+)", users)}))
        rows.append((proto, family, local_ip, local_port, remote_ip, remote_port, state, pids))
    return rows


def split_endpoint(text: str, family: int) -> tuple[str | None, int | None]:
    host, _, port = text.rpartition(":")
    host = host.strip("[]").split("%")[0]
    if host == "*":
        host = "::" if family == 6 else "0.0.0.0"
    if port == "*":
        return None, None
    return host, int(port)


@pytest.mark.skipif(shutil.which("ss") is None, reason="ss (iproute2) is not installed")
def test_netlink_agrees_with_ss(scenario: Scenario) -> None:
    ss_rows = []
    for family in (4, 6):
        result = subprocess.run(  # a process name may be any bytes: ss prints them as they are
            ["ss", "-tuanpH", f"-{family}"], capture_output=True, text=True, errors="replace", timeout=30
        )
        ss_rows += parse_ss(family, result.stdout)
    ss_ours = {
        row for row in ss_rows if row[3] in scenario.ports and (row[5] is None or row[5] in scenario.ports)
    }  # fmt: skip
    netlink = {(*row[:7], tuple(sorted(row[7]))) for row in poll_all(scenario)["netlink"]}
    assert netlink == ss_ours, netlink ^ ss_ours


def test_a_connection_not_yet_answered_has_no_rtt(scenario: Scenario) -> None:
    snapshot = netlink_snapshot()
    (waiting,) = [row for row in snapshot.sockets if row.state == "SYN_SENT" and row.local_port in scenario.ports]
    assert waiting.rtt_ms is None and waiting.rttvar_ms is None  # no sample: unknown, not 0.0
