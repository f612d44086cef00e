"""A probe's record as the seven-step timeline people read: labels, socket calls, times, bars,
and what TCP did per connection (from its tcp_info). Pure text.

Shared by `conntui probe` (plain text) and the dashboard's tests pane (which adds colour).
"""

from __future__ import annotations

from dataclasses import dataclass

from conntui.http.records import ConnectionRecord, ProbeResult, Step
from conntui.model import format_endpoint
from conntui.text import printable

# The source notes' numbering: (1) host, (2) resolve, (3) port, (4) connect, (5) send,
# (6) read the response, (7) close. TLS belongs to opening the connection; hold is ours.
STEP_LABELS = {
    "parse": "1,3 host+port",
    "dns": "2   resolve",
    "connect": "4   connect",
    "tls": "4   TLS",
    "send": "5   send",
    "ttfb": "6   first byte",
    "transfer": "6   read",
    "hold": "    hold",
    "close": "7   close",
}
BAR_WIDTH = 30
CALL_WIDTH = 16  # the widest socket call named, "socket + connect"


@dataclass(frozen=True)
class TimelineRow:
    label: str
    call: str  # the socket API call the step made ("" for none)
    ms: float
    bar: str  # bar of BAR_WIDTH cells at most, scaled to the slowest step shown
    ok: bool
    detail: str


def timeline(steps: list[Step], scale_ms: float) -> list[TimelineRow]:
    rows = []
    for step in steps:
        cells = 0 if scale_ms <= 0 else round(step.duration_ms / scale_ms * BAR_WIDTH)
        bar = "█" * max(1 if step.duration_ms > 0 else 0, min(BAR_WIDTH, cells))
        label = STEP_LABELS.get(step.name, step.name)
        rows.append(TimelineRow(label, step.call, step.duration_ms, bar, step.ok, step.detail))
    return rows


def scale_for(result: ProbeResult) -> float:
    """The slowest step, not counting the hold (which would flatten every other bar)."""
    steps = [*result.steps, *(step for record in result.connections for step in record.steps)]
    return max((s.duration_ms for s in steps if s.name != "hold"), default=0.0)


def tuple_text(record: ConnectionRecord) -> str:
    if record.local_ip is None:
        return "(no connection)"
    local = format_endpoint(record.local_ip, record.local_port)
    return f"{local} → {format_endpoint(record.remote_ip or '', record.remote_port)}"


def summary(result: ProbeResult) -> str:
    if not result.done:
        verdict = "running"
    elif result.ok:
        verdict = "ok"
    else:
        verdict = f"FAILED: {result.first_error}"
    distance = f"  {simulated_note(result.simulated_rtt_ms)}" if result.simulated_rtt_ms else ""
    # The URL is the user's, errors quote peers: made printable.
    return printable(f"{result.mode} ×{result.count}  {urls_text(result.urls or (result.url,))}  {verdict}{distance}")


def urls_text(urls: tuple[str, ...]) -> str:
    """The first URL, and how many more the requests take in turn."""
    more = len(urls) - 1
    return urls[0] + (f" (+{more} more URL{'s' if more != 1 else ''}, in turn)" if more else "")


def simulated_note(rtt_ms: int) -> str:
    return f"[server RTT {rtt_ms:,} ms, simulated]"


def tcp_line(record: ConnectionRecord) -> str | None:
    """What TCP did on the connection, from its socket's tcp_info: "response 1.2 MB in 23 segments
    (in MSS 65,483 B, out MSS 32,768 B); cwnd 10 → 45; rtt 0.04 ms; 0 retransmitted; delivery 1.1 GB/s"."""
    end = record.tcp
    if end is None:
        return None
    parts = []
    received = sum(response.bytes for response in record.responses)
    segments = end.data_segs_in if end.data_segs_in is not None else end.segs_in
    if segments is not None:
        noun = "response" if len(record.responses) == 1 else "responses"
        # The receive MSS is the largest segment seen coming in (536 until a bigger one comes); the
        # send MSS, what `probe --json` calls "mss", is what this end may send.
        sizes = [f"{label} MSS {value:,} B" for label, value in (("in", end.rcv_mss), ("out", end.snd_mss)) if value]
        size = f" ({', '.join(sizes)})" if sizes else ""
        parts.append(f"{noun} {format_bytes(received)} in {segments:,} segment{'' if segments == 1 else 's'}{size}")
    start_cwnd = record.tcp_start.snd_cwnd if record.tcp_start is not None else None
    if end.snd_cwnd is not None:
        parts.append(f"cwnd {start_cwnd} → {end.snd_cwnd}" if start_cwnd is not None else f"cwnd {end.snd_cwnd}")
    if end.rtt_us is not None:
        parts.append(f"rtt {end.rtt_us / 1000:.2f} ms")
    if end.total_retrans is not None:
        parts.append(f"{end.total_retrans} retransmitted")
    if end.delivery_rate:
        parts.append(f"delivery {format_bytes(end.delivery_rate)}/s")
    return "; ".join(parts)


def format_bytes(count: int) -> str:
    """Decimal units, as the chapter's figures: 512 B, 1.2 kB, 1.2 MB, 3.4 GB."""
    value = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def format_text(result: ProbeResult) -> str:
    """`conntui probe`'s human output."""
    scale = scale_for(result)
    lines = [summary(result)]
    lines += [_line(row) for row in timeline(result.steps, scale)]
    for record in result.connections:
        lines.append(f"connection {record.index + 1}  {tuple_text(record)}")
        lines += ["  " + _line(row) for row in timeline(record.steps, scale)]
        for number, response in enumerate(record.responses, 1):
            if response.error:
                lines.append(f"    request {number}: {response.error}")
            else:
                lines.append(
                    f"    request {number}: HTTP {response.status}  {response.bytes} B  "
                    f"ttfb {response.ttfb_ms:.2f} ms  total {response.total_ms:.2f} ms"
                )
        if (tcp := tcp_line(record)) is not None:
            lines.append(f"    tcp: {tcp}")
        if record.error:
            lines.append(f"    error: {record.error}")
    return "\n".join(printable(line) for line in lines) + "\n"


def _line(row: TimelineRow) -> str:
    mark = "" if row.ok else "  ✗"
    bar = f"{row.bar:<{BAR_WIDTH}}"
    return f"{row.label:<15} {row.call:<{CALL_WIDTH}} {row.ms:9.2f} ms  {bar}  {row.detail}{mark}".rstrip()
