"""The chapter's experiments: each a function that runs it against a URL (the built-in server's, or
any) and returns a pure record of what happened, for `conntui probe --compare`, the tests pane and
the lessons.

- `compare_modes`: the same N requests made four ways, one after another — `single` (N
  connections in turn), `parallel`, `keepalive`, `pipeline` — each with its total time,
  connections opened, handshakes paid (the sum of connect times), median time to first byte,
  bytes, and the TIME_WAIT sockets it left on this side (counted in the kernel's table).
- `compare_nagle`: N keep-alive requests each written in two small writes, with Nagle's algorithm
  on (TCP_NODELAY off) and then off: from the second request on, Nagle waits for the ACK of the
  first piece, which the receiver delays (~40 ms on Linux).

Several URLs of one origin are used in turn by the requests (see `conntui.http.client`).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from conntui.http.client import Probe, with_scheme
from conntui.http.records import COMPARE_CHOICES, EXPERIMENTS, ConnectionRecord, ProbeResult, Response, Step
from conntui.sources import SourceError, open_source

COMPARED_MODES = ("single", "parallel", "keepalive", "pipeline")
NAGLE_RUNS = (("nagle", False), ("nodelay", True))  # (label, TCP_NODELAY)
SETTLE_S = 2.0  # the longest wait for closed connections to reach TIME_WAIT before counting them
SETTLE_POLL_S = 0.01
CLOSING_STATES = frozenset({"FIN_WAIT1", "FIN_WAIT2", "CLOSING"})  # on their way to TIME_WAIT


@dataclass
class Run:
    """One way of making the requests: its probe's record and what was measured around it."""

    label: str  # the mode ("single" …) or, for Nagle, "nagle" / "nodelay"
    result: ProbeResult
    total_ms: float | None = None  # wall time of the whole run, once done
    time_wait_left: int | None = None  # its connections in TIME_WAIT on this side afterwards (None: not counted)

    @property
    def done(self) -> bool:
        return self.result.done and self.total_ms is not None

    @property
    def ok(self) -> bool:
        return self.done and self.result.ok and self._refused() is None

    def _refused(self) -> Response | None:
        """The first response the server refused (4xx, 5xx): an experiment measured on errors means nothing."""
        return next((response for response in self._responses() if (response.status or 0) >= 400), None)

    @property
    def connections(self) -> int:
        """Connections opened (a connect that failed opened none)."""
        return sum(1 for record in self.result.connections if record.local_port is not None)

    @property
    def connect_ms_sum(self) -> float:
        """The handshakes paid: every connection's connect time, added up."""
        return round(sum(step.duration_ms for step in _steps(self.result.connections, "connect")), 3)

    @property
    def ttfb_ms_median(self) -> float | None:
        ttfbs = [ttfb for ttfb in self.request_ttfbs if ttfb is not None]
        return round(statistics.median(ttfbs), 3) if ttfbs else None

    @property
    def request_ttfbs(self) -> list[float | None]:
        """Each request's time to first byte, in request order."""
        return [response.ttfb_ms for response in self._responses()]

    @property
    def request_ms(self) -> list[float | None]:
        """Each request's time from its send to the end of its response, in request order."""
        return [response.total_ms for response in self._responses()]

    @property
    def bytes(self) -> int:
        return sum(response.bytes for response in self._responses())

    @property
    def error(self) -> str | None:
        if not self.done:
            return None
        if not self.result.ok:
            return self.result.first_error or "not every request was answered"
        refused = self._refused()
        return None if refused is None else f"the server answered HTTP {refused.status}: not a response to compare"

    def _responses(self) -> list[Response]:
        # Connections are recorded in the order they were opened, each with its requests in order:
        # for one connection per request, connection k carries request k.
        ordered = sorted(self.result.connections, key=lambda record: record.index)
        return [response for record in ordered for response in record.responses]

    def to_json(self) -> dict:
        return {
            "mode": self.label,
            "ok": self.ok,
            "total_ms": self.total_ms,
            "connections": self.connections,
            "connect_ms_sum": self.connect_ms_sum,
            "ttfb_ms_median": self.ttfb_ms_median,
            "time_wait_left": self.time_wait_left,
            "error": self.error,
        }


@dataclass
class Comparison:
    """An experiment's record: its runs side by side (filled in as they go)."""

    experiment: str  # "modes" or "nagle"
    urls: tuple[str, ...]
    count: int
    runs: list[Run] = field(default_factory=list)
    done: bool = False
    error: str | None = None  # why it could not run at all (the runs say why they failed)

    @property
    def url(self) -> str:
        return self.urls[0]

    @property
    def mode(self) -> str:
        """As the test dialog names it: a key of COMPARE_CHOICES."""
        return next(choice for choice, experiment in COMPARE_CHOICES.items() if experiment == self.experiment)

    @property
    def expected_runs(self) -> int:
        return len(COMPARED_MODES) if self.experiment == "modes" else len(NAGLE_RUNS)

    @property
    def connections(self) -> list[ConnectionRecord]:
        """Every run's connections (the dashboard marks their sockets as mine)."""
        return [record for run in self.runs for record in run.result.connections]

    @property
    def ok(self) -> bool:
        complete = self.done and self.error is None and len(self.runs) == self.expected_runs
        return complete and all(run.ok for run in self.runs)

    @property
    def first_error(self) -> str | None:
        return self.error or next((f"{run.label}: {run.error}" for run in self.runs if run.error), None)

    @property
    def simulated_rtt_ms(self) -> int | None:
        return next((run.result.simulated_rtt_ms for run in self.runs if run.result.simulated_rtt_ms), None)

    def to_json(self) -> dict:
        if self.experiment == "modes":
            return {"url": self.url, "count": self.count, "modes": [run.to_json() for run in self.runs]}
        return {
            "url": self.url,
            "count": self.count,
            "split_writes": True,
            "runs": [
                {
                    "name": run.label,
                    "nodelay": run.label == "nodelay",
                    "ok": run.ok,
                    "total_ms": run.total_ms,
                    "request_ms": run.request_ms,
                    "error": run.error,
                }
                for run in self.runs
            ],
        }


Observer = Callable[[Comparison], None]
TestRecord = ProbeResult | Comparison  # what a test of the dashboard records


async def compare_modes(
    urls: str | Sequence[str],
    count: int,
    *,
    timeout: float = 5.0,
    insecure: bool = False,
    observer: Observer | None = None,
) -> Comparison:
    """The four modes, one after another, each then its TIME_WAIT sockets counted."""
    comparison = Comparison("modes", _urls(urls), count)
    for mode in COMPARED_MODES:
        probe = Probe(comparison.urls, mode, count, timeout=timeout, insecure=insecure)
        run = await _run(comparison, mode, probe, observer)
        run.time_wait_left = await count_time_wait(run.result.connections)
        _tell(observer, comparison)
    comparison.done = True
    _tell(observer, comparison)
    return comparison


async def compare_nagle(
    urls: str | Sequence[str],
    count: int,
    *,
    timeout: float = 5.0,
    insecure: bool = False,
    observer: Observer | None = None,
) -> Comparison:
    """Keep-alive with split writes, Nagle on (TCP_NODELAY off) then off."""
    comparison = Comparison("nagle", _urls(urls), count)
    for label, nodelay in NAGLE_RUNS:
        probe = Probe(
            comparison.urls, "keepalive", count, timeout=timeout, insecure=insecure, split_writes=True, nodelay=nodelay
        )
        await _run(comparison, label, probe, observer)
    comparison.done = True
    _tell(observer, comparison)
    return comparison


EXPERIMENT_RUNNERS = dict(zip(EXPERIMENTS, (compare_modes, compare_nagle), strict=True))


async def _run(comparison: Comparison, label: str, probe: Probe, observer: Observer | None = None) -> Run:
    """One run, the observer told as it starts and ends: not at each step, for an observer's work
    (the dashboard copies the whole record) would be measured as the run's own time."""
    run = Run(label, probe.result)
    comparison.runs.append(run)
    _tell(observer, comparison)
    started = time.perf_counter()
    await probe.run()
    run.total_ms = round((time.perf_counter() - started) * 1000, 3)
    _tell(observer, comparison)
    return run


async def count_time_wait(records: Iterable[ConnectionRecord]) -> int | None:
    """How many of these connections' client sockets are in TIME_WAIT, from the kernel's table, once
    those still closing (FIN_WAIT, CLOSING) have settled (bounded by SETTLE_S); None without a table."""
    wanted = {(r.local_ip, r.local_port, r.remote_ip, r.remote_port) for r in records if r.local_port is not None}
    if not wanted:
        return 0
    try:
        source = open_source()
    except (SourceError, OSError):
        return None
    try:
        deadline = time.monotonic() + SETTLE_S
        while True:
            states = [
                sock.state
                for sock in source.list_sockets([("tcp", 4), ("tcp", 6)])
                if (sock.local_ip, sock.local_port, sock.remote_ip, sock.remote_port) in wanted
            ]
            if not CLOSING_STATES.intersection(states) or time.monotonic() > deadline:
                return states.count("TIME_WAIT")
            await asyncio.sleep(SETTLE_POLL_S)
    except (SourceError, OSError):
        return None
    finally:
        source.close()


def _urls(urls: str | Sequence[str]) -> tuple[str, ...]:
    return tuple(with_scheme(url) for url in ([urls] if isinstance(urls, str) else urls))


def _steps(records: Iterable[ConnectionRecord], name: str) -> Iterator[Step]:
    return (step for record in records for step in record.steps if step.name == name)


def _tell(observer: Observer | None, comparison: Comparison) -> None:
    if observer is not None:
        observer(comparison)
