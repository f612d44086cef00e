"""Regenerates the README's screenshots from the real app watching real loopback connections.

    python screenshots/make_screenshots.py

Opens a listener on 127.0.0.1 with a few clients (one of them closing into TIME_WAIT, one sending
a steady trickle so that rates show) and two more with connections closed client-first (TIME_WAIT,
for the budget view), runs the
real dashboard headless with the real poller, launches test connections to the built-in test
server, and saves SVGs next to this file. Loopback only; everything it opens is closed before
it exits.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from conntui.grouping import GroupKey
from conntui.http.runner import ProbeRequest
from conntui.http.server import ServerThread
from conntui.model import Owner, Socket
from conntui.poller import Poller
from conntui.sources import NO_OWNERS, SocketSource, open_source
from conntui.ui.app import ConntuiApp
from conntui.ui.socket_table import SocketTable

HERE = Path(__file__).parent
SIZE = (150, 34)


async def wait_until(pilot, condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        await pilot.pause(0.1)


async def shoot(filter_text: str, name: str, keys: tuple[str, ...] = (), size: tuple[int, int] = SIZE) -> None:
    app = ConntuiApp(Poller(open_source(), "inet"), interval=0.5, filter_text=filter_text)
    async with app.run_test(size=size) as pilot:
        await wait_until(pilot, lambda: app.dashboard.poll_count >= 2)
        await pilot.press(*keys)
        await pilot.pause(0.3)
        app.save_screenshot(str(HERE / name))
    print(f"wrote {HERE / name}")


async def shoot_tests(name: str) -> None:
    """Three parallel test connections to the built-in server, held open, watched with `mine`."""
    app = ConntuiApp(Poller(open_source(), "tcp"), interval=0.5, filter_text="mine")
    async with app.run_test(size=(150, 44)) as pilot:
        await wait_until(pilot, lambda: app.dashboard.poll_count >= 1)
        app.dashboard.launch(ProbeRequest("/delay?ms=25", "parallel", 3, 4.0))
        await wait_until(pilot, lambda: len(app.dashboard.state.visible) >= 6)
        await pilot.pause(0.6)
        app.save_screenshot(str(HERE / name))
        await wait_until(pilot, lambda: all(result.done for result in app.dashboard.tests.values()))
    print(f"wrote {HERE / name}")


class OwnSockets:
    """A source that keeps the script's own sockets only: the budget view lists every destination
    on the machine, and the picture must not depend on what else runs there."""

    def __init__(self, source: SocketSource, ports: set[int]) -> None:
        self.source, self.ports = source, ports
        self.name, self.includes_owners = source.name, source.includes_owners

    def list_sockets(
        self, kinds: Iterable[tuple[str, int]], owners: Mapping[int, Owner] = NO_OWNERS, user_name=None
    ) -> list[Socket]:
        rows = self.source.list_sockets(kinds, owners, user_name)
        return [sock for sock in rows if sock.local_port in self.ports or sock.remote_port in self.ports]

    def close(self) -> None:
        self.source.close()


def close_client_first(listener: socket.socket, count: int) -> None:
    """`count` connections to the listener, the client closing first: its side lingers in TIME_WAIT."""
    for _ in range(count):
        client = socket.create_connection(listener.getsockname()[:2])
        server, _ = listener.accept()
        client.close()
        server.recv(1)  # the client's FIN
        server.close()


async def shoot_budget(name: str, listeners: list[socket.socket]) -> None:
    """The budget view (b) over the script's own loopback destinations, some connections made while it watches."""
    ports = {listener.getsockname()[1] for listener in listeners}
    app = ConntuiApp(Poller(OwnSockets(open_source(), ports), "tcp"), interval=0.5, filter_text=f"port:{min(ports)}")
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.dashboard.budget is not None)
        close_client_first(listeners[0], 30)  # new connections per second over the last minute
        await wait_until(pilot, lambda: app.dashboard.poll_count >= 4)
        await pilot.press("b")
        await pilot.pause(0.6)
        app.save_screenshot(str(HERE / name))
    print(f"wrote {HERE / name}")


async def shoot_compare(name: str) -> None:
    """The four modes compared, N=10, against the built-in server 50 ms away (simulated)."""
    app = ConntuiApp(Poller(open_source(), "tcp"), interval=0.5, filter_text="mine")
    async with app.run_test(size=(150, 34)) as pilot:
        await wait_until(pilot, lambda: app.dashboard.poll_count >= 1)
        await pilot.press("p")  # paused while it runs: a poll of a busy machine would share the CPU with it
        app.dashboard.launch(ProbeRequest("", "compare", 10, 0.0, rtt_ms=50))
        await wait_until(pilot, lambda: 1 in app.dashboard.tests and app.dashboard.tests[1].done, timeout=30)
        polls = app.dashboard.poll_count
        await pilot.press("p")
        await wait_until(pilot, lambda: app.dashboard.poll_count > polls)  # the connections' TIME_WAIT rows
        await pilot.pause(0.3)
        app.save_screenshot(str(HERE / name))
    print(f"wrote {HERE / name}")


# Before the keys (the cursor put somewhere, say), the keys to press, then what to wait for.
Step = tuple[Callable[[ConntuiApp], object], tuple[str, ...], Callable[[ConntuiApp], bool]]


async def shoot_steps(filter_text: str, name: str, steps: list[Step], size: tuple[int, int] = SIZE) -> None:
    """Like `shoot`, waiting after each step's keys until the app shows what they asked for."""
    app = ConntuiApp(Poller(open_source(), "inet"), interval=0.5, filter_text=filter_text)
    async with app.run_test(size=size) as pilot:
        await wait_until(pilot, lambda: app.dashboard.poll_count >= 2)
        for prepare, keys, condition in steps:
            prepare(app)
            await pilot.press(*keys)
            await wait_until(pilot, lambda: condition(app))  # noqa: B023
        await pilot.pause(0.3)
        app.save_screenshot(str(HERE / name))
    print(f"wrote {HERE / name}")


async def shoot_history(name: str) -> None:
    """The history pane (h): connections to a test server, one seen by a poll (its lifetime known),
    the others too short for any poll (between polls), one of them a test launched from the app (mine)."""
    server = ServerThread("127.0.0.1", 0)
    server.start()
    port = int(server.url.rsplit(":", 1)[1].strip("/"))
    app = ConntuiApp(Poller(open_source(), "tcp"), interval=0.5, filter_text=f"port:{port}")
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: app.dashboard.poll_count >= 1)
            seen = socket.create_connection(("127.0.0.1", port))
            await wait_until(pilot, lambda: len(app.dashboard.state.visible) >= 3)  # a poll saw it
            await pilot.pause(0.8)
            seen.close()
            for _ in range(4):  # each lives about a millisecond: no poll sees them
                socket.create_connection(("127.0.0.1", port)).close()
            app.dashboard.launch(ProbeRequest(server.url + "delay?ms=5", "single", 1, 0.0))
            await wait_until(pilot, lambda: all(result.done for result in app.dashboard.tests.values()))
            await pilot.press("T", "h")  # the tests pane away, the history in
            await wait_until(pilot, lambda: len(app.dashboard.state.history.visible) >= 10)
            await pilot.pause(0.6)
            app.save_screenshot(str(HERE / name))
    finally:
        server.stop()
    print(f"wrote {HERE / name}")


def host_rates_shown(app: ConntuiApp) -> bool:
    overview = app.dashboard.state.overview
    return overview is not None and bool(overview.host_rates)


def keep_sending(client: socket.socket, server: socket.socket, stop: threading.Event) -> None:
    """Traffic on one connection (64 KiB every 0.1 s, for at most a minute): rates to show."""
    deadline = time.monotonic() + 60
    while not stop.is_set() and time.monotonic() < deadline:
        client.sendall(b"x" * 65536)
        received = 0
        while received < 65536:
            received += len(server.recv(65536))
        stop.wait(0.1)


def main() -> None:
    opened: list[socket.socket] = []
    listener = socket.socket()
    opened.append(listener)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    for index in range(4):
        client = socket.create_connection(("127.0.0.1", port))
        server, _ = listener.accept()
        if index == 3:  # the client closes first: its side lingers in TIME_WAIT
            closing_port = client.getsockname()[1]
            client.close()
            server.close()
        else:
            opened += [client, server]
    stop = threading.Event()
    sender = threading.Thread(target=keep_sending, args=(opened[1], opened[2], stop), daemon=True)
    sender.start()
    try:
        asyncio.run(shoot(f"port:{port}", "dashboard.svg"))
        asyncio.run(shoot(f"port:{port}", "detail.svg", ("down", "down", "enter")))
        asyncio.run(shoot(f"port:{port}", "dashboard-80x24.svg", size=(80, 24)))  # the terminal most people have
        asyncio.run(shoot_tests("tests.svg"))
        budget_listeners = []
        for count in (12, 5):  # two more destinations, with connections in TIME_WAIT
            budget_listener = socket.socket()
            opened.append(budget_listener)
            budget_listener.bind(("127.0.0.1", 0))
            budget_listener.listen()
            close_client_first(budget_listener, count)
            budget_listeners.append(budget_listener)
        asyncio.run(shoot_budget("budget.svg", [*budget_listeners, listener]))
        asyncio.run(shoot_compare("compare.svg"))
        asyncio.run(shoot_history("history.svg"))
        grouped = [
            (lambda app: None, ("G", "G", "G"), lambda app: app.dashboard.state.grouping == "local_port"),
            (
                lambda app: app.query_one(SocketTable).move_to_key(GroupKey("local_port", closing_port)),
                ("space",),
                lambda app: any(group.collapsed for group in app.dashboard.state.groups),
            ),  # the TIME_WAIT's group
        ]
        asyncio.run(shoot_steps(f"port:{port}", "grouped.svg", grouped))
        overview = [(lambda app: None, ("o",), host_rates_shown)]
        asyncio.run(shoot_steps(f"port:{port}", "overview.svg", overview, size=(80, 24)))
    finally:
        stop.set()
        sender.join(timeout=5)
        for sock in opened:
            sock.close()


if __name__ == "__main__":
    main()
