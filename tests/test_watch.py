"""`conntui watch` and the kernel's destroy events, with real loopback connections."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from conntui.filters import parse_filter
from conntui.poller import Poller
from conntui.socket_events import Event
from conntui.sources.destroy_events import DestroyEventsUnavailable, DestroyListener
from conntui.sources.netlink import NetlinkSource
from conntui.watch import Watcher

WAIT = 20.0  # seconds: a bound on every wait for a line or an event, never a measure
EVENT_FIELDS = [
    "ts",
    "event",
    "proto",
    "family",
    "local_ip",
    "local_port",
    "remote_ip",
    "remote_port",
    "state",
    "pids",
    "process",
    "user",
    "rtt_ms",
    "retrans",
    "bytes_sent",
    "bytes_received",
]


def short_connection(listener: socket.socket, payload: bytes = b"") -> int:
    """Open, (send), close a connection at once, client first; its client port."""
    client = socket.create_connection(listener.getsockname()[:2], timeout=5)
    server, _ = listener.accept()
    port = client.getsockname()[1]
    if payload:
        client.sendall(payload)
        server.recv(len(payload))
    client.close()
    server.close()
    return port


def test_destroy_listener_announces_a_connection_closed_client_first(sockets) -> None:
    listener = sockets.listener()
    destroyed = DestroyListener([("tcp", 4)])
    try:
        port = short_connection(listener, b"hello")
        ends = {}
        deadline = time.monotonic() + WAIT
        while len(ends) < 2 and time.monotonic() < deadline:
            for sock in destroyed.receive(timeout=0.5):
                if port in (sock.local_port, sock.remote_port):
                    ends[sock.local_port] = sock
    finally:
        destroyed.close()
    client = ends[port]
    assert (client.proto, client.family, client.remote_port) == ("tcp", 4, listener.getsockname()[1])
    assert client.state == "CLOSE" and isinstance(client.key, int)  # its cookie
    assert client.bytes_sent == 5 and client.retrans == 0  # the final tcp_info
    # The client end went on into TIME_WAIT: a minisocket of its own cookie, never announced.
    remote = listener.getsockname()
    time_wait = [
        sock
        for sock in NetlinkSource().list_sockets([("tcp", 4)])
        if (sock.local_port, sock.remote_ip, sock.remote_port) == (port, *remote)
    ]
    assert [sock.state for sock in time_wait] in (["TIME_WAIT"], ["FIN_WAIT2"])  # FIN_WAIT2: the peer's FIN not in yet
    assert time_wait[0].key != client.key


def test_watcher_matches_a_destroyed_socket_to_the_poll_that_saw_it(sockets) -> None:
    listener = sockets.listener()
    events: list[Event] = []
    poller = Poller(NetlinkSource(), "tcp4")
    selection = parse_filter(f"port:{listener.getsockname()[1]}")
    watcher = Watcher(poller, DestroyListener(poller.kinds), selection, events.append, interval=0.1)
    try:
        watcher.step()  # the baseline poll
        client, server = sockets.connection(listener)
        port = client.getsockname()[1]

        def step_until(kind: str) -> Event:
            deadline = time.monotonic() + WAIT
            while time.monotonic() < deadline:
                for event in events:
                    if event.kind == kind and event.sock.local_port == port:
                        return event
                watcher.step()
            raise AssertionError(f"no {kind} event for port {port}: {events}")

        opened = step_until("opened")
        client.sendall(b"hello")
        server.recv(5)
        client.close()
        closed = step_until("closed")
    finally:
        watcher.close()
    assert opened.sock.pids == closed.sock.pids and os.getpid() in closed.sock.pids  # the owner, from the poll
    assert closed.seen_in_poll and closed.lifetime_ms is not None and closed.lifetime_ms >= 0
    assert closed.sock.bytes_sent == 5  # the final figures, from the kernel
    assert sum(event.kind == "closed" and event.sock.local_port == port for event in events) == 1


def test_a_refused_subscription_is_said_not_raised_as_is(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*args: object) -> socket.socket:  # what a seccomp filter does; cannot be set up unprivileged
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(socket, "socket", refused)
    with pytest.raises(DestroyEventsUnavailable, match=r"unavailable: .*Operation not permitted"):
        DestroyListener()


class Watching:
    """`conntui watch --json` as a process, its lines read on a thread."""

    def __init__(self, *args: str) -> None:
        command = [sys.executable, "-m", "conntui", "watch", "--json", *args]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def closed_line(self, port: int, timeout: float = WAIT) -> dict[str, object] | None:
        return self.next_line("closed", port, timeout)

    def next_line(self, event: str, port: int, timeout: float = WAIT) -> dict[str, object] | None:
        """The next `event` record of the socket of local `port`, or None within the timeout."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                record = json.loads(self.lines.get(timeout=left))
            except queue.Empty:
                return None
            if record["event"] == event and record["local_port"] == port:
                return record
        return None

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGTERM)
        _, stderr = self.process.communicate(timeout=30)
        return self.process.returncode, stderr


def test_watch_json_reports_a_connection_shorter_than_a_poll(sockets) -> None:
    listener = sockets.listener()
    watching = Watching("--interval", "3600", "--port", str(listener.getsockname()[1]))
    try:
        # Ready once a closed line comes through: the first (and, at this interval, only) poll is done.
        for _ in range(100):
            if watching.closed_line(short_connection(listener), timeout=0.2) is not None:
                break
        else:
            pytest.fail("conntui watch never reported a closed connection")
        port = short_connection(listener, b"hello")  # lives about a millisecond; the next poll is in an hour
        record = watching.closed_line(port)
    finally:
        status, stderr = watching.stop()
    assert record is not None
    assert list(record) == [*EVENT_FIELDS, "lifetime_ms", "seen_in_poll"]
    assert record["seen_in_poll"] is False and record["lifetime_ms"] is None
    assert (record["proto"], record["family"], record["local_ip"]) == ("tcp", 4, "127.0.0.1")
    assert record["remote_port"] == listener.getsockname()[1] and record["bytes_sent"] == 5
    assert str(record["ts"]).endswith("Z")
    assert (status, stderr) == (0, "")  # SIGTERM: a clean end


def test_watch_without_destroy_events_reports_closes_from_its_polls(sockets) -> None:
    listener = sockets.listener()
    watching = Watching("--backend", "proc", "--interval", "0.1", "--port", str(listener.getsockname()[1]))
    try:
        for _ in range(40):  # a connection made before the first poll is the baseline: no opened line
            client, _server = sockets.connection(listener)
            port = client.getsockname()[1]
            if watching.next_line("opened", port, timeout=0.5) is not None:
                break
        else:
            pytest.fail("conntui watch never reported an opened connection")
        client.close()
        closed = watching.closed_line(port)
    finally:
        status, stderr = watching.stop()
    assert closed is not None and closed["seen_in_poll"] is True and os.getpid() in closed["pids"]
    assert status == 0 and "the proc backend has no destroy events" in stderr


def close_connections_until_it_ends(listener: socket.socket, watching: subprocess.Popen) -> None:
    """Short connections, each a line for `watch` to write, until it ends (at most 200, 0.1 s apart)."""
    for _ in range(200):
        short_connection(listener)
        try:
            watching.wait(timeout=0.1)
            return
        except subprocess.TimeoutExpired:
            pass


def test_watch_into_a_closed_pipe_ends_quietly(sockets) -> None:
    listener = sockets.listener()
    watch = f"{sys.executable} -m conntui watch --interval 3600 --port {listener.getsockname()[1]}"
    command = f"set -o pipefail; {watch} | head -1"
    pipeline = subprocess.Popen(["bash", "-c", command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    close_connections_until_it_ends(listener, pipeline)  # `head` takes one line, the next write finds it closed
    stdout, stderr = pipeline.communicate(timeout=30)
    assert (pipeline.returncode, stderr) == (0, "")
    assert stdout.count("\n") == 1 and " closed " in stdout


@pytest.mark.parametrize("how", ["full disk", "closed stdout"])
def test_watch_that_cannot_write_says_so_in_one_line(how: str, sockets) -> None:
    listener = sockets.listener()
    watch = f"{sys.executable} -m conntui watch --interval 3600 --port {listener.getsockname()[1]}"
    command = f"exec {watch} > /dev/full" if how == "full disk" else f"exec {watch} >&-"
    watching = subprocess.Popen(["bash", "-c", command], stderr=subprocess.PIPE, text=True)
    close_connections_until_it_ends(listener, watching)  # its first close is its first line to write
    _, stderr = watching.communicate(timeout=30)
    said = "cannot write the output: No space left on device" if how == "full disk" else "no standard output"
    assert watching.returncode == 1 and stderr.startswith(f"conntui watch: error: {said}"), stderr
    assert "Traceback" not in stderr


def test_watch_and_serve_out_of_file_descriptors_or_disk_say_so_in_one_line() -> None:
    import resource

    def few_fds() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (6, 6))

    result = subprocess.run([sys.executable, "-m", "conntui", "watch"], capture_output=True, text=True, timeout=60,
                            preexec_fn=few_fds)  # fmt: skip
    assert result.returncode == 1 and result.stderr == "conntui watch: error: Too many open files\n", result.stderr
    for fds in (5, 6):  # the event loop cannot start; it starts, and the listening socket cannot be had
        result = subprocess.run([sys.executable, "-m", "conntui", "serve", "--port", "0"], capture_output=True,
                                text=True, timeout=60, preexec_fn=lambda fds=fds: resource.setrlimit(
                                    resource.RLIMIT_NOFILE, (fds, fds)))  # fmt: skip
        assert result.returncode == 1, result.stderr
        assert result.stderr == "conntui serve: error: cannot listen on 127.0.0.1:0: Too many open files\n"
    with open("/dev/full", "w") as full:  # the banner cannot be printed: not "cannot listen"
        result = subprocess.run([sys.executable, "-m", "conntui", "serve", "--port", "0"], stdout=full,
                                stderr=subprocess.PIPE, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == "conntui serve: error: cannot write the output: No space left on device\n"


@pytest.mark.parametrize(
    "args",
    [["--interval", "0"], ["--kind", "sctp"], ["--filter", "state:nonsense"], ["--port", "99999"], ["--csv"]],
)
def test_watch_bad_arguments_exit_2(args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "conntui", "watch", *args], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and result.stderr.startswith("conntui watch: error:"), result.stderr


def test_watch_does_not_import_textual() -> None:
    code = (
        "import sys, signal, threading; from conntui.cli import main;"
        "threading.Timer(1, lambda: signal.raise_signal(signal.SIGINT)).start();"
        "assert main(['watch', '--json', '--port', '1']) == 0; assert 'textual' not in sys.modules"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
