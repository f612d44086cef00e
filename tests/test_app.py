"""The real dashboard, driven headless through Textual's pilot, polling real loopback sockets."""

from __future__ import annotations

import io
import socket
import struct

from rich.console import Console
from textual.widgets import Input, RichLog, Static

from conntui.poller import Poller
from conntui.sources import open_source
from conntui.ui.app import ConntuiApp
from conntui.ui.detail_pane import DetailPane
from conntui.ui.help_screen import HelpScreen
from conntui.ui.socket_table import SocketTable
from conntui.ui.status_bar import StatusBar
from conntui.ui.test_dialog import TestDialog
from conntui.ui.tests_pane import TestsPane
from tests.conftest import cursor_to, wait_for

SIZE = (150, 40)


def make_app(filter_text: str = "") -> ConntuiApp:
    return ConntuiApp(Poller(open_source(), "tcp"), interval=0.2, filter_text=filter_text)


def row_for(app: ConntuiApp, local_port: int, remote_port: int | None = None):
    for row in app.dashboard.state.visible:
        if row.sock.local_port == local_port and (remote_port is None or row.sock.remote_port == remote_port):
            return row
    return None


def plain(widget: Static) -> str:
    """What a Static shows, as plain text."""
    return plain_renderable(widget.content)


def plain_renderable(renderable) -> str:
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def pane_text(pane: TestsPane) -> str:
    return "\n".join(line.strip.text for line in pane.lines)


def status_text(app: ConntuiApp) -> str:
    return plain(app.query_one(StatusBar))


def reset(sock: socket.socket) -> None:
    """Close with an RST: the socket is gone at once, no TIME_WAIT."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


async def test_connection_appears_marked_new_then_closed_then_removed(sockets) -> None:
    listener = sockets.listener()
    port = listener.getsockname()[1]
    app = make_app(f"port:{port}")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.dashboard.poll_count >= 1 and row_for(app, port))
        client, server = sockets.connection(listener)
        cport = client.getsockname()[1]
        await wait_for(pilot, lambda: row_for(app, cport))
        assert row_for(app, cport).mark == "new"
        assert row_for(app, port, cport).mark == "new"  # the accepted side too
        reset(client)
        reset(server)
        await wait_for(pilot, lambda: row_for(app, cport) and row_for(app, cport).mark == "closed")
        await wait_for(pilot, lambda: row_for(app, cport) is None)
        await pilot.press("l")
        log = app.query_one("#events", RichLog)

        def logged() -> str:
            return "\n".join(line.text for line in log.lines)

        # The log shows every socket's events (other processes' too): wait for ours to be written.
        await wait_for(pilot, lambda: f"closed  tcp4 127.0.0.1:{cport}" in logged())
        assert f"opened  tcp4 127.0.0.1:{cport}" in logged()


async def test_typed_port_filter_hides_other_rows_and_bad_filter_keeps_last_good(sockets) -> None:
    first, second = sockets.listener(), sockets.listener()
    port1, port2 = first.getsockname()[1], second.getsockname()[1]
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: row_for(app, port1) and row_for(app, port2))
        await pilot.press("slash", *f"port:{port1}")
        await wait_for(pilot, lambda: row_for(app, port2) is None)
        assert row_for(app, port1) is not None
        assert all(port1 in (row.sock.local_port, row.sock.remote_port) for row in app.dashboard.state.visible)
        app.query_one("#filter", Input).value = f"port:{port1} bogus:1"  # as if pasted
        await pilot.pause()
        assert "bogus:1" in status_text(app) and "unknown key" in status_text(app)
        assert app.query_one("#filter", Input).has_class("-invalid")
        assert app.dashboard.state.filter.text == f"port:{port1}"  # the last good filter still applies
        assert row_for(app, port1) is not None and row_for(app, port2) is None
        await pilot.press("end", *["backspace"] * len(" bogus:1"))
        await pilot.pause()
        assert "bogus" not in status_text(app)
        await pilot.press("enter")  # leave the box, keep the filter
        assert isinstance(app.focused, SocketTable) and app.dashboard.state.filter.text == f"port:{port1}"
        await pilot.press("escape")  # clear it
        await wait_for(pilot, lambda: row_for(app, port2) is not None)
        assert app.dashboard.state.filter.text == ""


async def test_cursor_stays_on_its_socket_and_header_click_sorts(sockets) -> None:
    listener = sockets.listener()
    port = listener.getsockname()[1]
    for _ in range(3):
        sockets.connection(listener)
    app = make_app(f"port:{port}")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.dashboard.state.visible) == 7)
        table = app.query_one(SocketTable)
        await pilot.press("down", "down")
        chosen = table.cursor_key
        assert table.cursor_row.sock.key == chosen
        extra = sockets.connection(listener)  # new rows arrive and sort in around the cursor
        await wait_for(pilot, lambda: len(app.dashboard.state.visible) == 9)
        assert table.cursor_key == chosen and table.cursor_row.sock.key == chosen
        await pilot.click(SocketTable, offset=(3, 0))  # the "Proto" title
        assert app.dashboard.state.sort_column == "proto"
        await pilot.click(SocketTable, offset=(3, 0))
        assert app.dashboard.state.sort_reverse
        await pilot.press("s")
        assert app.dashboard.state.sort_column == "local_ip"
        assert table.cursor_row.sock.key == chosen
        assert extra


async def test_detail_pane_shows_uniqueness_owners_and_jumps_to_peer(sockets) -> None:
    listener = sockets.listener()
    port = listener.getsockname()[1]
    client, _server = sockets.connection(listener)
    sockets.connection(listener)
    cport = client.getsockname()[1]
    app = make_app(f"port:{port}")
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(SocketTable)
        await cursor_to(pilot, lambda: row_for(app, cport))
        await pilot.press("enter")
        detail = app.query_one(DetailPane)
        assert not detail.has_class("hidden")
        await wait_for(pilot, lambda: "source port" in plain(detail))  # described on a worker thread
        text = plain(detail)
        assert f"source port {cport}" in text and f"destination port {port}" in text
        assert f"same remote endpoint 127.0.0.1:{port}: 2 live sockets — 1 other differing only in local port" in text
        assert "same four-tuple: 1 live socket" in text
        assert "python" in text.lower()
        await pilot.press("g")
        assert table.cursor_row.sock.local_port == port and table.cursor_row.sock.remote_port == cport


async def test_pause_stops_updates_and_help_opens(sockets) -> None:
    listener = sockets.listener()
    port = listener.getsockname()[1]
    app = make_app(f"port:{port}")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: row_for(app, port))
        await pilot.press("p")
        assert "PAUSED" in status_text(app)
        await pilot.pause(0.3)
        polls = app.dashboard.poll_count
        client, _ = sockets.connection(listener)
        await pilot.pause(0.6)
        assert app.dashboard.poll_count == polls and row_for(app, client.getsockname()[1]) is None
        await pilot.press("r")  # refresh now, even while paused
        await wait_for(pilot, lambda: row_for(app, client.getsockname()[1]))
        await pilot.press("p")
        assert "PAUSED" not in status_text(app)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("l")
        assert not app.query_one("#events").has_class("hidden")


async def test_launch_a_test_from_the_dialog_and_see_its_rows_marked_mine() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.dashboard.poll_count >= 1)
        await pilot.press("t")
        assert isinstance(app.screen, TestDialog)
        app.screen.query_one("#hold", Input).value = "2"
        await pilot.press("enter")  # the URL box is focused: enter launches
        assert not isinstance(app.screen, TestDialog)
        await wait_for(
            pilot,
            lambda: (
                app.dashboard.tests.get(1)
                and app.dashboard.tests[1].connections
                and app.dashboard.tests[1].connections[0].four_tuple
            ),
        )
        record = app.dashboard.tests[1].connections[0]
        client = record.four_tuple
        server_side = ("tcp", record.remote_ip, record.remote_port, record.local_ip, record.local_port)
        await wait_for(pilot, lambda: any(row.sock.four_tuple == client for row in app.dashboard.state.visible))
        assert {client, server_side} <= app.dashboard.state.mine
        row = next(row for row in app.dashboard.state.visible if row.sock.four_tuple == client)
        assert row.sock.state == "ESTABLISHED"  # held open so it can be watched
        await pilot.press("slash", *"mine")
        await wait_for(pilot, lambda: app.dashboard.state.filter.text == "mine")
        assert {row.sock.four_tuple for row in app.dashboard.state.visible} <= {client, server_side}
        await wait_for(pilot, lambda: app.dashboard.tests[1].done, timeout=15)
        assert app.dashboard.tests[1].ok
        await wait_for(
            pilot,
            lambda: any(
                row.sock.four_tuple == client and row.sock.state == "TIME_WAIT" for row in app.dashboard.state.visible
            ),
        )  # still marked as mine once the client side moved to TIME_WAIT
        await pilot.press("enter", "escape")  # leave the filter box, clear the filter
        pane = app.query_one(TestsPane)
        assert not pane.has_class("hidden") and list(pane.results) == [1]
        text = pane_text(pane)
        for label in ("2   resolve", "4   connect", "5   send", "6   first byte", "7   close", "HTTP 200"):
            assert label in text
        pane.focus()
        pane.action_jump(next(i for i, line in enumerate(pane.lines) if "connection 1" in line.strip.text))
        await pilot.press("enter")  # enter on a connection's line shows its socket
        assert app.query_one(SocketTable).cursor_row.sock.four_tuple == client


async def test_an_unreachable_target_is_a_failed_step_not_a_crash() -> None:
    with socket.socket() as probe_port:
        probe_port.bind(("127.0.0.1", 0))
        port = probe_port.getsockname()[1]
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("t")
        app.screen.query_one("#url", Input).value = f"http://127.0.0.1:{port}/"
        app.screen.query_one("#hold", Input).value = "0"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.dashboard.tests.get(1) and app.dashboard.tests[1].done)
        assert app.dashboard.tests[1].first_error == "connect: connection refused"
        text = pane_text(app.query_one(TestsPane))
        assert "connection refused" in text and "FAILED" in text
        await pilot.press("t")
        app.screen.query_one("#count", Input).value = "0"
        await pilot.press("enter")
        assert isinstance(app.screen, TestDialog)  # a bad count is said in the dialog
        assert "Count must be" in plain(app.screen.query_one("#dialog-error"))


async def test_a_bad_url_is_said_in_the_dialog_and_the_last_valid_one_is_offered_again() -> None:
    with socket.socket() as probe_port:
        probe_port.bind(("127.0.0.1", 0))
        port = probe_port.getsockname()[1]
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("t")
        app.screen.query_one("#url", Input).value = "ftp://[x]/"
        await pilot.press("enter")
        assert isinstance(app.screen, TestDialog) and not app.dashboard.tests  # nothing launched
        said = plain(app.screen.query_one("#dialog-error"))
        assert said.startswith("URL: invalid URL 'ftp://[x]/': ")  # its [brackets] shown, not taken as markup
        valid = f"127.0.0.1:{port}/x"  # no scheme: http://, as in curl
        app.screen.query_one("#url", Input).value = valid
        app.screen.query_one("#hold", Input).value = "0"
        await pilot.press("enter")
        assert not isinstance(app.screen, TestDialog)
        await wait_for(pilot, lambda: app.dashboard.tests.get(1) and app.dashboard.tests[1].done)
        result = app.dashboard.tests[1]
        assert result.url == f"http://{valid}" and result.first_error == "connect: connection refused"
        text = pane_text(app.query_one(TestsPane))
        assert "literal, no lookup" in text  # an IP literal: no DNS lookup, as in a browser
        await pilot.press("t")
        app.screen.query_one("#url", Input).value = "http://"
        await pilot.press("enter", "escape")  # refused, then cancelled
        await pilot.press("t")
        assert app.screen.query_one("#url", Input).value == valid


async def test_metrics_columns_and_rates_of_a_busy_connection(sockets) -> None:
    listener = sockets.listener()
    port = listener.getsockname()[1]
    client, server = sockets.connection(listener)
    cport = client.getsockname()[1]
    app = make_app(f"port:{port}")
    async with app.run_test(size=(190, 40)) as pilot:
        await wait_for(pilot, lambda: row_for(app, cport))
        table = app.query_one(SocketTable)
        assert "rtt" not in [column.name for column in table.columns]
        await pilot.press("m")
        assert [column.name for column in table.columns][-10:] == [
            "rtt", "retrans", "sent", "received", "tx_rate", "rx_rate", "rate2", "rate10", "rate40", "total"
        ]  # fmt: skip
        header = "".join(segment.text for segment in table.render_line(0))
        assert "RTT ms" in header and "Tx/s" in header
        for _ in range(3):  # traffic between polls: the client's send rate shows
            client.sendall(b"x" * 200_000)
            received = 0
            while received < 200_000:
                received += len(server.recv(65536))
            polls = app.dashboard.poll_count
            await wait_for(pilot, lambda: app.dashboard.poll_count > polls)  # noqa: B023
        row = row_for(app, cport)
        assert row.sock.bytes_sent >= 600_000 and row.tx_rate and row.tx_rate > 0
        assert row.traffic is not None and row.traffic.history
        await cursor_to(pilot, lambda: row_for(app, cport))
        await pilot.press("enter")
        await wait_for(pilot, lambda: "Rates" in plain(app.query_one(DetailPane)))
        text = plain(app.query_one(DetailPane))
        assert "Rates" in text and "tx " in text and "rtt" in text


async def test_every_key_is_in_the_command_palette() -> None:
    app = make_app()
    async with app.run_test(size=SIZE):
        commands = list(app.get_system_commands(app.screen))
        titles = [command.title for command in commands]
        assert len(titles) == len(set(titles))  # no command twice ("Keys" was)
        key_actions = [key_action for key_action in app.key_actions() if key_action.is_command]
        assert {"filter", "pause", "zoom", "help", "sort_next", "metrics", "show_socket"} <= {
            key_action.action for key_action in key_actions
        }  # the App's bindings and those of the table and the tests pane
        for key_action in key_actions:
            assert key_action.title in titles, key_action
        metrics = next(c for c in commands if c.title == "Metrics")
        table = app.query_one(SocketTable)
        shown = table.show_metrics
        metrics.callback()
        assert table.show_metrics is not shown


async def test_the_help_screen_lists_every_key_and_scrolls_to_the_filter_syntax_at_80_columns() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        help_box = app.screen.query_one("#help")
        assert help_box.region.right <= 80
        keys = plain_renderable(app.screen.query_one("#help-keys").content)
        for key_action in app.key_actions():
            for key in key_action.keys:
                assert key in keys
            assert key_action.help in keys or not key_action.is_command
        filter_section = app.screen.query_one("#help-filter")
        assert not help_box.region.contains_region(filter_section.region)  # below the fold at first
        await pilot.press("end")
        await pilot.pause()
        assert help_box.scroll_y > 0
        assert help_box.region.contains_region(app.screen.query_one("#help-filter-title").region)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_metrics_are_shown_by_default_only_when_there_is_room() -> None:
    for width, shown in ((150, False), (220, True)):
        app = make_app()
        async with app.run_test(size=(width, 40)) as pilot:
            await pilot.pause()
            assert app.query_one(SocketTable).show_metrics is shown


async def test_at_80x24_with_every_pane_open_the_table_keeps_five_rows_and_the_status_line_shows(sockets) -> None:
    listener = sockets.listener()
    for _ in range(8):
        sockets.connection(listener)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: len(app.dashboard.state.visible) >= 17)
        await pilot.press("enter", "T", "l")
        await pilot.pause()
        screen = app.screen.region
        table = app.query_one(SocketTable)
        assert table.scrollable_content_region.height - 1 >= 5  # under the column titles
        for selector in ("#detail", "#tests", "#events", "#filter", "#status", "Footer"):
            widget = app.query_one(selector)
            assert widget.region.height >= 1 and screen.contains_region(widget.region), selector
        assert app.query_one(StatusBar).region.bottom <= app.query_one("Footer").region.y
        table.focus()
        await pilot.press("z")  # zoom the table to the whole screen, and back
        assert app.screen.maximized is table
        await pilot.press("z")
        assert app.screen.maximized is None


async def test_the_tests_pane_follows_a_running_test_and_scrolls_by_line() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("t")
        app.screen.query_one("#count", Input).value = "3"
        app.screen.query_one("#hold", Input).value = "1"  # the hold and close steps come a second later
        await pilot.press("enter")
        pane = app.query_one(TestsPane)
        seen_heights: set[int] = set()

        def followed() -> bool:
            seen_heights.add(len(pane.lines))
            height = pane.scrollable_content_region.height
            assert pane.cursor == len(pane.lines) - 1  # on the newest line
            assert int(pane.scroll_y) <= pane.cursor < int(pane.scroll_y) + height  # and in view
            return bool(app.dashboard.tests.get(1) and app.dashboard.tests[1].done)

        await wait_for(pilot, followed, timeout=15)
        followed()
        assert len(seen_heights) > 1 and len(pane.lines) > pane.scrollable_content_region.height
        pane.focus()
        top = int(pane.scroll_y)
        await pilot.press("up")  # the cursor moves one line; the view does not jump
        assert pane.cursor == len(pane.lines) - 2 and int(pane.scroll_y) == top
        await pilot.press(*["up"] * (pane.scrollable_content_region.height - 1))
        assert int(pane.scroll_y) == top - 1  # one line further up scrolls by one line
        await pilot.press("home")
        assert pane.cursor == 0 and pane.scroll_y == 0


async def test_the_palettes_screenshot_is_saved_in_the_current_directory_and_its_path_shown(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "nowhere"))  # no ~/Downloads: where Textual's own would go
    app = make_app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: app.dashboard.poll_count >= 1)
        screenshot = [command for command in app.get_system_commands(app.screen) if command.title == "Screenshot"]
        assert len(screenshot) == 1
        screenshot[0].callback()
        await wait_for(pilot, lambda: list(tmp_path.glob("*.svg")))
        [saved] = tmp_path.glob("*.svg")
        assert saved.read_text().startswith("<svg")
        await wait_for(pilot, lambda: app.screen.query("Toast"))
        shown = " ".join(str(toast.render()) for toast in app.screen.query("Toast"))
        assert f"Screenshot saved to {saved}" in shown


async def test_a_narrow_status_line_drops_whole_parts_rather_than_being_cut() -> None:
    """Two rows at most: the least important parts (the poll's times first) leave whole."""
    from rich.console import Console
    from rich.text import Text

    app = make_app()
    async with app.run_test(size=(44, 24)) as pilot:
        await wait_for(pilot, lambda: app.dashboard.poll_count >= 1)
        status = app.query_one(StatusBar)
        await wait_for(pilot, lambda: status.content_region.width > 0 and "sockets" in status_text(app))
        text = status.content
        assert isinstance(text, Text)
        assert len(text.wrap(Console(), status.content_region.width)) <= 2, status_text(app)  # nothing cut off
        assert "sockets" in text.plain and "poll " not in text.plain
        await pilot.resize_terminal(200, 24)
        await wait_for(pilot, lambda: "poll " in str(status.content) and "TCP opens" in str(status.content))
