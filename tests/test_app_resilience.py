"""The dashboard lives through what goes wrong around it, and quits without touching a removed widget.

Real faults where they can be made (a huge pasted number, a thread that raises, a test request the
probe refuses); an injected one only where nothing real produces it on demand, said at the spot.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time

import pytest
from textual.widgets import Input

from conntui.http.records import ProbeResult
from conntui.http.runner import ProbeRequest
from conntui.model import Snapshot, Socket
from conntui.poller import Poller
from conntui.sources import open_source
from conntui.ui.app import ConntuiApp
from conntui.ui.messages import CursorMoved, ProbeUpdated, StateReady
from tests.conftest import wait_for
from tests.test_app import SIZE, make_app, row_for, status_text


async def test_a_pasted_huge_number_is_a_filter_error_and_the_last_good_filter_stays(sockets) -> None:
    listener = sockets.listener()
    port = listener.getsockname()[1]
    app = make_app(f"port:{port}")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: row_for(app, port))
        app.query_one("#filter", Input).value = f"port:{'9' * 4301}"  # past Python's int-string limit
        await pilot.pause()
        assert "out of range" in status_text(app) and "4306 characters" in status_text(app)
        assert app.query_one("#filter", Input).has_class("-invalid")
        polls = app.dashboard.engine.polls
        await wait_for(pilot, lambda: app.dashboard.engine.polls > polls)  # still polling
        assert app.dashboard.state.filter.text == f"port:{port}" and row_for(app, port)


class PollerLosingAccess(Poller):
    """Fails its second poll, as when a permission goes away mid-run (not producible on demand here)."""

    def poll(self) -> tuple[Snapshot, object]:
        self.polls = getattr(self, "polls", 0) + 1
        if self.polls == 2:
            raise PermissionError("access denied (simulated)")
        return super().poll()


async def test_a_failed_poll_is_in_the_status_line_and_the_log_and_polling_goes_on() -> None:
    app = ConntuiApp(PollerLosingAccess(open_source(), "tcp"), interval=0.1)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "poll failed: access denied" in status_text(app))
        assert any("error: poll failed: access denied (simulated)" in line for line in app.dashboard.events)
        await wait_for(pilot, lambda: app.dashboard.poll_count >= 2 and "poll failed" not in status_text(app))


async def test_a_test_connection_whose_worker_fails_is_marked_failed_and_shown() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.dashboard.poll_count >= 1)
        app.dashboard.launch(ProbeRequest("http://127.0.0.1:9/", "carrier-pigeon", 1, 0.0))  # no such mode offered
        await wait_for(pilot, lambda: app.dashboard.tests.get(1) and app.dashboard.tests[1].done)
        assert "internal error" in app.dashboard.tests[1].error and "unknown mode" in app.dashboard.tests[1].error
        assert "test 1 failed" in status_text(app)
        assert any("test 1 failed" in line for line in app.dashboard.events)
        polls = app.dashboard.engine.polls
        await wait_for(pilot, lambda: app.dashboard.engine.polls > polls)


async def test_an_exception_in_any_thread_is_shown_not_lost() -> None:
    def fail() -> None:
        raise RuntimeError("lost in a thread")

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.dashboard.poll_count >= 1)
        thread = threading.Thread(target=fail, name="helper")
        thread.start()
        thread.join()
        await wait_for(pilot, lambda: "lost in a thread" in status_text(app))
        assert any("thread helper failed: RuntimeError('lost in a thread')" in line for line in app.dashboard.events)


class PollerWithARawName(Poller):
    """Adds a socket whose process name is raw bytes: no backend hands one over today, a broken one could."""

    def poll(self) -> tuple[Snapshot, object]:
        snapshot, changes = super().poll()
        raw = Socket("raw", "tcp", 4, "127.0.0.1", 1, None, None, "LISTEN", pids=(1,), process=b"\xffname")
        return dataclasses.replace(snapshot, sockets=(*snapshot.sockets, raw)), changes


async def test_a_row_that_cannot_be_drawn_is_reported_and_the_rest_is_drawn(sockets) -> None:
    listener = sockets.listener()
    port = listener.getsockname()[1]
    app = ConntuiApp(PollerWithARawName(open_source(), "tcp"), interval=0.2, filter_text=f"port:1,{port}")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "a row could not be drawn" in status_text(app))
        assert any("a row could not be drawn: " in line for line in app.dashboard.events)
        assert row_for(app, port) and row_for(app, 1)
        polls = app.dashboard.engine.polls
        await wait_for(pilot, lambda: app.dashboard.engine.polls > polls)


async def test_teardown_while_the_engine_publishes_reaches_no_removed_widget() -> None:
    app = make_app()
    requesting = threading.Event()

    def keep_requesting() -> None:  # into the teardown; bounded: 1,000 requests 1 ms apart
        for _ in range(1000):
            app.dashboard.engine.submit(lambda view: None)  # each one publishes a state: a StateReady
            requesting.set()
            time.sleep(0.001)

    requester = threading.Thread(target=keep_requesting)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.dashboard.poll_count >= 1)
        requester.start()
        await wait_for(pilot, requesting.is_set)
    # leaving run_test re-raised any exception of the app: a NoMatches from a handler after the widgets went
    requester.join()
    # What a message or a timer tick still due at that moment meets, every time rather than by chance:
    app.dashboard._state_ready(StateReady(app.dashboard.state))
    app.dashboard._tick()
    app.dashboard._cursor_moved(CursorMoved())
    app.dashboard._probe_updated(ProbeUpdated(1, ProbeResult("http://127.0.0.1:1/", "single", 1, done=True)))


async def test_quit_while_the_engine_publishes_stops_it_first() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.dashboard.poll_count >= 1)
        for _ in range(500):
            app.dashboard.engine.submit(lambda view: None)
        await pilot.press("q")
        assert not app.dashboard.engine.running  # stopped by the quit itself, before Textual removes the widgets


async def test_quit_during_a_held_test_ends_its_thread_and_the_builtin_server_with_the_dashboard() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.dashboard.poll_count >= 1)
        app.dashboard.launch(ProbeRequest("", "single", 1, 3600.0))  # held for an hour unless ended
        await wait_for(pilot, lambda: app.dashboard.tests.get(1) and app.dashboard.tests[1].connections)
        server_url = app.dashboard.runner.server_url
        await pilot.press("q")
        # ended by the quit itself: no test thread left, the server's port closed
        assert not any(thread.name.startswith("conntui-test") for thread in threading.enumerate())
        assert app.dashboard.runner.server_url is None
        port = int(server_url.rsplit(":", 1)[1].strip("/"))
        with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=5):
            pass


async def test_a_filter_error_names_the_filter_really_shown_and_is_first_in_the_status_line(sockets) -> None:
    listener = sockets.listener()
    port = listener.getsockname()[1]
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.dashboard.poll_count >= 1)
        box = app.query_one("#filter", Input)
        for text in (f"port:{port}", f"port:{port} zz", f"port:{port} zz:"):  # typed fast: no poll between
            box.value = text
        await pilot.pause()
        status = status_text(app)
        # the first of its two rows; `port:P zz` parsed on the way (a bare word matching nothing), and is
        # not kept: the filter from before the wrong term was begun is
        assert status.splitlines()[0].startswith(f"bad filter term 'zz:', still showing port:{port}: ")
        assert " sockets" in status.splitlines()[1]  # the error, cut to its row, leaves the count in sight
        await wait_for(pilot, lambda: app.dashboard.state.filter.text == f"port:{port}")  # what the table shows
        box.value = "bogus:1"  # a wrong filter replacing a good one: the last good one stays
        await pilot.pause()
        assert status_text(app).startswith(f"bad filter term 'bogus:1', still showing port:{port}: unknown key")


async def test_keys_arriving_in_one_burst_land_in_order_slashes_included() -> None:
    from textual import events

    from conntui.ui.test_dialog import TestDialog

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.dashboard.poll_count >= 1)
        burst = "ip:127.0.0.0/8"  # a terminal delivers typed-ahead or pasted keys in one read
        app.post_message(events.Key("slash", "/"))
        for char in burst:
            app.post_message(events.Key("slash" if char == "/" else char, char))
        await pilot.pause(0.3)
        assert app.query_one("#filter", Input).value == burst
        await pilot.press("escape", "escape", "t")
        await wait_for(pilot, lambda: isinstance(app.screen, TestDialog))
        url = "http://127.0.0.1:1/a/b"
        for char in url:
            app.post_message(events.Key("slash" if char == "/" else char, char))
        await pilot.pause(0.3)
        assert app.screen.query_one("#url", Input).value == url


async def test_focusing_the_filter_box_does_not_select_its_text() -> None:
    app = make_app("mine")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.dashboard.poll_count >= 1)
        await pilot.press("slash", "x")  # a key typed next adds to the filter, it does not replace it
        assert app.dashboard.query_one("#filter", Input).value == "minex"


async def test_at_80_columns_the_footer_still_shows_help_and_quit() -> None:
    from textual.widgets._footer import FooterKey

    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.dashboard.poll_count >= 2)  # the first rows, then their owners

        def footer() -> dict:
            return {key.key: key.region for key in app.screen.query(FooterKey)}

        await wait_for(
            pilot, lambda: all(key in footer() and footer()[key].right > 0 for key in ("question_mark", "q"))
        )
        keys = footer()
        for key in ("question_mark", "q"):
            assert key in keys and 0 < keys[key].right <= 80, keys.get(key)
