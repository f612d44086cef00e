"""The test runner without the UI: real probes on loopback, against the built-in server and a refused port."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from conntui.http.records import ProbeResult
from conntui.http.runner import ProbeRequest, ProbeRunner
from conntui.model import FourTuple, peer_tuple

WAIT = 15.0  # seconds: a bound on a loopback test, never a speed assertion


class Reports:
    """What the runner told its UI, in the order it told it."""

    def __init__(self) -> None:
        self.updates: list[tuple[int, ProbeResult]] = []
        self.mine: list[frozenset[FourTuple]] = []
        self.errors: list[str] = []
        self.done = threading.Event()

    def on_update(self, test_id: int, result: ProbeResult) -> None:
        self.updates.append((test_id, result))
        if result.done:
            self.done.set()

    def runner(self, **callbacks) -> ProbeRunner:
        chosen = {"on_update": self.on_update, "on_mine": self.mine.append, "on_error": self.errors.append}
        return ProbeRunner(**(chosen | callbacks))


@pytest.fixture
def reports() -> Iterator[Reports]:
    yield Reports()


def refused_url() -> str:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{closed.getsockname()[1]}/"


def test_a_test_of_the_builtin_server_marks_both_ends_mine_and_stop_ends_the_server(reports: Reports) -> None:
    runner = reports.runner()
    try:
        test_id = runner.launch(ProbeRequest("/", "keepalive", 2, 0.0))
        assert test_id == 1 and 1 in runner.tests  # its record is there as soon as it is launched
        assert reports.done.wait(WAIT)
        result = runner.tests[1]
        assert result.ok and result.url.startswith("http://127.0.0.1:") and runner.server_url
        client = result.connections[0].four_tuple
        assert client is not None and runner.mine == {client, peer_tuple(client)}
        assert reports.mine[-1] == runner.mine and reports.updates[-1] == (1, result) and not reports.errors
    finally:
        runner.stop()
    assert runner.server_url is None
    with pytest.raises(ConnectionRefusedError), socket.create_connection((client[3], client[4]), timeout=5):
        pass  # the server's port is closed: stop() ended it


def test_a_refused_port_is_a_failed_record_and_no_mine_socket(reports: Reports) -> None:
    runner = reports.runner()
    try:
        runner.launch(ProbeRequest(refused_url(), "single", 1, 0.0))
        assert reports.done.wait(WAIT)
        assert runner.tests[1].first_error == "connect: connection refused"
        assert runner.server_url is None and runner.mine == frozenset() and not reports.errors
    finally:
        runner.stop()


def test_a_request_the_probe_refuses_fails_its_record_and_is_reported_not_raised(reports: Reports) -> None:
    runner = reports.runner()
    try:
        runner.launch(ProbeRequest(refused_url(), "carrier-pigeon", 1, 0.0))  # the dialog offers no such mode
        assert reports.done.wait(WAIT)
        assert runner.tests[1].done and "unknown mode" in (runner.tests[1].error or "")
        assert len(reports.errors) == 1 and reports.errors[0].startswith('test 1 failed: ValueError("unknown mode')
    finally:
        runner.stop()


def test_a_failing_callback_goes_to_on_error_and_the_test_runs_on(reports: Reports) -> None:
    def broken_update(test_id: int, result: ProbeResult) -> None:
        raise RuntimeError("the UI is gone")

    runner = reports.runner(on_update=broken_update)
    try:
        runner.launch(ProbeRequest("/", "single", 1, 0.0))
        threads = [thread for thread in threading.enumerate() if thread.name == "conntui-test-1"]
        for thread in threads:
            thread.join(WAIT)
        assert runner.tests[1].done and runner.tests[1].ok
        assert reports.errors and all("RuntimeError('the UI is gone')" in error for error in reports.errors)
    finally:
        runner.stop()


def test_stop_cancels_a_held_connection_and_reports_nothing_after(reports: Reports) -> None:
    runner = reports.runner()
    held = threading.Event()

    def on_update(test_id: int, result: ProbeResult) -> None:
        reports.on_update(test_id, result)
        if result.connections and result.connections[0].four_tuple:
            held.set()

    runner.on_update = on_update
    runner.launch(ProbeRequest("/", "single", 1, 3600.0))  # held for an hour unless stopped
    assert held.wait(WAIT)
    runner.stop()
    assert not any(thread.name == "conntui-test-1" for thread in threading.enumerate())
    told = len(reports.updates)
    runner.stop()  # twice is harmless
    assert len(reports.updates) == told and not reports.done.is_set()
