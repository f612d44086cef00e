"""The engine thread: polls on its own, runs the UI's requests in order, survives failures."""

from __future__ import annotations

import gc
import os
import threading
import time

from conntui.changes import Changes
from conntui.engine import Engine
from conntui.filters import parse_filter
from conntui.model import Snapshot
from conntui.poller import Poller
from conntui.sources import open_source
from conntui.view import ConnectionView


class Recorder:
    def __init__(self) -> None:
        self.polls, self.states, self.errors, self.events = [], [], [], []
        self.changed = threading.Condition()

    def on_poll(self, snapshot, state, events) -> None:  # as Engine calls it: the snapshot, the table, the log
        with self.changed:
            self.polls.append((snapshot, state))
            self.events.append(events)
            self.changed.notify_all()

    def on_state(self, state) -> None:
        with self.changed:
            self.states.append(state)
            self.changed.notify_all()

    def on_error(self, reason) -> None:
        with self.changed:
            self.errors.append(reason)
            self.changed.notify_all()

    def wait(self, condition, timeout: float = 10) -> None:
        with self.changed:
            assert self.changed.wait_for(condition, timeout)


def first_rows_then_owners(engine: Engine, recorder: Recorder) -> None:
    """Wait for a started engine's first two polls, taking each in: the rows, then their owners."""
    for polls in (1, 2):
        recorder.wait(lambda polls=polls: len(recorder.polls) == polls)
        engine.ack()


def make_engine(poller, recorder: Recorder, interval: float = 0.1) -> Engine:
    return Engine(poller, ConnectionView(), interval=interval, on_poll=recorder.on_poll,
                  on_state=recorder.on_state, on_error=recorder.on_error)  # fmt: skip


class OnePort:
    """The real socket source, keeping only the rows of one port: what other processes (or the
    TIME_WAITs of earlier tests) do meanwhile must not count as a change here."""

    def __init__(self, port: int) -> None:
        self.source, self.port = open_source(), port
        self.name, self.includes_owners = self.source.name, self.source.includes_owners

    def list_sockets(self, *args, **kwargs):
        rows = self.source.list_sockets(*args, **kwargs)
        return [row for row in rows if self.port in (row.local_port, row.remote_port)]

    def close(self) -> None:
        self.source.close()


def test_engine_polls_waits_for_ack_and_applies_requests(sockets) -> None:
    listener = sockets.listener()
    port = listener.getsockname()[1]
    recorder = Recorder()
    engine = make_engine(Poller(OnePort(port), "tcp4"), recorder)
    engine.start()
    try:
        recorder.wait(lambda: len(recorder.polls) == 1)
        time.sleep(0.4)  # several intervals: without an ack, no second poll
        assert len(recorder.polls) == 1 and engine.polls == 1
        (first,) = recorder.polls[0][0].sockets
        assert first.pids == () and first.user  # the first rows come as dumped, before their owners...
        engine.ack()
        recorder.wait(lambda: len(recorder.polls) == 2)  # ...which follow at once, from the same dump
        (owned,) = recorder.polls[1][0].sockets
        assert owned.pids == (os.getpid(),) and owned.process and owned.key == first.key
        assert recorder.events[1] == [] and recorder.polls[1][1].visible[0].sock == owned  # owners, not events
        engine.ack()
        time.sleep(0.4)  # polls go on, but one that changed nothing is not published
        assert engine.polls > 2 and len(recorder.polls) == 2
        sockets.connection(listener)
        recorder.wait(lambda: len(recorder.polls) >= 3)
        engine.submit(lambda view: view.set_filter(parse_filter(f"lport:{port} state:listen")))
        recorder.wait(lambda: recorder.states)
        (row,) = recorder.states[-1].visible
        assert row.sock.local_port == port and row.sock.state == "LISTEN"
        engine.submit(lambda view: False)  # "nothing changed": nothing published
        engine.submit(lambda view: view.set_sort("state"))
        recorder.wait(lambda: len(recorder.states) == 2)
        assert recorder.states[-1].sort_column == "state"
    finally:
        engine.stop()


def test_stop_does_not_wait_for_a_slow_poll_and_the_poller_is_closed_when_it_ends(sockets) -> None:
    port = sockets.listener().getsockname()[1]
    dumping, release, closed = threading.Event(), threading.Event(), threading.Event()

    class SlowDump(OnePort):  # a dump that takes as long as 100,000 sockets on a busy machine
        def list_sockets(self, *args, **kwargs):
            dumping.set()
            release.wait(10)
            return super().list_sockets(*args, **kwargs)

        def close(self) -> None:
            assert release.is_set(), "closed while its dump was still running"
            super().close()
            closed.set()

    recorder = Recorder()
    engine = make_engine(Poller(SlowDump(port), "tcp4"), recorder)
    engine.start()
    assert dumping.wait(10)
    started = time.monotonic()
    engine.stop()  # `q` during the slow poll
    assert time.monotonic() - started < 1 and not closed.is_set()
    release.set()
    assert closed.wait(10)  # the thread closes it once its dump is done...
    assert recorder.polls == [] and recorder.errors == []  # ...and shows nobody the poll


class FailingPoller:
    def __init__(self) -> None:
        self.calls = 0

    def poll(self):
        self.calls += 1
        raise PermissionError("access denied (simulated: cannot be produced for real as root)")

    def close(self) -> None:
        pass


def test_poll_errors_are_reported_and_polling_goes_on() -> None:
    recorder = Recorder()
    poller = FailingPoller()
    engine = make_engine(poller, recorder, interval=0.05)
    engine.start()
    try:
        recorder.wait(lambda: len(recorder.errors) >= 2)
        assert "poll failed: access denied" in recorder.errors[0]
        engine.submit(lambda view: 1 / 0)  # a broken request is reported too, and the engine lives on
        recorder.wait(lambda: any("ZeroDivisionError" in error for error in recorder.errors))
        calls = poller.calls
        recorder.wait(lambda: poller.calls > calls)
    finally:
        engine.stop()


def test_the_engine_outlives_a_ui_that_cannot_take_a_poll() -> None:
    """Posting into an app whose event loop has closed raises; the engine says so and polls on."""
    recorder = Recorder()

    def on_poll(snapshot, state, events) -> None:
        if not recorder.errors:
            raise RuntimeError("Event loop is closed")
        recorder.on_poll(snapshot, state, events)

    engine = Engine(Poller(open_source(), "tcp4"), ConnectionView(), interval=0.05, on_poll=on_poll,
                    on_state=recorder.on_state, on_error=recorder.on_error)  # fmt: skip
    engine.start()
    try:
        recorder.wait(lambda: recorder.polls)
        assert recorder.errors == ["internal error in the engine: RuntimeError('Event loop is closed')"]
        assert engine.running
    finally:
        engine.stop()
    assert not engine.running


def test_slow_polls_stretch_the_interval() -> None:
    class SlowPoller(FailingPoller):
        def poll(self):
            time.sleep(0.15)
            return super().poll()

    recorder = Recorder()
    engine = make_engine(SlowPoller(), recorder, interval=0.2)
    engine.start()
    try:
        recorder.wait(lambda: recorder.errors)
        time.sleep(0.05)
        assert engine.stretched_to is not None and engine.stretched_to >= 0.3
    finally:
        engine.stop()


def test_after_poll_sees_every_poll_and_its_failure_does_not_stop_the_table(sockets) -> None:
    listener = sockets.listener()
    port = listener.getsockname()[1]
    recorder, seen = Recorder(), []

    def after_poll(snapshot) -> None:
        with recorder.changed:
            seen.append(snapshot)
            recorder.changed.notify_all()
        if len(seen) == 1:
            raise RuntimeError("the budget failed")

    engine = Engine(Poller(OnePort(port), "tcp4"), ConnectionView(), interval=0.05, on_poll=recorder.on_poll,
                    on_state=recorder.on_state, on_error=recorder.on_error, after_poll=after_poll)  # fmt: skip
    engine.start()
    try:
        recorder.wait(lambda: recorder.polls and recorder.errors)
        assert "the budget failed" in recorder.errors[0] and recorder.polls[0][0] is seen[0]

        def settled() -> bool:  # the first rows, then their owners (published: they changed), then quiet polls
            engine.ack()
            return len(seen) >= len(recorder.polls) + 2

        recorder.wait(settled)
        published = len(recorder.polls)
        assert published <= 2 and all(snapshot.unchanged for snapshot in seen[published:])  # not published, but seen
    finally:
        engine.stop()


def test_a_poll_asked_for_is_published_even_when_nothing_changed(sockets) -> None:
    """`refresh()` (the r key, a lesson waiting for a poll begun after its tests): its caller waits for it."""
    listener = sockets.listener()
    port = listener.getsockname()[1]
    recorder = Recorder()
    engine = Engine(Poller(OnePort(port), "tcp4"), ConnectionView(), interval=3600, on_poll=recorder.on_poll,
                    on_state=recorder.on_state, on_error=recorder.on_error)  # fmt: skip
    engine.start()
    try:

        def quiet() -> bool:  # the first rows, then their owners; then nothing changes
            engine.ack()
            return engine.polls >= 2 and recorder.polls and recorder.polls[-1][0].unchanged is False

        recorder.wait(quiet)
        published = len(recorder.polls)
        engine.ack()
        engine.refresh()
        recorder.wait(lambda: len(recorder.polls) > published)
        assert recorder.polls[-1][0].unchanged  # nothing changed, and still published
    finally:
        engine.stop()


def test_a_poll_that_changed_nothing_hands_on_the_last_polls_rows(sockets) -> None:
    """The same rows, not equal copies: the new ones are freed at once, not left to the collector."""
    listener = sockets.listener()
    sockets.connection(listener)
    poller = Poller(OnePort(listener.getsockname()[1]), "tcp4")
    try:
        first, _ = poller.poll()
        second, changes = poller.poll()
        assert len(first.sockets) == 3 and second.unchanged and not changes
        assert second.sockets is first.sockets
        sockets.connection(listener)
        third, _ = poller.poll()
        assert not third.unchanged and len(third.sockets) == 5
    finally:
        poller.close()


def test_the_first_rows_go_to_the_ui_before_the_budget_sees_them_later_polls_after(sockets) -> None:
    """The first screen waits for nothing else; afterwards the budget sees each poll before the UI
    (a lesson's outcome reads both). The collector is paused while a poll is made and taken in."""
    listener = sockets.listener()
    order: list[str] = []
    recorder = Recorder()

    def on_poll(snapshot, state, events) -> None:
        order.append("ui" if not gc.isenabled() else "ui, collector on")
        recorder.on_poll(snapshot, state, events)

    engine = Engine(Poller(OnePort(listener.getsockname()[1]), "tcp4"), ConnectionView(), interval=0.1,
                    on_poll=on_poll, on_state=recorder.on_state, on_error=recorder.on_error,
                    after_poll=lambda snapshot: order.append("budget"))  # fmt: skip
    engine.start()
    try:
        first_rows_then_owners(engine, recorder)
        sockets.connection(listener)
        recorder.wait(lambda: len(recorder.polls) == 3)
    finally:
        engine.stop()
    assert order[:2] == ["ui", "budget"] and order[2:4] == ["budget", "ui"] and order[-2:] == ["budget", "ui"]
    assert gc.isenabled()


def test_owners_later_a_socket_on_a_reused_fd_goes_out_at_once_and_its_owner_follows(sockets) -> None:
    """A process that closed a connection and opened another on the same fd numbers keeps its fd
    count: the scan from memory cannot place the new sockets. With `owners_later` (the dashboard's
    engine sets it) they go out
    without an owner, and the next poll brings it from the same dump, as an owner, not a change."""
    listener = sockets.listener()
    port = listener.getsockname()[1]
    client, server = sockets.connection(listener)
    poller = Poller(OnePort(port), "tcp4")
    try:
        poller.poll()
        poller.poll()  # every socket's owner known, and which sockets live
        poller.owners_later = True
        numbers = {client.fileno(), server.fileno()}
        client.close()
        server.close()
        new_client, new_server = sockets.connection(listener)
        assert {new_client.fileno(), new_server.fileno()} == numbers  # the same fds, the same count
        new_port = new_client.getsockname()[1]

        def new_ones(snapshot) -> list:  # the new connection's two sockets
            return [sock for sock in snapshot.sockets if new_port in (sock.local_port, sock.remote_port)]

        snapshot, changes = poller.poll()
        assert len(new_ones(snapshot)) == 2 and all(sock.pids == () for sock in new_ones(snapshot))
        assert poller.owners_pending and len(changes.opened) == 2
        snapshot, changes = poller.poll()
        assert {sock.pids for sock in new_ones(snapshot)} == {(os.getpid(),)} and not poller.owners_pending
        assert not changes  # owners arriving, not events
    finally:
        poller.close()


class PollerNeverPlacing(Poller):
    """Says after every poll that owners are still to be looked for, and never finds any: as sockets
    that a rescan cannot place (another user's, or gone meanwhile) do on a busy machine."""

    def poll(self) -> tuple[Snapshot, Changes]:
        snapshot, changes = super().poll()
        self._missing = (list(snapshot.sockets), dict(snapshot.processes), set())
        return snapshot, changes


def test_an_owners_follow_up_that_finds_nothing_is_not_published(sockets) -> None:
    listener = sockets.listener()
    recorder = Recorder()
    engine = make_engine(PollerNeverPlacing(OnePort(listener.getsockname()[1]), "tcp4"), recorder)
    engine.start()
    try:
        first_rows_then_owners(engine, recorder)
        polls = engine.polls
        deadline = time.monotonic() + 10
        while engine.polls < polls + 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert engine.polls >= polls + 4 and len(recorder.polls) == 2  # follow-ups polled, none published
    finally:
        engine.stop()


def test_memory_freed_by_replaced_rows_goes_back_to_the_system() -> None:
    """`release_freed_memory` (after a poll that replaced the table's rows): what the C allocator
    kept of 64 MB freed in 1 KB blocks (rows-sized, below its mmap threshold) is handed back."""
    import sys

    import psutil
    import pytest

    from conntui.collector import _malloc_trim, release_freed_memory

    if not sys.platform.startswith("linux") or _malloc_trim() is None:
        pytest.skip("needs glibc's malloc_trim")
    blocks = [bytes(1024) for _ in range(64 * 1024)]
    keep = bytes(1024)  # allocated last: the freed blocks lie below it, so the heap cannot just shrink
    del blocks
    before = psutil.Process().memory_info().rss
    release_freed_memory()
    assert before - psutil.Process().memory_info().rss > 32 * 2**20
    del keep
