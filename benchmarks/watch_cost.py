"""The CPU `conntui watch --json` uses while loopback connections close at a steady rate.

    python benchmarks/watch_cost.py                 # 1,000 connections a second for 5 s
    python benchmarks/watch_cost.py --rate 500 --seconds 10

`benchmarks/bench.py` reports the same figure (`measure`) with the others.

Each connection is opened, accepted and closed at once (two destroy events, a TIME_WAIT
remnant for the polls); `watch` reads every event, writes a line for each to /dev/null, and
polls once a second. Its CPU time comes from /proc/PID/stat. Loopback only; `watch` is ended
(SIGTERM) when the measurement ends.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(rate: int = 1000, seconds: float = 5.0) -> tuple[int, float, float]:
    """(connections made, seconds taken, % of a core `conntui watch --json` used meanwhile)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        address = listener.getsockname()
        command = [sys.executable, "-m", "conntui", "watch", "--json", "--port", str(address[1])]
        watch = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        try:
            time.sleep(2)  # started, subscribed, first poll done
            cpu_before, started, count = cpu_seconds(watch.pid), time.monotonic(), 0
            while time.monotonic() - started < seconds:
                client = socket.create_connection(address)
                server, _ = listener.accept()
                client.close()
                server.close()
                count += 1
                time.sleep(max(0.0, started + count / rate - time.monotonic()))
            elapsed = time.monotonic() - started
            used = cpu_seconds(watch.pid) - cpu_before
        finally:
            watch.terminate()
            watch.wait(timeout=30)
    return count, elapsed, 100 * used / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=1000, help="connections a second (default 1000)")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long (default 5)")
    args = parser.parse_args()
    count, elapsed, percent = measure(args.rate, args.seconds)
    print(f"{count} connections in {elapsed:.1f} s ({count / elapsed:.0f}/s, {2 * count} socket closes): "
          f"conntui watch --json used {percent:.1f}% of a core")  # fmt: skip


if __name__ == "__main__":
    main()
