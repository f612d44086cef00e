"""The four-tuple budget: how many more connections a client can open toward one destination.

Toward one destination (remote IP, remote port) from one local IP, every connection needs its own
local port from the ephemeral range, and a connection closed by this side keeps its four-tuple in
TIME_WAIT for 60 s on Linux. So a client can open at most about (free ephemeral ports) / 60 new
connections per second toward it before `connect()` fails with EADDRNOTAVAIL.

Pure data: the port range and settings come from `/proc/sys/net/ipv4` (read by `read_port_space`
and `read_tw_reuse`, which say why when they cannot), the sockets from snapshots.
"""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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

# Short forms, where the full meaning does not fit (the dashboard at 80 columns).
TW_REUSE_SHORT = {0: "off: no reuse", 1: "on: reused after 1 s", 2: "loopback only"}
WARNING_USAGE = 0.5  # a destination using this share of the usable ports is shown as a warning
ERROR_USAGE = 0.8  # and from this share as an error

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


def tw_reuse_meaning(setting: int | None, short: bool = False) -> str:
    if setting is None:
        return "unknown" if short else "unknown (cannot read /proc/sys/net/ipv4/tcp_tw_reuse)"
    return (TW_REUSE_SHORT if short else TW_REUSE_MEANINGS).get(setting, f"unknown value {setting}")


def usage_level(usage: float) -> str:
    """ "error" from ERROR_USAGE, "warning" from WARNING_USAGE, else ""."""
    if usage >= ERROR_USAGE:
        return "error"
    return "warning" if usage >= WARNING_USAGE else ""


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

    @property
    def destination(self) -> DestinationKey:
        return (self.proto, self.local_ip, self.remote_ip, self.remote_port)

    @property
    def usable(self) -> int:
        return self.port_range[1] - self.port_range[0] + 1 - self.reserved

    def sentence(self) -> str:
        """The line in words: `destination 127.0.0.1:8080 from 127.0.0.1: 312 in use of 28,232 (1.1 %), …`."""
        words = [
            f"destination {format_endpoint(self.remote_ip, self.remote_port)} from {self.local_ip}:"
            f" {self.ports_in_use:,} in use of {self.usable:,} ({self.usage:.1%})",
            f"{self.time_wait:,} in TIME_WAIT",
        ]
        if self.new_per_s is not None:
            words.append(f"{self.new_per_s:.1f} new/s")
        words.append(f"ceiling {self.ceiling_per_s:,.0f}/s")
        if self.exhaustion_s is not None:
            words.append(f"ports exhausted in {format_duration(self.exhaustion_s)}")
        return ", ".join(words)

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


def listener_ports(snapshot: Snapshot) -> frozenset[tuple[str, int]]:
    """(proto, port) of every listener: a socket on such a port was accepted, it is not outgoing."""
    return frozenset((sock.proto, sock.local_port) for sock in snapshot.sockets if sock.state == "LISTEN")


def destination_of(sock: Socket) -> DestinationKey | None:
    """(proto, local IP, remote IP, remote port), None for a socket with no remote end."""
    if sock.remote_ip is None or sock.remote_port is None:
        return None
    return (sock.proto, sock.local_ip, sock.remote_ip, sock.remote_port)


def outgoing_by_destination(
    snapshot: Snapshot,
    space: PortSpace,
    keep: Callable[[Socket], bool] = lambda sock: True,
    listening: frozenset[tuple[str, int]] | None = None,
) -> dict[DestinationKey, list[Socket]]:
    """The kept outgoing sockets (ephemeral local port, not a listener's, connected) per destination."""
    if listening is None:
        listening = listener_ports(snapshot)
    groups: dict[DestinationKey, list[Socket]] = defaultdict(list)
    for sock in snapshot.sockets:
        if (
            sock.remote_ip is None
            or sock.remote_port is None
            or not space.is_ephemeral(sock.local_port)
            or (sock.proto, sock.local_port) in listening
            or not keep(sock)
        ):
            continue
        groups[(sock.proto, sock.local_ip, sock.remote_ip, sock.remote_port)].append(sock)
    return groups


@dataclass(frozen=True, slots=True)
class _Counts:
    """One destination's outgoing sockets in one poll."""

    established: int
    time_wait: int
    other: int
    ports: frozenset[int]


@dataclass(frozen=True, slots=True)
class _PollRecord:
    """What one poll changed, per destination (only those it changed): the rates need no more."""

    taken_at: float
    new: dict[DestinationKey, int]  # local ports the previous poll did not have
    growth: dict[DestinationKey, int]  # ports in use minus the previous poll's (negative: fewer)


@dataclass(frozen=True, slots=True)
class BudgetReport:
    """The budget after one poll, every destination; immutable, so it may cross threads."""

    lines: tuple[BudgetLine, ...]
    space: PortSpace
    tw_reuse: int | None
    listening: frozenset[tuple[str, int]]
    by_destination: dict[DestinationKey, BudgetLine]  # never changed once built

    def line_for(self, sock: Socket) -> BudgetLine | None:
        """The budget line of the socket's destination when the socket is an outgoing one."""
        destination = destination_of(sock)
        if (
            destination is None
            or not self.space.is_ephemeral(sock.local_port)
            or (sock.proto, sock.local_port) in self.listening
        ):
            return None
        return self.by_destination.get(destination)


class BudgetTracker:
    """The budget over successive polls, fed one snapshot at a time.

    Keeps only what the rates over the last RATE_WINDOW_S need: per poll, the destinations whose
    ports changed and by how much, and the last poll's ports per destination, never the snapshots
    (a minute of polls of 100,000 sockets would not fit). A snapshot the poller marked unchanged
    costs no pass over its sockets. Not thread-safe: one thread feeds it.
    """

    def __init__(
        self, space: PortSpace, tw_reuse: int | None = None, keep: Callable[[Socket], bool] = lambda sock: True
    ) -> None:
        self.space, self.tw_reuse, self.keep = space, tw_reuse, keep
        self._records: deque[_PollRecord] = deque()  # the window's polls, oldest first
        self._counts: dict[DestinationKey, _Counts] = {}  # the last poll's
        self._listening: frozenset[tuple[str, int]] = frozenset()
        # Sums over the window's polls but its first (a poll's figures are against the one before it).
        self._new_sum: Counter[DestinationKey] = Counter()
        self._growth_sum: Counter[DestinationKey] = Counter()

    def add(self, snapshot: Snapshot) -> BudgetReport:
        """Fold in the next poll (oldest first) and give every destination's line after it."""
        first = not self._records
        unchanged = snapshot.unchanged and not first  # nothing to count again: no new ports, no growth
        record = _PollRecord(snapshot.taken_at, {}, {}) if unchanged else self._changes(snapshot)
        if not first:
            self._new_sum.update(record.new)
            self._growth_sum.update(record.growth)
        self._records.append(record)
        while snapshot.taken_at - self._records[0].taken_at > RATE_WINDOW_S:
            self._records.popleft()
            start = self._records[0]  # now the window's first: its figures leave the sums
            _subtract(self._new_sum, start.new)
            _subtract(self._growth_sum, start.growth)
        return self._report(snapshot.taken_at)

    def _changes(self, snapshot: Snapshot) -> _PollRecord:
        self._listening = listener_ports(snapshot)
        groups = outgoing_by_destination(snapshot, self.space, self.keep, self._listening)
        counts = {destination: _count(sockets) for destination, sockets in groups.items()}
        new, growth = {}, {}
        for destination, now in counts.items():
            before = self._counts.get(destination)
            before_ports = before.ports if before is not None else frozenset()
            if added := len(now.ports - before_ports):
                new[destination] = added
            if grown := len(now.ports) - len(before_ports):
                growth[destination] = grown
        for destination, before in self._counts.items():
            if destination not in counts:
                growth[destination] = -len(before.ports)
        self._counts = counts
        return _PollRecord(snapshot.taken_at, new, growth)

    def _report(self, now: float) -> BudgetReport:
        elapsed = now - self._records[0].taken_at
        rated = len(self._records) > 1 and elapsed > 0
        usable = max(self.space.usable, 1)
        lines = []
        for destination, counts in self._counts.items():
            in_use = len(counts.ports)
            free = max(usable - in_use, 0)
            new_per_s = exhaustion_s = None
            if rated:
                new_per_s = self._new_sum[destination] / elapsed
                growth = self._growth_sum[destination] / elapsed
                exhaustion_s = free / growth if growth > 0 else None
            proto, local_ip, remote_ip, remote_port = destination
            lines.append(
                BudgetLine(
                    proto=proto,
                    local_ip=local_ip,
                    remote_ip=remote_ip,
                    remote_port=remote_port,
                    established=counts.established,
                    time_wait=counts.time_wait,
                    other=counts.other,
                    ports_in_use=in_use,
                    port_range=(self.space.low, self.space.high),
                    reserved=self.space.reserved_in_range,
                    usage=min(in_use / usable, 1.0),
                    new_per_s=new_per_s,
                    ceiling_per_s=free / TIME_WAIT_S,
                    exhaustion_s=exhaustion_s,
                )
            )
        lines.sort(key=lambda line: (-line.usage, line.proto, line.local_ip, line.remote_ip, line.remote_port))
        by_destination = {line.destination: line for line in lines}
        return BudgetReport(tuple(lines), self.space, self.tw_reuse, self._listening, by_destination)


def _count(sockets: list[Socket]) -> _Counts:
    established = sum(1 for sock in sockets if sock.state == "ESTABLISHED")
    time_wait = sum(1 for sock in sockets if sock.state == "TIME_WAIT")
    ports = frozenset(sock.local_port for sock in sockets)
    return _Counts(established, time_wait, len(sockets) - established - time_wait, ports)


def _subtract(sums: Counter[DestinationKey], figures: dict[DestinationKey, int]) -> None:
    for destination, figure in figures.items():
        left = sums[destination] - figure
        if left:
            sums[destination] = left
        else:
            del sums[destination]  # a quiet destination leaves no entry behind


def budget(
    snapshots: Sequence[Snapshot], space: PortSpace, keep: Callable[[Socket], bool] = lambda sock: True
) -> list[BudgetLine]:
    """The budget of every destination in the last snapshot, highest usage first.

    `snapshots` are oldest first; those within RATE_WINDOW_S of the last give the rates: a new
    connection is a local port toward the destination that the previous snapshot did not have (a
    closed connection's port stays taken in TIME_WAIT, unless tcp_tw_reuse lets a new one take it over).
    """
    tracker = BudgetTracker(space, keep=keep)
    report = None
    for snapshot in snapshots:
        report = tracker.add(snapshot)
    return list(report.lines) if report is not None else []


def format_rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def format_duration(seconds: float | None) -> str:
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
                format_rate(line.new_per_s),
                format_rate(line.ceiling_per_s),
                format_duration(line.exhaustion_s),
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
