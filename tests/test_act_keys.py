"""The act and save keys in the real dashboard (pilot): `k` kill, `x` close, `e` export, `c` copy,
and the owner's process details in the detail pane. Only our own helper processes and loopback
connections are acted on."""

from __future__ import annotations

import csv
import io
import os
import signal
import socket
from collections.abc import Callable

import pytest
from rich.console import Console
from textual.widgets import Button, Input, Label, OptionList, RadioSet

from conntui import output
from conntui.acting import kill_candidates
from conntui.grouping import GroupKey
from conntui.model import Socket
from conntui.poller import Poller
from conntui.sources import open_source
from conntui.ui.app import ConntuiApp
from conntui.ui.confirm_dialog import ConfirmDialog
from conntui.ui.detail_pane import DetailPane
from conntui.ui.export_dialog import ExportDialog
from conntui.ui.owner_dialog import OwnerDialog
from conntui.ui.socket_table import SocketTable
from conntui.view import Row
from tests.conftest import cursor_to, wait_for
from tests.test_acting import helper  # noqa: F401 - a fixture
from tests.test_app import make_app, plain
from tests.test_grouping import group_by

SIZE = (120, 40)


def messages(app: ConntuiApp) -> str:
    return "\n".join(notification.message for notification in app._notifications)


def dialog_text(app: ConntuiApp) -> str:
    return "\n".join(str(label.content) for label in app.screen.query(Label))


Endpoint = tuple[str, int]


def ends(sock: socket.socket) -> tuple[Endpoint, Endpoint | None]:
    """(local, remote) of one of our sockets; remote None for a listener."""
    try:
        remote = sock.getpeername()[:2]
    except OSError:
        remote = None
    return sock.getsockname()[:2], remote


def row_of(app: ConntuiApp, local: Endpoint, remote: Endpoint | None) -> Row | None:
    """The live row with exactly this four-tuple: other tests on the machine reuse our port numbers
    (a TIME_WAIT of theirs may have our port at one end), and must never be acted on."""
    for row in app.dashboard.state.visible:
        sock = row.sock
        theirs = (sock.remote_ip, sock.remote_port) if sock.remote_ip is not None else None
        if (sock.local_ip, sock.local_port) == local and theirs == remote and row.mark != "closed":
            return row
    return None


def signallable(app: ConntuiApp, current: Callable[[], Socket]) -> set[int]:
    """The owners `k` would offer now: the table's row may already show owners (its rows are updated
    in place by the engine) that the dashboard's snapshot, which `k` reads, is still to bring."""
    return {info.pid for info in kill_candidates(current(), app.dashboard.state.snapshot)}


async def select(app: ConntuiApp, pilot, local: Endpoint, remote: Endpoint | None) -> Callable[[], Socket]:
    """Put the cursor on our socket; returns a reader of its latest row's socket."""
    await cursor_to(pilot, lambda: row_of(app, local, remote))

    def current() -> Socket:
        row = row_of(app, local, remote)
        assert row is not None
        return row.sock

    return current


async def test_k_names_the_process_n_cancels_y_terminates(helper, sockets) -> None:  # noqa: F811
    listener = sockets.listener()
    port = listener.getsockname()[1]
    child = helper("\x1b]0;owned\x07\u202e", pass_fds=[listener.fileno()])
    local, _ = ends(listener)
    listener.close()  # only the helper holds it now
    app = make_app(f"port:{port}")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        current = await select(app, pilot, local, None)
        await wait_for(pilot, lambda: signallable(app, current) == {child.pid})
        await pilot.press("k")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        text = dialog_text(app)
        assert f"pid      {child.pid}" in text and "process  python" in text
        assert "\\x1b]0;owned\\x07\\u202e" in text and "\x1b" not in text  # the hostile argv, escaped
        await pilot.press("n")
        assert not isinstance(app.screen, ConfirmDialog) and child.poll() is None
        await pilot.press("k")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("escape")
        assert child.poll() is None
        await pilot.press("k")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        assert child.wait(timeout=10) == -signal.SIGTERM
        await wait_for(pilot, lambda: f"SIGTERM sent to {child.pid} (python)." in messages(app))


async def test_k_enter_on_sigkill_kills_and_several_owners_ask_which(helper, sockets) -> None:  # noqa: F811
    listener = sockets.listener()
    port = listener.getsockname()[1]
    spared = helper(pass_fds=[listener.fileno()])
    chosen = helper(pass_fds=[listener.fileno()])
    local, _ = ends(listener)
    listener.close()
    app = make_app(f"port:{port}")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        current = await select(app, pilot, local, None)
        await wait_for(pilot, lambda: signallable(app, current) == {spared.pid, chosen.pid})
        await pilot.press("k")
        await wait_for(pilot, lambda: isinstance(app.screen, OwnerDialog))
        options = app.screen.query_one(OptionList)
        assert options.option_count == 2
        options.highlighted = [options.get_option_at_index(i).id for i in range(2)].index(str(chosen.pid))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert f"pid      {chosen.pid}" in dialog_text(app)
        await pilot.press("tab")  # from SIGTERM (the default) to SIGKILL
        assert app.focused is not None and app.focused.id == "SIGKILL"
        await pilot.press("enter")
        assert chosen.wait(timeout=10) == -signal.SIGKILL
        assert spared.poll() is None
        await pilot.press("k")  # escape in the chooser: nothing happens
        await wait_for(pilot, lambda: isinstance(app.screen, (OwnerDialog, ConfirmDialog)))
        await pilot.press("escape")
        assert spared.poll() is None


async def test_x_closes_a_loopback_connection_after_confirming(sockets) -> None:
    client, _server = sockets.connection(sockets.listener())
    cport = client.getsockname()[1]
    app = make_app(f"port:{cport}")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await select(app, pilot, *ends(client))
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert "Close this connection" in dialog_text(app) and f"127.0.0.1:{cport} →" in dialog_text(app)
        await pilot.press("n")
        client.setblocking(False)
        with pytest.raises(BlockingIOError):  # still open
            client.recv(1)
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("enter")  # on the Close button
        await wait_for(pilot, lambda: "Closed tcp" in messages(app) or "Not closed" in messages(app))
        if "CONFIG_INET_DIAG_DESTROY" in messages(app):
            pytest.skip("this kernel cannot close sockets")
        with pytest.raises(ConnectionAbortedError):
            client.recv(1)


async def test_x_on_a_listener_and_on_udp_says_what_closing_does(sockets) -> None:
    listener = sockets.listener()
    port = listener.getsockname()[1]
    udp = sockets.keep(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    udp.bind(("127.0.0.1", 0))
    udp.connect(("127.0.0.1", port))
    app = ConntuiApp(Poller(open_source(), "inet"), interval=0.2, filter_text=f"port:{port}")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await select(app, pilot, ends(listener)[0], None)
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert "Stop this listener" in dialog_text(app) and "it stops listening:" in dialog_text(app)
        await pilot.press("y")
        await wait_for(pilot, lambda: "listener" in messages(app) or "Not closed" in messages(app))
        if "CONFIG_INET_DIAG_DESTROY" in messages(app):
            pytest.skip("this kernel cannot close sockets")
        assert f"Stopped the listener tcp 127.0.0.1:{port}: it no longer listens." in messages(app)
        await select(app, pilot, *ends(udp))
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert "the kernel only disconnects a UDP socket: it stays open, unconnected" in dialog_text(app)
        await pilot.press("y")
        await wait_for(pilot, lambda: "Disconnected udp" in messages(app))
        assert "Closed udp" not in messages(app)


async def test_x_on_a_connection_closed_while_asking_leaves_its_time_wait(sockets) -> None:
    client, server = sockets.connection(sockets.listener())
    local, remote = ends(client)
    app = make_app(f"port:{local[1]}")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await select(app, pilot, local, remote)
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        client.close()  # the owner closes it while the dialog is open: TIME_WAIT
        server.close()
        await wait_for(pilot, lambda: any(row.sock.state == "TIME_WAIT" for row in app.dashboard.state.visible))
        await pilot.press("y")
        await wait_for(pilot, lambda: "Not closed" in messages(app) or "Closed" in messages(app))
        assert "Not closed: already closed by its owner (now TIME_WAIT): not touched." in messages(app)
        await wait_for(pilot, lambda: row_of(app, local, remote) is not None)
        assert row_of(app, local, remote).sock.state == "TIME_WAIT"


async def test_e_saves_the_filtered_view_and_asks_before_replacing(sockets, tmp_path) -> None:
    listener = sockets.listener()
    port = listener.getsockname()[1]
    sockets.connection(listener)
    target = tmp_path / "view.json"
    app = make_app(f"port:{port}")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: len(app.dashboard.state.visible) == 3)
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportDialog))
        assert "Save the 3 sockets shown" in dialog_text(app)
        app.screen.query_one(Input).value = str(target)
        await pilot.press("tab", "right", "space")  # CSV, in the format's radio buttons
        assert app.screen.query_one(RadioSet).pressed_index == 1
        await wait_for(pilot, lambda: app.screen.query_one(Input).value == str(tmp_path / "view.csv"))
        await pilot.press("tab", "enter")  # Save
        saved = tmp_path / "view.csv"
        await wait_for(pilot, lambda: f"Saved 3 sockets to {saved}" in messages(app))
        rows = list(csv.DictReader(io.StringIO(saved.read_text())))
        assert list(rows[0]) == list(output.FIELD_NAMES)
        assert sorted(int(row["local_port"]) for row in rows).count(port) == 2

        await pilot.press("e")  # the same name again: asked first
        await wait_for(pilot, lambda: isinstance(app.screen, ExportDialog))
        app.screen.query_one(Input).value = str(saved)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert "exists: a file" in dialog_text(app)
        saved.write_text("mine")
        await pilot.press("n")  # back to the export dialog, the name kept
        await wait_for(pilot, lambda: isinstance(app.screen, ExportDialog))
        assert app.screen.query_one(Input).value == str(saved) and app.screen.query_one(RadioSet).pressed_index == 1
        assert saved.read_text() == "mine"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_for(pilot, lambda: saved.read_text() != "mine")
        assert saved.read_text().startswith(",".join(output.FIELD_NAMES))

        def asked_again(reason: str, path: str) -> bool:  # the dialog again, its name kept, the reason in it
            screen = app.screen
            if not isinstance(screen, ExportDialog) or screen.query_one(Input).value != path:
                return False
            return f"Not saved: {reason}" in str(screen.query_one("#export-error", Label).content)

        await pilot.press("e")  # a directory that is not there: asked again, the name kept
        await wait_for(pilot, lambda: isinstance(app.screen, ExportDialog))
        nowhere = str(tmp_path / "nowhere" / "v.json")
        app.screen.query_one(Input).value = nowhere
        await pilot.press("enter")
        await wait_for(pilot, lambda: asked_again("no such directory", nowhere))
        app.screen.query_one(Input).value = "/sys/conntui.json"  # where no one may write (sysfs, even root)
        await pilot.press("enter")
        await wait_for(pilot, lambda: asked_again("Permission denied", "/sys/conntui.json"))
        await pilot.press("escape")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["view.csv"]  # no temporary file left


def on_screen(app: ConntuiApp, selector: str) -> list[str]:
    """The widgets matching `selector` in the dialog on top that are not wholly on screen (and
    inside the dialog, whose border would hide them): their ids or texts."""
    dialog = app.screen.query_one("#confirm-dialog, #owner-dialog, #export-dialog")
    inside = dialog.region.shrink(dialog.styles.gutter)
    widgets = app.screen.query(selector)
    assert widgets, f"no {selector} in {dialog}"
    return [
        str(widget.id or widget.render())
        for widget in widgets
        if widget.region.area == 0 or not inside.contains_region(widget.region)
    ]


@pytest.mark.parametrize("size", [(80, 24), (40, 12)])
async def test_every_dialog_keeps_its_buttons_and_keys_on_screen(size, helper, sockets) -> None:  # noqa: F811
    listener = sockets.listener()
    port = listener.getsockname()[1]
    helper("--long " * 60, pass_fds=[listener.fileno()])  # a command line past the 300 shown
    helper(pass_fds=[listener.fileno()])
    client, _server = sockets.connection(listener)
    local, _ = ends(listener)
    listener.close()
    app = make_app(f"port:{port}")
    async with app.run_test(size=size, notifications=True) as pilot:
        current = await select(app, pilot, local, None)
        await wait_for(pilot, lambda: len(kill_candidates(current(), app.dashboard.state.snapshot)) == 2)
        await pilot.press("k")  # two owners: which one?
        await wait_for(pilot, lambda: isinstance(app.screen, OwnerDialog))
        await pilot.pause()
        assert on_screen(app, ".keys") == [] and on_screen(app, "OptionList") == []
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.pause()
        assert len(app.screen.query(Button)) == 3
        assert on_screen(app, "Button") == [] and on_screen(app, ".keys") == []
        await pilot.press("escape")
        await select(app, pilot, *ends(client))
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.pause()
        assert on_screen(app, "Button") == [] and on_screen(app, ".keys") == []
        await pilot.press("escape")
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportDialog))
        await pilot.pause()
        assert on_screen(app, "Button") == [] and on_screen(app, ".keys") == [] and on_screen(app, "Input") == []
        await pilot.press("escape")


async def export_to(app: ConntuiApp, pilot, path: str) -> None:
    """`e`, the path typed, enter."""
    await pilot.press("e")
    await wait_for(pilot, lambda: isinstance(app.screen, ExportDialog))
    app.screen.query_one(Input).value = path
    await pilot.press("enter")


def export_error(app: ConntuiApp) -> str:
    return str(app.screen.query_one("#export-error", Label).content)


async def test_e_with_a_path_too_long_asks_again_and_the_dashboard_lives_on(tmp_path) -> None:
    app = make_app("port:1")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: app.dashboard.state.snapshot is not None)
        for path in (str(tmp_path / ("x" * 300)), str(tmp_path) + "/ab" * 2500):
            await export_to(app, pilot, path)
            await wait_for(pilot, lambda: "File name too long" in export_error(app))
            assert app.screen.query_one(Input).value == path  # kept, to be shortened
            await pilot.press("escape")
        await export_to(app, pilot, "~no-such-user-of-conntui/v.json")
        await wait_for(pilot, lambda: "no such user: ~no-such-user-of-conntui" in export_error(app))
        await pilot.press("escape")
        assert app.is_running and not isinstance(app.screen, ExportDialog)
    assert list(tmp_path.iterdir()) == []


async def test_e_asks_before_replacing_a_dangling_link_and_says_a_directory_is_one(tmp_path) -> None:
    link = tmp_path / "view.json"
    link.symlink_to(tmp_path / "elsewhere.json")
    app = make_app("port:1")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: app.dashboard.state.snapshot is not None)
        await export_to(app, pilot, str(link))
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert "exists: a symbolic link" in dialog_text(app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportDialog))
        await pilot.press("escape")
        assert link.is_symlink() and not (tmp_path / "elsewhere.json").exists()

        await export_to(app, pilot, str(tmp_path))  # a directory: said at once, not asked
        await wait_for(pilot, lambda: "that is a directory" in export_error(app))
        assert app.screen.query_one(Input).value == str(tmp_path)
        await pilot.press("escape")
    assert [path.name for path in tmp_path.iterdir()] == ["view.json"] and not messages(app)


async def test_c_copies_the_row_and_says_what(sockets) -> None:
    client, _server = sockets.connection(sockets.listener())
    cport = client.getsockname()[1]
    app = make_app(f"port:{cport}")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        current = await select(app, pilot, *ends(client))
        await wait_for(pilot, lambda: current().pids)
        await pilot.press("c")
        sock = current()
        expected = f"tcp4 127.0.0.1:{cport} → {sock.remote} ESTABLISHED pid {','.join(map(str, sock.pids))} python"
        assert app.clipboard == expected
        assert f"Copied: {expected}" in messages(app)


async def test_the_detail_pane_describes_the_owner_process_at_80x24(helper, sockets, tmp_path) -> None:  # noqa: F811
    listener = sockets.listener()
    port = listener.getsockname()[1]
    workdir = tmp_path / "cwd\x1b[2J"
    workdir.mkdir()
    child = helper(pass_fds=[listener.fileno()], cwd=workdir)
    local, _ = ends(listener)
    listener.close()
    app = make_app(f"port:{port}")
    async with app.run_test(size=(80, 24)) as pilot:
        current = await select(app, pilot, local, None)
        await wait_for(pilot, lambda: current().pids == (child.pid,))
        await pilot.press("enter")
        detail = app.query_one(DetailPane)
        await wait_for(pilot, lambda: "cpu" in plain(detail) and "cpu …" not in plain(detail))  # a second reading
        text = " ".join(plain(detail).split())
        assert f"Process {child.pid} python cpu " in text and " threads 1 started " in text
        assert f"cwd {tmp_path}/cwd\\x1b[2J" in text and " exe /" in text
        console = Console(width=detail.content_region.width, record=True, file=io.StringIO())
        console.print(detail.content)
        lines = console.export_text().splitlines()
        seen = detail.content_region.height  # what a small pane (80x24) shows without scrolling
        assert seen >= 3 and any(line.startswith("Process") for line in lines[:seen])
        assert any("exe /" in line for line in lines[:seen])


async def test_k_on_conntuis_own_process_warns_that_the_dashboard_will_end(sockets) -> None:
    listener = sockets.listener()  # held by this process: the dashboard's own
    app = make_app(f"port:{listener.getsockname()[1]}")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        current = await select(app, pilot, ends(listener)[0], None)
        await wait_for(pilot, lambda: signallable(app, current) == {os.getpid()})
        await pilot.press("k")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert f"pid      {os.getpid()}" in dialog_text(app)
        assert "Warning: this is conntui itself: the dashboard will end." in dialog_text(app)
        await pilot.press("n")  # never y: that would end this test run
        assert not isinstance(app.screen, ConfirmDialog)


async def test_k_x_c_on_a_groups_header_say_to_open_it(sockets) -> None:
    listener = sockets.listener()
    port = listener.getsockname()[1]
    app = make_app(f"port:{port}")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await select(app, pilot, ends(listener)[0], None)
        await group_by(pilot, "local_port")
        assert app.query_one(SocketTable).move_to_key(GroupKey("local_port", port))
        for key in "kxc":
            await pilot.press(key)
            assert not isinstance(app.screen, ConfirmDialog)
        assert messages(app).count("A group's header: select one of its sockets (space opens or folds the group).") == 3


async def test_k_on_a_socket_no_process_holds_says_so(sockets) -> None:
    listener = sockets.listener()
    client, server = sockets.connection(listener)
    cport = client.getsockname()[1]
    local, remote = ends(client)
    client.close()  # the side that closes first keeps the TIME_WAIT, which no process holds
    server.close()
    app = make_app(f"port:{cport} state:time-wait")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await select(app, pilot, local, remote)
        await pilot.press("k")
        assert "No process to signal: no process holds it." in messages(app)
        assert not isinstance(app.screen, ConfirmDialog)
        await pilot.press("c")
        assert app.clipboard.endswith("TIME_WAIT no owner seen")
