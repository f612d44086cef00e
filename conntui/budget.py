"""The four-tuple budget: how many more connections a client can open toward one destination.

Toward one destination (remote IP, remote port) from one local IP, every connection needs its own
local port from the ephemeral range, and a connection closed by this side keeps its four-tuple in
TIME_WAIT for 60 s on Linux. So a client can open at most about (free ephemeral ports) / 60 new
connections per second toward it before `connect()` fails with EADDRNOTAVAIL.

Pure data: the port range and settings come from `/proc/sys/net/ipv4` (read by `read_port_space`
and `read_tw_reuse`, which say why when they cannot), the sockets from snapshots.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from conntui.model import Snapshot, Socket, format_endpoint

PROC_IPV4 = Path("/proc/sys/net/ipv4")
TIME_WAIT_S = 60.0  # Linux's TCP_TIMEWAIT_LEN: fixed, not a setting
RATE_WINDOW_S = 60.0  # new connections per second are counted over the last minute

TW_REUSE_MEANINGS = {
    0: "off: a four-tuple in TIME_WAIT is never reused, so the ceiling holds",
    1: "on: a new outgoing connection may reuse a TIME_WAIT four-tuple older than 1 s (needs TCP timestamps)",
    2: "loopback only (the default): TIME_WAIT four-tuples are reused for loopback traffic only",
}

DestinationKey = tuple[str, str, str, int]  # (proto, local IP, remote IP, remote port)


class BudgetUnavailable(Exception):
    """The ephemeral port range cannot be read (not Linux, no /proc, a malformed file)."""


@dataclass(frozen=True, slots=True)
class PortSpace:
    """The ephemeral port range and the reserved ports inside it."""

    low: int
    high: int
    reserved: frozenset[int] = frozenset()

    @property
    def reserved_in_range(self) -> int:
        return sum(1 for port in self.reserved if self.low <= port <= self.high)

    @property
    def usable(self) -> int:
        """Ports `connect()` may pick: the range minus the reserved ones."""
        return self.high - self.low + 1 - self.reserved_in_range

    def is_ephemeral(self, port: int) -> bool:
        return self.low <= port <= self.high and port not in self.reserved


def parse_port_range(text: str) -> tuple[int, int]:
    """`ip_local_port_range`: two numbers, low and high (`32768\t60999`)."""
    fields = text.split()
    if len(fields) != 2 or not all(field.isdigit() for field in fields):
        raise BudgetUnavailable(f"malformed port range {text.strip()!r}")
    low, high = int(fields[0]), int(fields[1])
    if not 0 < low <= high <= 65535:
        raise BudgetUnavailable(f"malformed port range {text.strip()!r}")
    return low, high


def parse_reserved_ports(text: str) -> frozenset[int]:
    """`ip_local_reserved_ports`: a comma list of ports and ranges (`1024-1100,2000`), or empty."""
    ports: set[int] = set()
    for item in text.strip().split(","):
        if not item:
            continue
        low, _, high = item.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise BudgetUnavailable(f"malformed reserved ports {text.strip()!r}")
        ports.update(range(int(low), int(high or low) + 1))
    return frozenset(ports)


def read_port_space(directory: Path = PROC_IPV4) -> PortSpace:
    """The machine's ephemeral port space; BudgetUnavailable says why it cannot be read."""
    try:
        low, high = parse_port_range((directory / "ip_local_port_range").read_text())
    except OSError as error:
        raise BudgetUnavailable(f"cannot read the ephemeral port range: {error.strerror or error}") from None
    try:
        reserved = parse_reserved_ports((directory / "ip_local_reserved_ports").read_text())
    except OSError:  # older kernels have no such file: nothing is reserved
        reserved = frozenset()
    return PortSpace(low, high, reserved)


def read_tw_reuse(directory: Path = PROC_IPV4) -> int | None:
    """`tcp_tw_reuse` (0, 1 or 2), None when it cannot be read."""
    try:
        return int((directory / "tcp_tw_reuse").read_text().strip())
    except (OSError, ValueError):
        return None


def tw_reuse_meaning(setting: int | None) -> str:
    if setting is None:
        return "unknown (cannot read /proc/sys/net/ipv4/tcp_tw_reuse)"
    return TW_REUSE_MEANINGS.get(setting, f"unknown value {setting}")


@dataclass(frozen=True, slots=True)
class BudgetLine:
    """One destination's budget: what its outgoing sockets use of the ephemeral ports."""

    proto: str
    local_ip: str
    remote_ip: str
    remote_port: int
    established: int
    time_wait: int
    other: int
    ports_in_use: int
    port_range: tuple[int, int]
    reserved: int
    usage: float  # ports_in_use / usable ports, 0..1
    new_per_s: float | None  # None without an earlier snapshot to compare with
    ceiling_per_s: float  # free ports / 60 s
    exhaustion_s: float | None  # None when the ports in use are not growing

    def to_json(self) -> dict[str, object]:
        return {
            "proto": self.proto,
            "local_ip": self.local_ip,
            "remote_ip": self.remote_ip,
            "remote_port": self.remote_port,
            "established": self.established,
            "time_wait": self.time_wait,
            "other": self.other,
            "ports_in_use": self.ports_in_use,
            "port_range": list(self.port_range),
            "reserved": self.reserved,
            "usage": self.usage,
            "new_per_s": self.new_per_s,
            "ceiling_per_s": self.ceiling_per_s,
            "exhaustion_s": self.exhaustion_s,
        }


def outgoing_by_destination(
    snapshot: Snapshot, space: PortSpace, keep: Callable[[Socket], bool] = lambda sock: True
) -> dict[DestinationKey, list[Socket]]:
    """The kept outgoing sockets (ephemeral local port, not a listener's, connected) per destination."""
    listener_ports = {(sock.proto, sock.local_port) for sock in snapshot.sockets if sock.state == "LISTEN"}
    groups: dict[DestinationKey, list[Socket]] = defaultdict(list)
    for sock in snapshot.sockets:
        if (
            sock.remote_ip is None
            or sock.remote_port is None
            or not space.is_ephemeral(sock.local_port)
            or (sock.proto, sock.local_port) in listener_ports
            or not keep(sock)
        ):
            continue
        groups[(sock.proto, sock.local_ip, sock.remote_ip, sock.remote_port)].append(sock)
    return groups


def _ports(sockets: Iterable[Socket]) -> set[int]:
    return {sock.local_port for sock in sockets}


def budget(
    snapshots: Sequence[Snapshot], space: PortSpace, keep: Callable[[Socket], bool] = lambda sock: True
) -> list[BudgetLine]:
    """The budget of every destination in the last snapshot, highest usage first.

    `snapshots` are oldest first; those within RATE_WINDOW_S of the last give the rates: a new
    connection is a local port toward the destination that the previous snapshot did not have (a
    closed connection's port stays taken in TIME_WAIT, unless tcp_tw_reuse lets a new one take it over).
    """
    if not snapshots:
        return []
    latest = snapshots[-1]
    window = [snap for snap in snapshots if latest.taken_at - snap.taken_at <= RATE_WINDOW_S]
    grouped = [outgoing_by_destination(snap, space, keep) for snap in window]
    elapsed = latest.taken_at - window[0].taken_at
    usable = max(space.usable, 1)
    lines = []
    for destination, sockets in grouped[-1].items():
        in_use = len(_ports(sockets))
        free = max(usable - in_use, 0)
        new_per_s = exhaustion_s = None
        if len(window) > 1 and elapsed > 0:
            port_sets = [_ports(groups.get(destination, ())) for groups in grouped]
            new = sum(len(now - before) for before, now in pairwise(port_sets))
            new_per_s = new / elapsed
            growth = (in_use - len(port_sets[0])) / elapsed
            exhaustion_s = free / growth if growth > 0 else None
        time_wait = sum(1 for sock in sockets if sock.state == "TIME_WAIT")
        established = sum(1 for sock in sockets if sock.state == "ESTABLISHED")
        proto, local_ip, remote_ip, remote_port = destination
        lines.append(
            BudgetLine(
                proto=proto,
                local_ip=local_ip,
                remote_ip=remote_ip,
                remote_port=remote_port,
                established=established,
                time_wait=time_wait,
                other=len(sockets) - established - time_wait,
                ports_in_use=in_use,
                port_range=(space.low, space.high),
                reserved=space.reserved_in_range,
                usage=min(in_use / usable, 1.0),
                new_per_s=new_per_s,
                ceiling_per_s=free / TIME_WAIT_S,
                exhaustion_s=exhaustion_s,
            )
        )
    lines.sort(key=lambda line: (-line.usage, line.proto, line.local_ip, line.remote_ip, line.remote_port))
    return lines


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.0f} s" if seconds < 3600 else f"{seconds / 3600:.1f} h"


def format_budget(lines: Sequence[BudgetLine], space: PortSpace, tw_reuse: int | None) -> str:
    """A readable aligned table under a header that explains the ceiling and tcp_tw_reuse."""
    header = [
        f"# ephemeral ports {space.low}-{space.high}: {space.usable} usable, {space.reserved_in_range} reserved;"
        f" a closed connection keeps its four-tuple in TIME_WAIT {TIME_WAIT_S:.0f} s,"
        f" so the ceiling toward one destination is free ports / {TIME_WAIT_S:.0f} s new connections per second",
        f"# tcp_tw_reuse={'?' if tw_reuse is None else tw_reuse}: {tw_reuse_meaning(tw_reuse)}",
    ]
    if not lines:
        return "\n".join([*header, "no outgoing connections"]) + "\n"
    titles = ("PROTO", "LOCAL IP", "DESTINATION", "ESTAB", "TIME_WAIT", "OTHER", "PORTS", "USAGE", "NEW/S", "CEILING/S")
    rows = [(*titles, "EXHAUSTION")]
    for line in lines:
        rows.append(
            (
                line.proto,
                line.local_ip,
                format_endpoint(line.remote_ip, line.remote_port),
                str(line.established),
                str(line.time_wait),
                str(line.other),
                str(line.ports_in_use),
                f"{line.usage:.1%}",
                _rate(line.new_per_s),
                _rate(line.ceiling_per_s),
                _duration(line.exhaustion_s),
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(titles) + 1)]
    left_aligned = 3  # protocol and addresses read left to right, counts right-aligned
    table = [
        "  ".join(
            cell.ljust(width) if column < left_aligned else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
    return "\n".join([*header, *table]) + "\n"
