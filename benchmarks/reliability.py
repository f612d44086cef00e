"""Reliability figures for the README, from the real `conntui` dashboard driven in tmux.

    python benchmarks/reliability.py [--out benchmarks/RELIABILITY.md]

1. Idle CPU of the dashboard at the default interval with ~70 and ~1,000 sockets (loopback
   connections held open by helper processes, on top of what the host has), next to the cost
   of the bare netlink dump done at the same interval (what no dashboard can avoid).
2. A churn soak: hundreds of loopback connections per second (each connect, request, answer,
   close) for 120 s while the dashboard runs at 80×24: is it alive, does a key still answer
   quickly (time from `p` to PAUSED on screen), does its RSS level off once the TIME_WAIT
   sockets the churn leaves (60 s each) stop growing in number.
3. The unprivileged run: the dashboard as the user nobody (setpriv) says what it cannot see
   and quits cleanly.

Loopback only; every loop that makes connections is bounded in count and time; only processes
started here are ended, by their pid.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from holders import hold

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")
CONNTUI = shutil.which("conntui") or str(Path(sys.executable).with_name("conntui"))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def socket_count(*state: str) -> int:
    result = subprocess.run(["ss", "-tuanH", *state], capture_output=True, text=True, timeout=60)
    return len(result.stdout.splitlines())


def wait_for_quiet(timeout: float = 90) -> None:
    """Until the TIME_WAIT sockets an earlier run left behind are gone (they last 60 s)."""
    deadline = time.monotonic() + timeout
    while socket_count("state", "time-wait") > 50 and time.monotonic() < deadline:
        time.sleep(2)


class Dashboard:
    """`conntui` in a detached tmux session of the given size; its pid is the pane's."""

    def __init__(self, name: str, size: tuple[int, int] = (80, 24), prefix: tuple[str, ...] = ()) -> None:
        self.name = name
        command = (*prefix, sys.executable, "-m", "conntui") if prefix else (CONNTUI,)
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", name, "-x", str(size[0]), "-y", str(size[1]),
             "--", "env", "TERM=xterm-256color", *command],
            check=True,
        )  # fmt: skip
        self.pid = int(self.tmux("display-message", "-p", "-t", name, "#{pane_pid}").strip())
        self.wait_for("sockets", 30)

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=30).stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.name)

    def wait_for(self, text: str, timeout: float, present: bool = True) -> float:
        started = time.monotonic()
        while (text in self.screen()) != present:
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"{text!r} {'never appeared' if present else 'stayed'} on screen")
            time.sleep(0.01)
        return time.monotonic() - started

    def key_latency(self) -> float:
        """Seconds from `p` to PAUSED on screen (then resumes)."""
        self.tmux("send-keys", "-t", self.name, "p")
        took = self.wait_for("PAUSED", 10)
        self.tmux("send-keys", "-t", self.name, "p")
        self.wait_for("PAUSED", 10, present=False)
        return took

    def quit(self) -> bool:
        """`q`; True when the process ended by itself within 10 s."""
        self.tmux("send-keys", "-t", self.name, "q")
        deadline = time.monotonic() + 10
        while Path(f"/proc/{self.pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        ended = not Path(f"/proc/{self.pid}").exists()
        self.tmux("kill-session", "-t", self.name)
        return ended


def idle_percent(pid: int, seconds: float) -> float:
    before, started = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return 100 * (cpu_seconds(pid) - before) / (time.monotonic() - started)


def bare_dump_percent(seconds: float, interval: float = 1.0) -> float:
    """CPU of a netlink dump with TCP info, once per interval: the floor of any poll."""
    code = (
        "import os, sys, time\n"
        "from conntui.model import KINDS\n"
        "from conntui.sources.netlink import NetlinkSource\n"
        "source, end = NetlinkSource(), time.monotonic() + float(sys.argv[1])\n"
        "before, started = os.times(), time.monotonic()\n"
        "while time.monotonic() < end:\n"
        "    source.list_sockets(KINDS['inet'])\n"
        "    time.sleep(float(sys.argv[2]))\n"
        "after = os.times()\n"
        "print(100 * (after.user + after.system - before.user - before.system) / (time.monotonic() - started))\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(seconds), str(interval)], capture_output=True, text=True)
    return float(result.stdout.strip())


def measure_idle(seconds: float, extra_connections: int) -> dict[str, float]:
    with hold(extra_connections) if extra_connections else contextlib.nullcontext():
        dashboard = Dashboard(f"idle{extra_connections}")
        try:
            time.sleep(5)  # the first polls, the first full owner scan
            sockets = socket_count()
            cpu = idle_percent(dashboard.pid, seconds)
            rss = rss_mb(dashboard.pid)
        finally:
            dashboard.quit()
        dump = bare_dump_percent(seconds)
    return {"sockets": sockets, "cpu": cpu, "dump": dump, "rss": rss}


@contextlib.contextmanager
def churn(rate: int, seconds: float) -> Iterator[dict[str, int]]:
    """A loopback server and a client making `rate` connections a second, each a request and an answer."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
    stats = {"connections": 0, "failures": 0}
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn, contextlib.suppress(OSError):
                conn.settimeout(1)
                conn.recv(64)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    def connect() -> None:
        start = time.monotonic()
        for index in range(int(rate * seconds)):  # bounded in count, and in time below
            if stop.is_set() or time.monotonic() > start + seconds:
                break
            try:
                with socket.create_connection(listener.getsockname(), timeout=1) as client:
                    client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                    client.recv(64)
                stats["connections"] += 1
            except OSError:
                stats["failures"] += 1
            time.sleep(max(0.0, start + (index + 1) / rate - time.monotonic()))

    threads = [threading.Thread(target=serve, daemon=True), threading.Thread(target=connect, daemon=True)]
    for thread in threads:
        thread.start()
    try:
        yield stats
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)
        listener.close()


def soak(seconds: float, rate: int) -> dict[str, object]:
    dashboard = Dashboard("soak")
    rss: list[float] = []
    sockets: list[int] = []
    latencies: list[float] = []
    started, cpu_before = time.monotonic(), cpu_seconds(dashboard.pid)
    with churn(rate, seconds) as stats:
        while time.monotonic() - started < seconds:
            time.sleep(5)
            rss.append(rss_mb(dashboard.pid))
            sockets.append(socket_count())
            latencies.append(dashboard.key_latency())
    elapsed = time.monotonic() - started
    cpu = 100 * (cpu_seconds(dashboard.pid) - cpu_before) / elapsed
    alive = Path(f"/proc/{dashboard.pid}").exists() and "sockets" in dashboard.screen()
    quit_cleanly = dashboard.quit()
    return {
        "seconds": round(elapsed),
        "connections": stats["connections"],
        "failures": stats["failures"],
        "rate": stats["connections"] / elapsed,
        "alive": alive,
        "quit": quit_cleanly,
        "cpu": cpu,
        "rss": rss,
        "sockets": sockets,
        "latency_median_ms": 1000 * statistics.median(latencies),
        "latency_max_ms": 1000 * max(latencies),
    }


def unprivileged() -> dict[str, object]:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return {"skipped": "needs root and setpriv"}
    dashboard = Dashboard("nobody", (200, 50), prefix=("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"))
    try:
        time.sleep(3)
        status = [line for line in dashboard.screen().splitlines() if "hidden" in line]
    finally:
        quit_cleanly = dashboard.quit()
    return {"hidden_note": status[0].strip() if status else "", "quit": quit_cleanly}


def report(idle: list[dict[str, float]], soaked: dict[str, object], nobody: dict[str, object], argv: list[str]) -> str:
    load = os.getloadavg()
    lines = [
        "# conntui reliability figures",
        "",
        f"Command: `python {' '.join(argv)}`  ",
        f"When: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: {os.cpu_count()} cores, "
        f"Linux {platform.release()}, Python {platform.python_version()}; load average at the end "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}.",
        "",
        "## Idle dashboard, default 1 s interval, 80×24 in tmux",
        "",
        "| sockets on the host | dashboard CPU (% of one core) | bare netlink dump at the same interval | RSS (MB) |",
        "|---|---|---|---|",
    ]
    lines += [f"| {row['sockets']:,} | {row['cpu']:.2f} | {row['dump']:.2f} | {row['rss']:.0f} |" for row in idle]
    rss, sockets = soaked["rss"], soaked["sockets"]
    lines += [
        "",
        f"## Churn soak: {soaked['connections']:,} loopback connections in {soaked['seconds']} s "
        f"({soaked['rate']:.0f}/s, {soaked['failures']} failed), dashboard at 80×24",
        "",
        f"- alive at the end: {'yes' if soaked['alive'] else 'NO'}; `q` ended it: {'yes' if soaked['quit'] else 'NO'}",
        f"- key to screen (`p` → PAUSED), every 5 s: median {soaked['latency_median_ms']:.0f} ms, "
        f"max {soaked['latency_max_ms']:.0f} ms",
        f"- dashboard CPU during the soak: {soaked['cpu']:.1f} % of one core",
        f"- RSS every 5 s (MB): {', '.join(f'{value:.0f}' for value in rss)} "  # type: ignore[union-attr]
        f"(first half max {max(rss[: len(rss) // 2]):.0f}, second half max {max(rss[len(rss) // 2 :]):.0f})",  # type: ignore[index]
        f"- sockets on the host at those moments: {', '.join(f'{count:,}' for count in sockets)}",  # type: ignore[union-attr]
        "",
        "## Unprivileged (the user nobody, through setpriv), 200×50",
        "",
    ]
    if "skipped" in nobody:
        lines.append(f"- skipped: {nobody['skipped']}")
    else:
        lines += [f"- status line: `{nobody['hidden_note']}`", f"- `q` ended it: {'yes' if nobody['quit'] else 'NO'}"]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--soak-seconds", type=float, default=120.0)
    parser.add_argument("--rate", type=int, default=300, help="connections per second in the soak (default 300)")
    parser.add_argument("--idle-only", action="store_true", help="measure the idle CPU only, print it and stop")
    parser.add_argument("--out", type=Path, help="write the markdown report here too")
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        print("reliability.py needs tmux", file=sys.stderr)
        return 2
    print("idle…", file=sys.stderr, flush=True)
    wait_for_quiet()
    idle = [measure_idle(args.idle_seconds, 35), measure_idle(args.idle_seconds, 500)]
    if args.idle_only:
        print(*idle, sep="\n")
        return 0
    print("unprivileged…", file=sys.stderr, flush=True)
    nobody = unprivileged()
    print("soak…", file=sys.stderr, flush=True)
    soaked = soak(args.soak_seconds, args.rate)
    text = report(idle, soaked, nobody, [os.path.relpath(__file__, ROOT), *sys.argv[1:]])
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
