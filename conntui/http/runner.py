"""The dashboard's test connections, off the UI: one thread per launched test, the built-in server, the records.

`ProbeRunner.launch()` starts a `Probe` (or, for the modes in COMPARE_CHOICES, an experiment of
`conntui.http.experiments`) on a thread of its own (its own event loop); an empty URL, or one
that is only a path, goes to the built-in test server, started on first need on a free loopback
port (one per simulated RTT asked for: a request's `rtt_ms` makes it that far away). The runner
keeps every test's record and the set of four-tuples that are "mine" (the client ends of the
tests' connections, and the server ends too when the server is the built-in one), and reports
both to the UI through the callbacks it was given, from the probe's thread, as `conntui.engine`
does. A failing callback is not the runner's to raise: it goes to `on_error`, and a callback
failing there is dropped. `stop()` cancels the running probes and stops the servers; nothing is
reported after it. Knows nothing of Textual.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from conntui.http.client import Probe
from conntui.http.experiments import EXPERIMENT_RUNNERS, Comparison, TestRecord
from conntui.http.records import COMPARE_CHOICES, ProbeResult
from conntui.http.server import ServerThread
from conntui.model import FourTuple, peer_tuple

BUILTIN_SERVER = "(built-in test server)"
STOP_WAIT = 5.0  # seconds stop() waits, in all, for the probe threads to end after their cancellation
CANCEL_RETRY = 0.05  # seconds between two cancellations of a probe that goes on


@dataclasses.dataclass(frozen=True)
class ProbeRequest:
    """What to test: URL ('' or a path: the built-in server), mode (or a COMPARE_CHOICES experiment),
    count of requests, seconds to hold, and the built-in server's simulated RTT in ms."""

    url: str
    mode: str
    count: int
    hold: float
    rtt_ms: int = 0
    # More URLs of the same origin (paths, for the built-in server): request k takes URL k mod their count.
    more_urls: tuple[str, ...] = ()

    @property
    def urls(self) -> tuple[str, ...]:
        return (self.url, *self.more_urls)

    @property
    def builtin(self) -> bool:
        return not self.url or self.url.startswith("/")


class ProbeRunner:
    def __init__(
        self,
        *,
        on_update: Callable[[int, TestRecord], object],
        on_mine: Callable[[frozenset[FourTuple]], object],
        on_error: Callable[[str], object],
        server_host: str = "127.0.0.1",
    ) -> None:
        self.on_update, self.on_mine, self.on_error = on_update, on_mine, on_error
        self.server_host = server_host
        self.tests: dict[int, TestRecord] = {}  # every test's latest record (a copy the probe no longer changes)
        self.mine: frozenset[FourTuple] = frozenset()
        self._builtin: set[int] = set()
        self._servers: dict[int, ServerThread] = {}  # the built-in servers, by simulated RTT
        self._lock = threading.Lock()  # guards all of the above: probe threads and the UI share them
        self._threads: dict[int, threading.Thread] = {}
        self._tasks: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Task[TestRecord]]] = {}
        self._stopping = threading.Event()

    @property
    def server_url(self) -> str | None:
        """The built-in server's URL once it runs (the one without a simulated RTT)."""
        server = self._servers.get(0)
        return server.url if server is not None else None

    def launch(self, request: ProbeRequest) -> int:
        """Start a test on its own thread and return its number; its first record is reported (on the
        caller's thread) before the thread starts, so before any other."""
        first = _record_of(request)
        with self._lock:
            test_id = len(self.tests) + 1
            self.tests[test_id] = first
            if request.builtin:
                self._builtin.add(test_id)
            thread = threading.Thread(
                target=self._run, args=(test_id, request), name=f"conntui-test-{test_id}", daemon=True
            )
            self._threads[test_id] = thread
        if not self._stopping.is_set():
            self._call(self.on_update, test_id, first)
            thread.start()
        return test_id

    def stop(self) -> None:
        """Cancel the running probes, wait for their threads, stop the built-in server; once is enough."""
        self._stopping.set()
        with self._lock:
            threads = dict(self._threads)
        deadline = time.monotonic() + STOP_WAIT
        for test_id, thread in threads.items():
            # Cancelled again until it ends: asyncio.wait_for (3.11) can lose a cancellation that
            # comes as the awaited step completes, and the probe would go on to its hold.
            while thread.is_alive() and time.monotonic() < deadline:
                with self._lock:
                    running = self._tasks.get(test_id)
                if running is not None:
                    loop, task = running
                    with contextlib.suppress(RuntimeError):  # its loop closed meanwhile: the probe is over
                        loop.call_soon_threadsafe(task.cancel)
                thread.join(CANCEL_RETRY)
        with self._lock:
            servers, self._servers = list(self._servers.values()), {}
        for server in servers:
            server.stop()

    # -- on the probe's thread -------------------------------------------------------------

    def _run(self, test_id: int, request: ProbeRequest) -> None:
        try:
            urls = list(request.urls)
            if request.builtin:
                try:
                    base = self._builtin_server_url(request.rtt_ms).rstrip("/")
                    urls = [base + (url or "/") for url in urls]
                except OSError as error:
                    failed = _record_of(request)
                    failed.error, failed.done = str(error), True
                    self._record(test_id, failed)
                    return
            asyncio.run(self._probe(test_id, self._work(test_id, request, urls)))
        except asyncio.CancelledError:  # stop(): no one is left to tell
            pass
        except Exception as error:  # a bug of ours or a request the probe refuses: the record says so
            self._report(f"test {test_id} failed: {error!r}")  # said before the record closes
            failed = copy.copy(self.tests[test_id])
            failed.error, failed.done = f"internal error: {error!r}", True
            self._record(test_id, failed)
        finally:
            with self._lock:
                self._threads.pop(test_id, None)

    def _work(self, test_id: int, request: ProbeRequest, urls: list[str]) -> Coroutine[Any, Any, TestRecord]:
        """The test's coroutine: an experiment's, or a probe's."""
        observe = self._observer(test_id)
        experiment = COMPARE_CHOICES.get(request.mode)
        if experiment is not None:
            return EXPERIMENT_RUNNERS[experiment](urls, request.count, observer=observe)
        return Probe(urls, request.mode, request.count, hold=request.hold, observer=observe).run()

    async def _probe(self, test_id: int, work: Coroutine[Any, Any, TestRecord]) -> TestRecord:
        task = asyncio.ensure_future(work)
        with self._lock:
            self._tasks[test_id] = (asyncio.get_running_loop(), task)
        if self._stopping.is_set():
            task.cancel()
        try:
            return await task
        finally:
            with self._lock:
                self._tasks.pop(test_id, None)

    def _observer(self, test_id: int) -> Callable[[TestRecord], None]:
        def observe(result: TestRecord) -> None:
            self._record(test_id, copy.deepcopy(result))

        return observe

    def _builtin_server_url(self, rtt_ms: int) -> str:
        with self._lock:
            if self._stopping.is_set():  # stop() may have taken the servers already: start no other
                raise OSError("the test runner is stopping")
            server = self._servers.get(rtt_ms)
            if server is None:
                server = ServerThread(self.server_host, 0, rtt_ms=rtt_ms)
                server.start()
                self._servers[rtt_ms] = server
            return server.url

    def _record(self, test_id: int, result: TestRecord) -> None:
        """Keep the record, add its connections to the mine set, tell the UI (unless stopped).

        The mine set is reported under the lock: of two threads' reports, the larger set comes last."""
        with self._lock:
            self.tests[test_id] = result
            mine = set(self.mine)
            for connection in result.connections:
                if connection.four_tuple is not None:
                    mine.add(connection.four_tuple)
                    if test_id in self._builtin:  # the server's end is ours too
                        mine.add(peer_tuple(connection.four_tuple))
            if mine != self.mine and not self._stopping.is_set():
                self.mine = frozenset(mine)
                self._call(self.on_mine, self.mine)
        if not self._stopping.is_set():
            self._call(self.on_update, test_id, result)

    def _call(self, callback: Callable[..., object], *args: object) -> None:
        try:
            callback(*args)
        except Exception as error:
            self._report(f"internal error in a test's report: {error!r}")

    def _report(self, reason: str) -> None:
        if self._stopping.is_set():
            return
        with contextlib.suppress(Exception):  # the UI cannot take it (it is going away)
            self.on_error(reason)


def _record_of(request: ProbeRequest) -> TestRecord:
    """A test's first record, before it has run."""
    url = request.url or BUILTIN_SERVER
    experiment = COMPARE_CHOICES.get(request.mode)
    if experiment is not None:
        return Comparison(experiment, (url,), request.count)
    return ProbeResult(url, request.mode, request.count)
