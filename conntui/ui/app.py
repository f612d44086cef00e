"""The dashboard App: wires the poll thread, the pure view and the widgets together.

Polling runs on a plain thread: the UI thread never waits on the OS. The thread posts a
`SnapshotReady` and waits until the UI has applied it before it sleeps again, so polls never
queue up behind a busy UI. When a poll takes more than half the interval, the interval
stretches (and the status line says so).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from textual import on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, RichLog

from conntui.changes import event_lines
from conntui.filters import FilterError, parse_filter
from conntui.poller import Poller, Polling
from conntui.ui.detail_pane import DetailPane
from conntui.ui.help_screen import HelpScreen
from conntui.ui.messages import CursorMoved, PollFailed, SnapshotReady
from conntui.ui.socket_table import SocketTable
from conntui.ui.status_bar import StatusBar
from conntui.uniqueness import find_peer
from conntui.view import ConnectionView

NOT_ROOT_HINT = "not root: other users' processes are hidden"


class ConntuiApp(App[None]):
    CSS_PATH = Path(__file__).with_name("conntui.tcss")
    TITLE = "conntui"
    SUB_TITLE = "live connections by four-tuple"
    BINDINGS = [
        Binding("slash", "filter", "Filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("p", "pause", "Pause"),
        Binding("r", "refresh", "Refresh"),
        Binding("enter", "detail", "Detail"),
        Binding("g", "peer", "Peer", show=False),
        Binding("l", "log", "Log"),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]
    ACTIONS = (  # title, help, action: for the command palette
        ("Filter", "Filter the table as you type", "filter"),
        ("Clear filter", "Show every socket again", "clear_filter"),
        ("Pause / resume", "Stop or restart polling", "pause"),
        ("Refresh now", "Poll the sockets now", "refresh"),
        ("Detail pane", "Show or hide the selected socket's details", "detail"),
        ("Jump to peer", "Move to the other end of this connection", "peer"),
        ("Event log", "Show or hide the log of opened/closed/changed sockets", "log"),
        ("Keys", "Show every key binding", "help"),
    )

    def __init__(
        self,
        poller: Polling | None = None,
        *,
        interval: float = 1.0,
        filter_text: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.poller = poller if poller is not None else Poller()
        self.interval = interval
        self.view = ConnectionView(clock=clock, filter=parse_filter(filter_text))
        self.initial_filter = filter_text
        self.paused = False
        self.stretched_to: float | None = None
        self.poll_count = 0
        self.filter_error = ""
        self.poll_error = ""
        self.hint = NOT_ROOT_HINT if hasattr(os, "geteuid") and os.geteuid() != 0 else ""
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._applied = threading.Event()
        self._poll_thread = threading.Thread(target=self._poll_loop, name="conntui-poll", daemon=True)

    def compose(self) -> ComposeResult:
        yield Header()
        yield SocketTable(self.view, id="sockets")
        yield DetailPane(id="detail", classes="hidden")
        yield RichLog(id="events", classes="hidden", max_lines=2000, wrap=False)
        yield Input(
            self.initial_filter,
            placeholder="filter: port:8080 state:established proc:nginx …",
            id="filter",
            classes="" if self.initial_filter else "hidden",
        )
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(SocketTable).focus()
        self._show_status()
        self.set_interval(0.5, self._tick)
        self._poll_thread.start()

    def on_unmount(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._poll_thread.join(timeout=5)
        self.poller.close()

    # -- the poll thread ---------------------------------------------------------------------

    def _poll_loop(self) -> None:
        while not self._stopping.is_set():
            if not self.paused or self._wake.is_set():
                self._wake.clear()
                started = time.perf_counter()
                try:
                    snapshot, changes = self.poller.poll()
                    message = SnapshotReady(snapshot, changes)
                except Exception as error:  # a poll error is shown, never fatal
                    message = PollFailed(f"poll failed: {error}")
                self.post_message(message)
                while not self._applied.wait(0.1):  # back-pressure: one poll in flight at most
                    if self._stopping.is_set():
                        return
                self._applied.clear()
                took = time.perf_counter() - started
                self.stretched_to = 2 * took if took > self.interval / 2 else None
            self._wake.wait(self.stretched_to or self.interval)

    @on(SnapshotReady)
    def _apply_snapshot(self, message: SnapshotReady) -> None:
        try:
            self.view.apply(message.snapshot, message.changes)
            self.poll_count += 1
            self.poll_error = ""
            self.query_one(SocketTable).data_changed()
            log = self.query_one("#events", RichLog)
            stamp = time.strftime("%H:%M:%S")
            for line in event_lines(message.changes) if self.poll_count > 1 else ():
                log.write(f"{stamp} {line}")
            self._refresh_detail()
            self._show_status()
        finally:
            self._applied.set()

    @on(PollFailed)
    def _poll_failed(self, message: PollFailed) -> None:
        self.poll_error = message.reason
        self._show_status()
        self._applied.set()

    def _tick(self) -> None:
        table = self.query_one(SocketTable)
        if self.view.expire():
            table.data_changed()
            self._show_status()
        table.refresh()  # ages move on

    # -- widgets -----------------------------------------------------------------------------

    def _show_status(self) -> None:
        self.query_one(StatusBar).show(
            self.view.snapshot,
            len(self.view.visible),
            paused=self.paused,
            stretched_to=self.stretched_to,
            hint=self.hint,
            error=self.filter_error or self.poll_error,
        )

    def _refresh_detail(self) -> None:
        detail = self.query_one(DetailPane)
        if not detail.has_class("hidden"):
            row = self.query_one(SocketTable).cursor_row
            detail.show_socket(row.sock if row else None, self.view.snapshot)

    @on(CursorMoved)
    def _cursor_moved(self, _message: CursorMoved) -> None:
        self._refresh_detail()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        try:
            new_filter = parse_filter(event.value)
        except FilterError as error:
            self.filter_error = f"{error} — still showing: {self.view.filter.text or 'everything'}"
            event.input.add_class("-invalid")
        else:
            self.filter_error = ""
            event.input.remove_class("-invalid")
            self.view.set_filter(new_filter)
            self.query_one(SocketTable).data_changed()
        self._show_status()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        self.query_one(SocketTable).focus()

    # -- actions -----------------------------------------------------------------------------

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.remove_class("hidden")
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        if box.has_focus and self.view.filter.text == box.value.strip():
            self.query_one(SocketTable).focus()  # leave the box, keep the filter
            return
        box.value = ""  # fires Input.Changed, which clears the filter
        box.add_class("hidden")
        self.query_one(SocketTable).focus()

    def action_pause(self) -> None:
        self.paused = not self.paused
        self._show_status()

    def action_refresh(self) -> None:
        self._wake.set()

    def action_detail(self) -> None:
        self.query_one(DetailPane).toggle_class("hidden")
        self._refresh_detail()

    def action_log(self) -> None:
        self.query_one("#events", RichLog).toggle_class("hidden")

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_peer(self) -> None:
        table = self.query_one(SocketTable)
        row = table.cursor_row
        peer = find_peer(row.sock, self.view.snapshot.sockets) if row and self.view.snapshot else None
        if peer is None:
            self.notify("No peer socket on this machine for this row.", severity="warning")
        elif not table.move_to_key(peer.key):
            self.notify("The peer socket is hidden by the filter.", severity="warning")

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for title, help_text, action in self.ACTIONS:
            yield SystemCommand(title, help_text, getattr(self, f"action_{action}"))
