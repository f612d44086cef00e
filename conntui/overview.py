"""The overview strip's figures, at a glance: sockets per state, sockets opened and closed per
second over the last two minutes, the host's receive and transmit rates, the top processes (by
connections and by bytes per second) and the top remote endpoints.

`OverviewTracker` lives on the engine thread: it is told each published poll's changes (and,
while the strip is shown, reads the host's byte counters: `conntui.sources.netdev`), and builds a
frozen `Overview` from the rows the table shows. Knows nothing of Textual.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING

from conntui.model import format_endpoint
from conntui.sources.netdev import read_host_bytes

if TYPE_CHECKING:
    from conntui.view import Row

BUCKET_SECONDS = 6.0  # opened and closed sockets are counted in buckets this long
BUCKETS = 20  # two minutes of them
HOST_SAMPLES = 20  # host rates kept: one per published poll while the strip is shown
TOP = 3  # processes and endpoints named in each top list


@dataclass(frozen=True, slots=True)
class Overview:
    states: tuple[tuple[str, int], ...]  # (state, sockets), the most common first
    opened_per_second: tuple[float, ...]  # per bucket, the oldest first
    closed_per_second: tuple[float, ...]
    host_rates: tuple[tuple[float, float], ...] | None  # (rx, tx) bytes/s between polls; None: unknown here
    top_by_connections: tuple[tuple[str, int], ...]  # (process, sockets)
    top_by_rate: tuple[tuple[str, float], ...]  # (process, bytes/s both ways), TCP only
    top_remotes: tuple[tuple[str, int], ...]  # (ip:port, sockets)


class OverviewTracker:
    def __init__(self, read_host: Callable[[], tuple[int, int] | None] = read_host_bytes) -> None:
        self.read_host = read_host
        self._changes: deque[tuple[float, int, int]] = deque()  # (time, opened, closed) of recent polls
        self._host: deque[tuple[float, int, int]] = deque(maxlen=HOST_SAMPLES + 1)  # (time, rx, tx)
        self._host_known = True
        self._latest = 0.0

    def record_changes(self, at: float, opened: int, closed: int) -> None:
        """A published poll (at `at`, in seconds) opened and closed this many sockets."""
        self._latest = max(self._latest, at)
        if opened or closed:
            self._changes.append((at, opened, closed))
        horizon = self._latest - BUCKETS * BUCKET_SECONDS
        while self._changes and self._changes[0][0] <= horizon:
            self._changes.popleft()

    def record_host(self, at: float) -> None:
        """Read the host's byte counters (once per poll time)."""
        if self._host and at <= self._host[-1][0]:
            return
        counters = self.read_host()
        self._host_known = counters is not None
        if counters is not None:
            self._host.append((at, *counters))

    def summary(self, rows: Iterable[Row]) -> Overview:
        states: Counter[str] = Counter()
        by_process: Counter[str] = Counter()
        rates: dict[str, float] = {}
        remotes: Counter[tuple[str, int | None]] = Counter()
        for row in rows:
            sock = row.sock
            states[sock.state] += 1
            if sock.process:
                by_process[sock.process] += 1
                if row.tx_rate or row.rx_rate:
                    rates[sock.process] = rates.get(sock.process, 0.0) + (row.tx_rate or 0) + (row.rx_rate or 0)
            if sock.remote_ip is not None:
                remotes[(sock.remote_ip, sock.remote_port)] += 1
        opened, closed = [0] * BUCKETS, [0] * BUCKETS
        for at, opened_count, closed_count in self._changes:
            bucket = BUCKETS - 1 - int((self._latest - at) // BUCKET_SECONDS)
            if 0 <= bucket < BUCKETS:
                opened[bucket] += opened_count
                closed[bucket] += closed_count
        return Overview(
            states=tuple(states.most_common()),
            opened_per_second=tuple(count / BUCKET_SECONDS for count in opened),
            closed_per_second=tuple(count / BUCKET_SECONDS for count in closed),
            host_rates=self._host_rates(),
            top_by_connections=tuple(by_process.most_common(TOP)),
            top_by_rate=tuple(sorted(rates.items(), key=lambda item: item[1], reverse=True)[:TOP]),
            top_remotes=tuple((format_endpoint(ip, port), count) for (ip, port), count in remotes.most_common(TOP)),
        )

    def _host_rates(self) -> tuple[tuple[float, float], ...] | None:
        if not self._host_known:
            return None
        return tuple(
            ((rx - rx0) / (at - at0), (tx - tx0) / (at - at0))
            for (at0, rx0, tx0), (at, rx, tx) in pairwise(self._host)
            if at > at0
        )
