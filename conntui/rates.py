"""A connection's traffic over time, as iftop shows it: 2 s, 10 s and 40 s averages and a total.

Without packet capture: from the kernel's TCP byte counters (tcp_info's bytes_acked and
bytes_received, so TCP only), sampled at each poll. Only a connection that moved bytes gets a
`Traffic` (an idle one costs nothing); it keeps the last 40 seconds of samples (and the one just
before, so the 40 s window is whole) and the per-poll rates the detail pane's sparkline draws.
Knows nothing of Textual.
"""

from __future__ import annotations

from collections import deque

WINDOWS = (2.0, 10.0, 40.0)  # seconds, as iftop's three columns
HISTORY = 40  # polls of byte rates kept for the detail pane's sparkline


class Traffic:
    """Samples of one connection's byte counters, from the poll before its first traffic on."""

    __slots__ = ("averages", "first_received", "first_sent", "history", "samples")

    def __init__(self, at: float, sent: int, received: int) -> None:
        self.history: deque[tuple[float, float]] = deque(maxlen=HISTORY)  # (tx, rx) bytes/s per poll
        self.samples: deque[tuple[float, int, int]] = deque([(at, sent, received)])  # (time, sent, received)
        self.first_sent, self.first_received = sent, received
        self.averages: tuple[float, float, float] = (0.0, 0.0, 0.0)  # bytes/s both ways, per window

    def record(self, at: float, sent: int, received: int, tx: float, rx: float) -> None:
        """One poll's counters (at `at`, in seconds) and the rates since the previous poll."""
        self.history.append((tx, rx))
        samples = self.samples
        samples.append((at, sent, received))
        horizon = at - WINDOWS[-1]
        while len(samples) > 2 and samples[1][0] <= horizon:
            samples.popleft()
        self.averages = (self._average(WINDOWS[0]), self._average(WINDOWS[1]), self._average(WINDOWS[2]))

    def _average(self, window: float) -> float:
        """Bytes per second both ways since the newest sample at least `window` old (or the oldest:
        a connection seen for less than the window is averaged over the time it was seen)."""
        at, sent, received = self.samples[-1]
        start = self.samples[0]
        for sample in self.samples:
            if sample[0] > at - window:
                break
            start = sample
        span = at - start[0]
        return (sent - start[1] + received - start[2]) / span if span > 0 else 0.0

    @property
    def total(self) -> int:
        """Bytes both ways since the dashboard first saw this connection move."""
        _at, sent, received = self.samples[-1]
        return sent - self.first_sent + received - self.first_received

    @property
    def active(self) -> bool:
        """Some average is not zero yet: the next polls still bring it down."""
        return any(self.averages)
