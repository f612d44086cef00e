"""What a probe records: its steps, responses, connections and result; the modes and limits.

Plain dataclasses shared by the client that fills them, the timeline that draws them, the
dashboard that shows them live and the test server (which reads `CLIENT_CLOSES_HEADER`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from conntui.sources.tcp_info import TcpInfo

# Test connections (`conntui probe`, the dashboard's `t`): how they use connections, how many.
PROBE_MODES = ("single", "keepalive", "parallel", "pipeline")
# The experiments (`conntui probe --compare`, see conntui.http.experiments), and the choices the
# dashboard's test dialog offers for them beside the modes.
EXPERIMENTS = ("modes", "nagle")
COMPARE_CHOICES = {"compare": "modes", "compare nagle": "nagle"}
MAX_PROBE_COUNT = 100
# The phases of a connection's first request, as `--json` names them.
PHASES = ("dns", "connect", "tls", "send", "ttfb", "transfer", "close")
# Sent by conntui's client with `Connection: close`: the test server then lets the client close
# first, so the client side keeps the TIME_WAIT (see conntui.http.server).
CLIENT_CLOSES_HEADER = "Conntui-Client-Closes"
# The built-in server's word that it closes this connection itself, whatever the client asked
# (`/close`): the client then waits for that close, so that the server really closes first.
SERVER_CLOSES_HEADER = "Conntui-Server-Closes"
# The test server's simulated distance (`conntui serve --rtt MS`): its bound, and the header on
# each of its responses that says so, for the client to label its times "simulated".
MAX_RTT_MS = 10_000
SIMULATED_RTT_HEADER = "Conntui-Simulated-Rtt"
# The socket API call each step makes, as the socket-API notes name them.
SOCKET_CALLS = {
    "dns": "getaddrinfo",
    "connect": "socket + connect",
    "tls": "SSL handshake",
    "send": "send",
    "ttfb": "recv",
    "transfer": "recv",
    "close": "close",
}


@dataclass
class Step:
    name: str  # parse, dns, connect, tls, send, ttfb, transfer, hold, close
    start_ms: float  # since the probe started
    duration_ms: float
    ok: bool = True
    detail: str = ""
    call: str = ""  # the socket API call it made (SOCKET_CALLS), "" for none


@dataclass
class Response:
    status: int | None
    bytes: int
    ttfb_ms: float | None
    total_ms: float | None
    error: str | None = None
    closing: str | None = None  # why the server will close after this response, if it said so
    simulated_rtt_ms: int | None = None  # the test server's simulated RTT, when it said it simulates one
    server_closes: bool = False  # the built-in server said it closes the connection itself


@dataclass
class ConnectionRecord:
    index: int
    local_ip: str | None = None
    local_port: int | None = None
    remote_ip: str | None = None
    remote_port: int | None = None
    steps: list[Step] = field(default_factory=list)
    responses: list[Response] = field(default_factory=list)
    error: str | None = None
    tcp_start: TcpInfo | None = None  # the client socket's tcp_info once connected
    tcp: TcpInfo | None = None  # … and at the end, before the close (None off Linux)

    @property
    def four_tuple(self) -> tuple[str, str, int, str | None, int | None] | None:
        if self.local_ip is None or self.local_port is None:
            return None
        return ("tcp", self.local_ip, self.local_port, self.remote_ip, self.remote_port)

    def phase_ms(self, name: str, shared: Sequence[Step] = ()) -> float | None:
        """The first request's time in one phase (the probe's shared DNS step included), or None."""
        for step in (*shared, *self.steps):
            if step.name == name:
                return round(step.duration_ms, 3)
        return None

    def to_json(self, shared: Sequence[Step]) -> dict:
        return {
            "local_ip": self.local_ip,
            "local_port": self.local_port,
            "remote_ip": self.remote_ip,
            "remote_port": self.remote_port,
            "phases": {f"{name}_ms": self.phase_ms(name, shared) for name in PHASES},
            "responses": [
                {"status": r.status, "bytes": r.bytes, "ttfb_ms": r.ttfb_ms, "total_ms": r.total_ms}
                for r in self.responses
            ],
            "error": self.error,
            "tcp": tcp_json(self.tcp),
        }


def tcp_json(info: TcpInfo | None) -> dict[str, int | float | None] | None:
    """`probe --json`'s `tcp` of a connection."""
    if info is None:
        return None
    return {
        "segs_out": info.segs_out,
        "segs_in": info.segs_in,
        "mss": info.snd_mss,
        "cwnd": info.snd_cwnd,
        "rtt_ms": None if info.rtt_us is None else info.rtt_us / 1000,
        "retrans": info.total_retrans,
        "delivery_rate": info.delivery_rate,
    }


@dataclass
class ProbeResult:
    url: str
    mode: str
    count: int
    connections: list[ConnectionRecord] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)  # before any connection: parse, dns
    error: str | None = None
    done: bool = False
    urls: tuple[str, ...] = ()  # when the requests take several URLs in turn: all of them (`url` is the first)

    @property
    def first_error(self) -> str | None:
        return self.error or next((c.error for c in self.connections if c.error), None)

    @property
    def simulated_rtt_ms(self) -> int | None:
        """The server's simulated RTT, if any response said it simulates one."""
        return next((r.simulated_rtt_ms for c in self.connections for r in c.responses if r.simulated_rtt_ms), None)

    @property
    def ok(self) -> bool:
        answered = sum(1 for c in self.connections for r in c.responses if r.error is None and r.status is not None)
        return self.done and self.first_error is None and answered == self.count

    def to_json(self) -> dict:
        return {
            "url": self.url,
            "mode": self.mode,
            "ok": self.ok,
            "error": self.first_error,
            "connections": [c.to_json(self.steps) for c in self.connections],
        }
