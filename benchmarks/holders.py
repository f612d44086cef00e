"""Hold N established loopback connections in helper processes, for the benchmark.

One process may hold ~19,000 fds here, so the connections are spread over several helper
processes, each with its own listener on 127.0.0.1 and at most 8,000 connections (both ends:
16,000 fds). Every helper exits on its own after `lifetime` seconds, or as soon as its stdin
closes; `hold()` ends them by pid when the `with` block exits. Loopback only.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator

PER_PROCESS = 8000

HELPER = r"""
import resource, select, socket, struct, sys, time
count, lifetime = int(sys.argv[1]), float(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 2 * count + 100), hard))
listener = socket.create_server(("127.0.0.1", 0), backlog=4096)
port = listener.getsockname()[1]
reset = struct.pack("ii", 1, 0)
pairs = []

def open_pairs(n):
    for start in range(0, n, 500):
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(min(500, n - start))]
        for client in clients:
            server = listener.accept()[0]
            for sock in (client, server):  # closed with RST: no TIME_WAIT left behind
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, reset)
            pairs.append((client, server))

open_pairs(count)
sys.stdout.write(f"ready {port}\n")
sys.stdout.flush()
deadline = time.monotonic() + lifetime
while time.monotonic() < deadline:
    readable, _, _ = select.select([sys.stdin], [], [], 1.0)
    if not readable:
        continue
    line = sys.stdin.readline()
    if not line:
        break
    churn = min(int(line.split()[1]), len(pairs))  # "churn K": K connections close, K new ones open
    for client, server in pairs[:churn]:
        client.close()
        server.close()
    del pairs[:churn]
    open_pairs(churn)
    sys.stdout.write("done\n")
    sys.stdout.flush()
"""


class Held:
    """The helper processes holding the connections."""

    def __init__(self, helpers: list[subprocess.Popen], counts: list[int]) -> None:
        self.helpers, self.counts = helpers, counts
        self.pids = [helper.pid for helper in helpers]

    def churn(self, fraction: float) -> None:
        """Close that fraction of the connections and open as many new ones (both ends)."""
        for helper, count in zip(self.helpers, self.counts, strict=True):
            assert helper.stdin is not None
            helper.stdin.write(f"churn {max(1, round(count * fraction))}\n")
            helper.stdin.flush()
        for helper in self.helpers:
            assert helper.stdout is not None
            if helper.stdout.readline() != "done\n":
                raise RuntimeError("a connection helper did not churn")


@contextlib.contextmanager
def hold(connections: int, lifetime: float = 900.0) -> Iterator[Held]:
    """Open `connections` established loopback connections, held until the block ends."""
    helpers: list[subprocess.Popen] = []
    counts: list[int] = []
    try:
        remaining = connections
        while remaining > 0:
            count = min(PER_PROCESS, remaining)
            helpers.append(
                subprocess.Popen(
                    [sys.executable, "-c", HELPER, str(count), str(lifetime)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
            counts.append(count)
            remaining -= count
        for helper in helpers:
            line = helper.stdout.readline() if helper.stdout else ""
            if not line.startswith("ready"):
                raise RuntimeError(f"a connection helper failed to start ({line!r})")
        yield Held(helpers, counts)
    finally:
        for helper in helpers:
            with contextlib.suppress(OSError):
                if helper.stdin:
                    helper.stdin.close()
        deadline = time.monotonic() + 10
        for helper in helpers:
            try:
                helper.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                helper.kill()
                helper.wait()
