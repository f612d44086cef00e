"""A probe's record as the seven-step timeline people read: labels, times, bars. Pure text.

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


@dataclass(frozen=True)
class TimelineRow:
    label: str
    ms: float
    bar: str  # bar of BAR_WIDTH cells at most, scaled to the slowest step shown
    ok: bool
    detail: str


def timeline(steps: list[Step], scale_ms: float) -> list[TimelineRow]:
    rows = []
    for step in steps:
        cells = 0 if scale_ms <= 0 else round(step.duration_ms / scale_ms * BAR_WIDTH)
        bar = "█" * max(1 if step.duration_ms > 0 else 0, min(BAR_WIDTH, cells))
        rows.append(TimelineRow(STEP_LABELS.get(step.name, step.name), step.duration_ms, bar, step.ok, step.detail))
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
    return printable(
        f"{result.mode} ×{result.count}  {result.url}  {verdict}"
    )  # the URL is the user's, errors quote peers


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
        if record.error:
            lines.append(f"    error: {record.error}")
    return "\n".join(printable(line) for line in lines) + "\n"


def _line(row: TimelineRow) -> str:
    mark = "" if row.ok else "  ✗"
    return f"{row.label:<15} {row.ms:9.2f} ms  {row.bar:<{BAR_WIDTH}}  {row.detail}{mark}".rstrip()
