"""Real loopback sockets for the tests; every fixture closes what it opened."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from conntui.http.server import ServerThread
from conntui.model import Socket
from conntui.poller import Poller
from conntui.sources import SourceError, open_source
from conntui.ui.socket_table import SocketTable
from conntui.view import Row

LINUX = sys.platform.startswith("linux")
# Tests of the Linux sources (netlink, /proc, owners from /proc/*/fd); elsewhere conntui uses psutil.
linux_only = pytest.mark.skipif(not LINUX, reason="needs Linux: netlink sock_diag and /proc")

HAS_IPV6 = socket.has_ipv6
try:
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
        probe.bind(("::1", 0))
except OSError:
    HAS_IPV6 = False


def available_backends() -> list[str]:
    names = []
    for name in ("netlink", "proc", "psutil"):
        try:
            open_source(name).close()
        except (SourceError, OSError):
            continue
        names.append(name)
    return names


BACKENDS = available_backends()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def poller(backend: str) -> Iterator[Poller]:
    poller = Poller(open_source(backend))
    yield poller
    poller.close()


class Sockets:
    """Opens loopback sockets and closes them all at the end of the test."""

    def __init__(self) -> None:
        self.opened: list[socket.socket] = []

    def keep(self, sock: socket.socket) -> socket.socket:
        self.opened.append(sock)
        return sock

    def listener(self, host: str = "127.0.0.1", reuseport: bool = False, port: int = 0) -> socket.socket:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = self.keep(socket.socket(family, socket.SOCK_STREAM))
        if reuseport:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(16)
        return sock

    def connection(self, listener: socket.socket) -> tuple[socket.socket, socket.socket]:
        """(client, accepted server side) of a new connection to the listener."""
        host, port = listener.getsockname()[:2]
        client = self.keep(socket.create_connection((host, port), timeout=5))
        server, _ = listener.accept()
        self.keep(server)
        return client, server

    def close_all(self) -> None:
        for sock in self.opened:
            sock.close()
        self.opened.clear()


@pytest.fixture
def sockets() -> Iterator[Sockets]:
    opened = Sockets()
    yield opened
    opened.close_all()


@pytest.fixture
def server() -> Iterator[ServerThread]:
    """The built-in test server on a free loopback port, on its own thread."""
    thread = ServerThread("127.0.0.1", 0)
    thread.start()
    yield thread
    thread.stop()


@pytest.fixture
def child_holding() -> Iterator[Callable[[socket.socket], subprocess.Popen]]:
    """Starts a child process that inherits a socket; ends it (by its pid) afterwards."""
    children: list[subprocess.Popen] = []

    def start(sock: socket.socket) -> subprocess.Popen:
        code = "import sys, time; sys.stdout.write('ready\\n'); sys.stdout.flush(); time.sleep(60)"
        child = subprocess.Popen(
            [sys.executable, "-c", code],
            pass_fds=[sock.fileno()],
            stdout=subprocess.PIPE,
        )
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        children.append(child)
        return child

    yield start
    for child in children:
        child.kill()
        child.wait(timeout=5)


def find(sockets: tuple[Socket, ...] | list[Socket], local: tuple, remote: tuple | None = None, proto: str = "tcp"):
    """Rows with this local (ip, port) and, if given, remote (ip, port)."""
    return [
        sock
        for sock in sockets
        if sock.proto == proto
        and (sock.local_ip, sock.local_port) == local[:2]
        and (remote is None or (sock.remote_ip, sock.remote_port) == remote[:2])
    ]


def poll_until(poller: Poller, predicate: Callable[[tuple[Socket, ...]], object], timeout: float = 5.0):
    """Poll until predicate(sockets) is truthy; returns its value (fails the test on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        snapshot, _ = poller.poll()
        value = predicate(snapshot.sockets)
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.05)


async def wait_for(pilot, predicate: Callable[[], object], timeout: float = 30.0) -> None:
    """Let the app run until predicate() holds (bounded), instead of sleeping a fixed time."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:  # what the app said meanwhile, for whoever reads the failure
            said = "; ".join(notification.message for notification in pilot.app._notifications)
            pytest.fail(f"app condition not met within {timeout} s (screen {pilot.app.screen!r}; said: {said})")
        await pilot.pause(0.05)
        await asyncio.sleep(0)


async def cursor_to(pilot, find_row: Callable[[], Row | None]) -> Row:
    """Put the table's cursor on the row `find_row` finds (waiting for it): the dashboard's state may
    have the row before the table has drawn it, and moving to a key the table has not yet drawn
    does nothing."""
    table = pilot.app.query_one(SocketTable)

    def cursor_on_it() -> bool:
        row = find_row()
        if row is None:
            return False
        if table.cursor_row is not None and table.cursor_row.sock.key == row.sock.key:
            return True
        table.move_to_key(row.sock.key)
        return False

    await wait_for(pilot, cursor_on_it)
    return table.cursor_row
