"""The chapter's lessons (HTTP: The Definitive Guide, chapter 4, connection management): each point
in a few sentences, the experiment that shows it on the built-in test server, and the measured
outcome in words, computed from the real records and the kernel's table. Pure: no Textual.

A `Lesson` names its tests (`ProbeRequest`s for the dashboard's runner) and a `measure` function.
The dashboard keeps a `LessonRun` while they run; once every test is done it takes a look after
each poll (`LessonRun.look`) until the lesson's measure has what it needs (the sockets settled in
the kernel's table, the budget counted), or LOOK_POLLS polls (or SETTLE_S after a first poll)
have passed, when it says what it sees. Only a poll taken after the tests ended is looked at.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from conntui.budget import BudgetReport
from conntui.http.experiments import Comparison, Run, TestRecord
from conntui.http.records import ProbeResult
from conntui.http.runner import ProbeRequest
from conntui.model import FourTuple, Snapshot, Socket, format_endpoint, peer_tuple

# A lesson waits for the kernel's table to show its outcome for LOOK_POLLS polls begun after its tests
# ended, or SETTLE_S seconds after them once one such poll is in, whichever comes first.
SETTLE_S = 5.0
LOOK_POLLS = 3
FOUR_VALUES = ("source IP", "source port", "destination IP", "destination port")
BUDGET_CONNECTIONS = 20
COMPARE_COUNT, COMPARE_RTT_MS = 10, 50
NAGLE_COUNT = 5
STALL_MS = 20.0  # half a delayed ACK of Linux's: a difference this large is not scheduling noise
SLOW_PATH, SLOW_MS, FAST_COUNT = "/delay?ms=300", 300, 4


@dataclass(frozen=True)
class Seen:
    """What the dashboard shows after a poll: the kernel's sockets, the four-tuple budget (None where
    there is none), and whether this is the last look (then say what is seen, settled or not)."""

    sockets: Sequence[Socket]
    budget: BudgetReport | None
    final: bool


@dataclass(frozen=True)
class Outcome:
    """The measured outcome in words, and the socket the dashboard selects for it (None: none)."""

    text: str
    select: FourTuple | None = None


Measure = Callable[[Sequence[TestRecord], Seen], "Outcome | None"]  # None: not yet, look again after the next poll


@dataclass(frozen=True)
class Lesson:
    key: str
    title: str
    text: str  # the point, in two or three sentences
    requests: tuple[ProbeRequest, ...]  # the tests that show it, launched in this order
    pane: str  # the dashboard's pane that shows the result: "detail", "tests" or "budget"
    measure: Measure

    @property
    def run_it(self) -> str:
        """What "run it" does, in a line."""
        return "; ".join(request_text(request) for request in self.requests)


@dataclass
class LessonRun:
    """A lesson's tests while they run, and its outcome once measured."""

    lesson: Lesson
    test_ids: tuple[int, ...]
    records: dict[int, TestRecord] = field(default_factory=dict)
    done_at: float | None = None  # when the last test ended (wall clock, as a snapshot's taken_at)
    fresh_polls: set[float] = field(default_factory=set)  # the taken_at of each poll begun after that
    outcome: Outcome | None = None

    def take(self, test_id: int, record: TestRecord, now: float) -> bool:
        """Keep a test's latest record; True when this one ended the lesson's tests."""
        if test_id not in self.test_ids or self.done_at is not None:
            return False
        self.records[test_id] = record
        if len(self.records) == len(self.test_ids) and all(one.done for one in self.records.values()):
            self.done_at = now
            return True
        return False

    def look(self, snapshot: Snapshot | None, budget: BudgetReport | None, now: float) -> Outcome | None:
        """Measure the outcome from the dashboard's latest poll, if it began after the tests ended
        (a poll of many sockets may be taken in before, but published after); None: not yet."""
        if self.done_at is None or self.outcome is not None or snapshot is None:
            return None
        if snapshot.taken_at - snapshot.duration_ms / 1000 >= self.done_at:
            self.fresh_polls.add(snapshot.taken_at)
        if not self.fresh_polls:
            return None
        final = len(self.fresh_polls) >= LOOK_POLLS or now - self.done_at >= SETTLE_S
        sockets = snapshot.sockets
        records = [self.records[test_id] for test_id in self.test_ids]
        failed = [record.first_error or "not every request was answered" for record in records if not record.ok]
        if failed:
            self.outcome = Outcome(f"The experiment did not run as planned: {failed[0]}.")
        else:
            self.outcome = self.lesson.measure(records, Seen(sockets, budget, final))
        return self.outcome


def request_text(request: ProbeRequest) -> str:
    """`compare ×10 GET / (server RTT 50 ms, simulated)`."""
    paths = " then ".join(dict.fromkeys(url or "/" for url in request.urls))
    distance = f" (server RTT {request.rtt_ms} ms, simulated)" if request.rtt_ms else ""
    return f"{request.mode} ×{request.count} GET {paths}{distance}"


# -- the outcomes, in words ------------------------------------------------------------------


def _tuples(record: TestRecord) -> list[FourTuple]:
    connections = sorted(record.connections, key=lambda connection: connection.index)
    return [connection.four_tuple for connection in connections if connection.four_tuple is not None]


def _arrow(four_tuple: FourTuple) -> str:
    _, local_ip, local_port, remote_ip, remote_port = four_tuple
    return f"{format_endpoint(local_ip, local_port)} → {format_endpoint(remote_ip or '', remote_port)}"


def differing_values(tuples: Sequence[FourTuple]) -> tuple[list[str], list[str]]:
    """(the names of the four values all the tuples share, the names of those that differ)."""
    same: list[str] = []
    differ: list[str] = []
    for position, name in enumerate(FOUR_VALUES, start=1):
        (same if len({four_tuple[position] for four_tuple in tuples}) == 1 else differ).append(name)
    return same, differ


def _names(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def four_values_outcome(records: Sequence[TestRecord], seen: Seen) -> Outcome:
    tuples = _tuples(records[0])
    same, differ = differing_values(tuples)
    listed = "; ".join(_arrow(four_tuple) for four_tuple in tuples)
    text = f"{len(tuples)} connections to one server: {listed}. "
    if same:
        text += f"They share the {_names(same)}; "
    if differ:
        values = ", ".join(str(four_tuple[FOUR_VALUES.index(differ[0]) + 1]) for four_tuple in tuples)
        text += f"only the {_names(differ)} {'differs' if len(differ) == 1 else 'differ'} ({values}): "
        text += "that is enough to make each connection unique."
    else:
        text += "all four values are the same, which only SO_REUSEPORT or separate namespaces allow."
    return Outcome(text, tuples[0] if tuples else None)


def seven_steps_outcome(records: Sequence[TestRecord], seen: Seen) -> Outcome:
    result = records[0]
    assert isinstance(result, ProbeResult)
    connection = result.connections[0]
    steps = [*result.steps, *connection.steps]
    named = ", ".join(
        f"{step.name} {step.duration_ms:.2f} ms" + (f" ({step.call})" if step.call else "") for step in steps
    )
    total = max((step.start_ms + step.duration_ms for step in steps), default=0.0)
    slowest = max(steps, key=lambda step: step.duration_ms)
    text = (
        f"One request to {_arrow(connection.four_tuple) if connection.four_tuple else result.url} took "
        f"{total:.2f} ms in all: {named}. The slowest step was {slowest.name} ({slowest.duration_ms:.2f} ms)."
    )
    return Outcome(text, connection.four_tuple)


def _state(sockets: Sequence[Socket], four_tuple: FourTuple) -> str | None:
    return next((sock.state for sock in sockets if sock.four_tuple == four_tuple), None)


def _side_text(state: str | None) -> str:
    return "is in TIME_WAIT" if state == "TIME_WAIT" else "is gone" if state is None else f"is in {state}"


def time_wait_side_outcome(records: Sequence[TestRecord], seen: Seen) -> Outcome | None:
    """Client-first (records[0]) and server-first (records[1]): which side's socket is in TIME_WAIT."""
    sentences, holders = [], []
    for record, how in zip(records, ("client first (GET /)", "server first (GET /close)"), strict=True):
        client = _tuples(record)[0]
        server = peer_tuple(client)
        client_state, server_state = _state(seen.sockets, client), _state(seen.sockets, server)
        settled = {client_state, server_state} <= {"TIME_WAIT", None} and "TIME_WAIT" in {client_state, server_state}
        if not settled and not seen.final:
            return None
        holder = "the client" if client_state == "TIME_WAIT" else "the server" if server_state == "TIME_WAIT" else None
        holders.append(holder)
        sentences.append(
            f"Closed {how}: the client's socket {_arrow(client)} {_side_text(client_state)}, "
            f"the server's {_side_text(server_state)}."
        )
    if holders == ["the client", "the server"]:
        sentences.append("The side that closed first keeps the TIME_WAIT; the other side's socket is gone at once.")
    return Outcome(" ".join(sentences), _tuples(records[0])[0])


def port_budget_outcome(records: Sequence[TestRecord], seen: Seen) -> Outcome | None:
    tuples = _tuples(records[0])
    in_time_wait = sum(1 for four_tuple in tuples if _state(seen.sockets, four_tuple) == "TIME_WAIT")
    proto, local_ip, _, remote_ip, remote_port = tuples[0]
    line = seen.budget.by_destination.get((proto, local_ip, remote_ip or "", remote_port or 0)) if seen.budget else None
    counted = line is not None and line.time_wait >= in_time_wait
    if (in_time_wait < len(tuples) or not counted) and not seen.final:
        return None
    destination = format_endpoint(remote_ip or "", remote_port)
    text = (
        f"{len(tuples)} connections, each closed by this side first, left {in_time_wait} sockets in TIME_WAIT "
        f"toward {destination}: each keeps its source port taken for 60 s."
    )
    if line is not None:
        text += (
            f" Toward that destination {line.ports_in_use:,} of {line.usable:,} ephemeral ports are in use "
            f"({line.usage:.1%}), {line.time_wait:,} of them in TIME_WAIT; the ceiling is "
            f"{line.ceiling_per_s:,.0f} new connections a second (free ports / 60 s)."
        )
    else:
        text += " The budget view has no line for it (no port range on this system, or not counted yet)."
    return Outcome(text, tuples[0])


def nagle_outcome(records: Sequence[TestRecord], seen: Seen) -> Outcome:
    comparison = records[0]
    assert isinstance(comparison, Comparison)
    runs = {run.label: run for run in comparison.runs}
    nagle, nodelay = later_requests_median(runs["nagle"]), later_requests_median(runs["nodelay"])
    count = comparison.count
    text = (
        f"With Nagle's algorithm on, requests 2–{count} took a median of {nagle:.1f} ms each; "
        f"with TCP_NODELAY, {nodelay:.1f} ms. "
    )
    if nagle_stalled(nagle, nodelay):
        text += "Each request's second write waited for the ACK of its first, which the receiver delayed."
    else:
        text += "No delayed-ACK stall was seen on this machine."
    return Outcome(text, _tuples(runs["nagle"].result)[0] if comparison.connections else None)


def nagle_stalled(nagle_ms: float, nodelay_ms: float) -> bool:
    """Whether Nagle's requests stalled: slower by most of a delayed ACK (40 ms on Linux), beyond noise."""
    return nagle_ms - nodelay_ms >= STALL_MS


def later_requests_median(run: Run) -> float:
    """The median time of the requests after the first (the first has nothing unacknowledged before it)."""
    later = [ms for ms in run.request_ms[1:] if ms is not None]
    return statistics.median(later) if later else 0.0


MODE_NAMES = {"single": "serial", "parallel": "parallel", "keepalive": "keep-alive", "pipeline": "pipeline"}


def _handshakes(count: int) -> str:
    return f"{count} handshake{'s' if count != 1 else ''}"


def modes_outcome(records: Sequence[TestRecord], seen: Seen) -> Outcome:
    comparison = records[0]
    assert isinstance(comparison, Comparison)
    runs = {run.label: run for run in comparison.runs}
    keepalive, single = runs["keepalive"], runs["single"]
    text = (
        f"keep-alive opened {keepalive.connections} connection{'s' if keepalive.connections != 1 else ''} "
        f"and paid {_handshakes(keepalive.connections)}; serial opened {single.connections} "
        f"and paid {single.connections}. "
    )
    distance = f"at a simulated RTT of {comparison.simulated_rtt_ms} ms" if comparison.simulated_rtt_ms else "here"
    totals = ", ".join(f"{MODE_NAMES[run.label]} {run.total_ms or 0:,.0f} ms" for run in comparison.runs)
    text += f"The {comparison.count} requests took, {distance}: {totals}."
    fastest = min(comparison.runs, key=lambda run: run.total_ms or 0)
    text += f" Fastest: {MODE_NAMES[fastest.label]}."
    return Outcome(text, _tuples(keepalive.result)[0] if keepalive.connections else None)


def head_of_line_outcome(records: Sequence[TestRecord], seen: Seen) -> Outcome:
    """records: the pipeline, then parallel; each request 0 slow, the rest fast."""
    pipeline, parallel = (Run(record.mode, record) for record in records if isinstance(record, ProbeResult))
    fast_pipeline, fast_parallel = _fast_median(pipeline), _fast_median(parallel)
    text = (
        f"The first request waited {SLOW_MS} ms on the server ({SLOW_PATH}); the {FAST_COUNT} after it were fast. "
        f"Pipelined on one connection, those {FAST_COUNT} came back after it: their median time to first byte "
        f"was {fast_pipeline:.1f} ms, as HTTP/1.1 answers in order. On parallel connections they did not wait: "
        f"{fast_parallel:.1f} ms."
    )
    return Outcome(text, _tuples(pipeline.result)[0])


def _fast_median(run: Run) -> float:
    fast = [ttfb for ttfb in run.request_ttfbs[1:] if ttfb is not None]
    return statistics.median(fast) if fast else 0.0


# -- the chapter ----------------------------------------------------------------------------

LESSONS: tuple[Lesson, ...] = (
    Lesson(
        "four-values",
        "Four values make a connection unique",
        "A TCP connection is named by four values: source IP, source port, destination IP and destination "
        "port. Connections may share some of them (every tab of a browser talks to the same server port) "
        "but never all four. Run it to open three connections to one server and see which values differ.",
        (ProbeRequest("/", "parallel", 3, 0.0),),
        "detail",
        four_values_outcome,
    ),
    Lesson(
        "seven-steps",
        "One request, seven steps",
        "To fetch http://host:port/page a client (1) takes the host from the URL, (2) looks up its IP "
        "address, (3) takes the port, (4) opens a TCP connection, (5) sends the request, (6) reads the "
        "response and (7) closes the connection. Each step is a socket API call (getaddrinfo, socket + "
        "connect, send, recv, close), and each takes time: run it to time them on one request.",
        (ProbeRequest("/", "single", 1, 0.0),),
        "tests",
        seven_steps_outcome,
    ),
    Lesson(
        "time-wait",
        "The side that closes first keeps TIME_WAIT",
        "Whichever end closes a connection first keeps its four-tuple in TIME_WAIT (60 s on Linux), so that "
        "a late packet of the old connection is not taken for one of a new connection with the same four "
        "values; the other end's socket goes at once. Run it to close one connection from the client first "
        "and one from the server first (/close), and see in the kernel's table which side holds it.",
        (ProbeRequest("/", "single", 1, 0.0), ProbeRequest("/close", "single", 1, 0.0)),
        "detail",
        time_wait_side_outcome,
    ),
    Lesson(
        "port-budget",
        "TIME_WAIT and the port budget",
        "Toward one destination every connection needs its own source port, and a port whose connection this "
        "side closed stays taken in TIME_WAIT for 60 s. So a client can open at most about (free ephemeral "
        "ports) / 60 new connections a second to one server; past that, connect() fails. Run it to make "
        f"{BUDGET_CONNECTIONS} short connections and see what they take of the budget.",
        (ProbeRequest("/", "single", BUDGET_CONNECTIONS, 0.0),),
        "budget",
        port_budget_outcome,
    ),
    Lesson(
        "nagle",
        "Nagle's algorithm and delayed ACKs",
        "Nagle's algorithm holds back a small segment while an earlier one is unacknowledged, and the "
        "receiver delays its ACK (~40 ms on Linux) in the hope of sending it with a reply. Together they "
        "stall a request written in two small writes. Run it to make keep-alive requests that way, with "
        "Nagle on and then with TCP_NODELAY.",
        (ProbeRequest("/", "compare nagle", NAGLE_COUNT, 0.0),),
        "tests",
        nagle_outcome,
    ),
    Lesson(
        "modes",
        "Serial, parallel, keep-alive, pipeline",
        "Every new connection pays a handshake, a round trip before its first request. Parallel connections "
        "pay theirs at once, keep-alive reuses one connection, and a pipeline sends every request before the "
        f"first answer. Run it to make {COMPARE_COUNT} requests all four ways against a server "
        f"{COMPARE_RTT_MS} ms away (simulated).",
        (ProbeRequest("/", "compare", COMPARE_COUNT, 0.0, rtt_ms=COMPARE_RTT_MS),),
        "tests",
        modes_outcome,
    ),
    Lesson(
        "head-of-line",
        "Head-of-line blocking",
        "HTTP/1.1 answers pipelined requests in the order they came, so one slow response holds back every "
        "response behind it on its connection; separate connections do not wait for each other. Run it to "
        f"send a slow request ({SLOW_PATH}) then {FAST_COUNT} fast ones, pipelined and in parallel.",
        tuple(
            ProbeRequest(SLOW_PATH, mode, FAST_COUNT + 1, 0.0, more_urls=("/",) * FAST_COUNT)
            for mode in ("pipeline", "parallel")
        ),
        "tests",
        head_of_line_outcome,
    ),
)
LESSONS_BY_KEY = {lesson.key: lesson for lesson in LESSONS}
