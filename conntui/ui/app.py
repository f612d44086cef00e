"""The dashboard App: wires the engine thread, the table state and the widgets together.

The engine (`conntui.engine`) polls and recomputes the table off the UI thread; the App only
swaps in each finished `TableState`, draws, and forwards the user's requests to the engine.
Test connections run on worker threads and report back as `ProbeUpdated` messages.

Nothing that fails off the UI thread ends the dashboard: a failed poll, an error in the engine,
a worker or any other thread, or in drawing a row is shown on the status line and in the event log.
On quit (`q`, `ctrl+c`, SIGTERM, SIGHUP) the engine and the timer stop before Textual removes the
widgets, so nothing reaches a widget that is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

from rich.console import RenderableType
from textual import on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Header, Input, RichLog
from textual.worker import Worker, WorkerState

from conntui.engine import Engine
from conntui.filters import FilterError, parse_filter
from conntui.http.client import Probe
from conntui.http.records import ProbeResult
from conntui.http.server import ServerThread
from conntui.model import FourTuple, Snapshot, peer_tuple
from conntui.poller import Poller, Polling
from conntui.ui.detail_pane import DetailPane
from conntui.ui.help_screen import HelpScreen
from conntui.ui.keys import KeyAction, help_rows, key_actions
from conntui.ui.messages import (
    CursorMoved,
    ErrorOccurred,
    LaunchProbe,
    PollFailed,
    ProbeUpdated,
    SnapshotReady,
    SocketWanted,
    SortRequested,
    StateReady,
)
from conntui.ui.socket_table import SocketTable
from conntui.ui.status_bar import StatusBar
from conntui.ui.test_dialog import TestDialog
from conntui.ui.tests_pane import TestsPane
from conntui.uniqueness import find_peer
from conntui.view import EMPTY_STATE, ConnectionView, Row, TableState

EVENT_LOG_LINES = 2000
# Signals that end the dashboard the way `q` does, with the shell's exit status for them (128 + n).
ENDING_SIGNALS = tuple(
    getattr(signal, name)
    for name in ("SIGTERM", "SIGHUP", "SIGINT", "SIGQUIT", "SIGUSR1", "SIGUSR2")
    if hasattr(signal, name)
)


def _while_running(handler: Callable) -> Callable:
    """Skip `handler` once Textual has begun to tear the app down: its widgets may be gone already."""

    @functools.wraps(handler)
    def guarded(self: App, *args: object) -> None:
        if self.is_running:
            handler(self, *args)

    return guarded


class ConntuiApp(App[None]):
    CSS_PATH = Path(__file__).with_name("conntui.tcss")
    TITLE = "conntui"
    SUB_TITLE = "live connections by four-tuple"
    # The one list of the App's keys: the footer, the `?` screen and the command palette read it
    # (with the bindings of the widgets in KEY_OWNERS). The description names the action in the
    # footer and the palette; the tooltip says what it does.
    BINDINGS = [
        # A priority binding runs before the key reaches the focused widget, so the focus has
        # moved by the time the next key (of a paste, of a fast typist) arrives.
        Binding("slash", "filter", "Filter", priority=True, tooltip="Filter as you type (enter leaves the box)"),
        Binding("escape", "clear_filter", "Clear filter", show=False, tooltip="Clear the filter: show every socket"),
        Binding("p", "pause", "Pause", tooltip="Pause or resume polling"),
        Binding("r", "refresh", "Refresh", tooltip="Poll the sockets now, also while paused"),
        Binding("enter", "detail", "Detail", tooltip="Show or hide the selected socket's details"),
        Binding("g", "peer", "Peer", show=False, tooltip="Jump to the peer socket (the other end on this machine)"),
        Binding("l", "log", "Log", tooltip="Show or hide the event log: opened, closed, changed sockets"),
        Binding("t", "test", "Test", tooltip="Launch test HTTP connections and time their seven steps"),
        Binding("T", "tests_pane", "Tests pane", show=False, tooltip="Show or hide the tests and their timelines"),
        Binding("z", "zoom", "Zoom", tooltip="Zoom the focused pane to the whole screen, and back"),
        Binding("question_mark", "help", "Help", tooltip="Every key, and the filter syntax"),
        Binding("q", "quit", "Quit", tooltip="Quit conntui"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),  # as in top, htop, btop
    ]  # fmt: skip
    KEY_OWNERS = (SocketTable, TestsPane)  # the widgets that declare keys of their own
    # Textual's own palette commands that conntui's zoom replaces.
    REPLACED_COMMANDS = frozenset({"Maximize", "Minimize"})

    def __init__(
        self,
        poller: Polling | None = None,
        *,
        interval: float = 1.0,
        filter_text: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.clock = clock
        self.initial_filter = filter_text
        self.state: TableState = EMPTY_STATE
        self.poll_count = 0
        self.apply_ms = 0.0  # UI-thread time spent taking in the last poll
        self.events: deque[str] = deque(maxlen=EVENT_LOG_LINES)
        self.filter_error = ""
        initial_filter = parse_filter(filter_text)
        self.good_filter = initial_filter.text  # the last filter that parsed
        self.poll_error = ""
        self.paused = False  # as asked of the engine (which applies it in order with other requests)
        self.internal_error = ""  # the last failure of a thread, a worker or a drawing, until another one
        self.engine = Engine(
            poller if poller is not None else Poller(),
            ConnectionView(clock=clock, filter=initial_filter),
            interval=interval,
            on_poll=lambda snapshot, state, events: self.post_message(SnapshotReady(state, events)),
            on_state=lambda state: self.post_message(StateReady(state)),
            on_error=lambda reason: self.post_message(PollFailed(reason)),
        )
        self.tests: dict[int, ProbeResult] = {}
        self.mine: frozenset[FourTuple] = frozenset()  # four-tuples of our test connections
        self.builtin_tests: set[int] = set()
        self.last_test = LaunchProbe("", "single", 1, 3.0)
        self._server: ServerThread | None = None
        self._server_lock = threading.Lock()
        self._detail_version = 0
        self._probe_workers: dict[Worker, int] = {}
        self._ticker: Timer | None = None
        self._previous_excepthook = threading.excepthook

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="panes"):  # what is left between the header and the filter box
            yield SocketTable(self.clock, id="sockets")
            yield DetailPane(id="detail", classes="hidden")
            yield TestsPane(id="tests", classes="hidden")
            yield RichLog(id="events", classes="hidden", max_lines=EVENT_LOG_LINES, wrap=False)
        yield Input(
            self.initial_filter, placeholder="/ to filter: port:8080 state:established proc:nginx …", id="filter"
        )
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(SocketTable).focus()
        self._show_status()
        self._ticker = self.set_interval(1.0, self._tick)
        self.engine.start()
        threading.excepthook = self._thread_failed
        if not self.is_headless:
            loop = asyncio.get_running_loop()
            for signum in ENDING_SIGNALS:
                with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows' loop
                    loop.add_signal_handler(signum, functools.partial(self.exit, return_code=128 + signum))

    def exit(self, result: None = None, return_code: int = 0, message: RenderableType | None = None) -> None:
        """Every way out (`q`, `ctrl+c`, a signal, the palette) stops the producers before the widgets go."""
        self._stop_background()
        super().exit(result, return_code, message)

    def on_unmount(self) -> None:
        self._stop_background()
        threading.excepthook = self._previous_excepthook
        if not self.is_headless:
            loop = asyncio.get_running_loop()
            for signum in ENDING_SIGNALS:
                with contextlib.suppress(NotImplementedError):
                    loop.remove_signal_handler(signum)
        if self._server is not None:
            self._server.stop()

    def _stop_background(self) -> None:
        """Stop the timer and the engine thread: after this, nothing asks the widgets for anything."""
        if self._ticker is not None:
            self._ticker.stop()
        self.engine.stop()

    # -- from the engine ---------------------------------------------------------------------

    @on(SnapshotReady)
    @_while_running
    def _apply_snapshot(self, message: SnapshotReady) -> None:
        started = self.clock()  # the app's clock, so a frozen clock gives a steady picture
        try:
            self.poll_count += 1
            self.poll_error = ""
            if self.poll_count > 1:
                self._log_events(message.events)
            self._show_state(message.state)
        finally:
            self.engine.ack()
            self.apply_ms = (self.clock() - started) * 1000

    @on(StateReady)
    @_while_running
    def _state_ready(self, message: StateReady) -> None:
        self._show_state(message.state)

    @on(PollFailed)
    @_while_running
    def _poll_failed(self, message: PollFailed) -> None:
        if message.reason != self.poll_error:  # a failure that repeats every poll is logged once
            self._log_events([f"error: {message.reason}"])
        self.poll_error = message.reason
        self._show_status()

    @on(ErrorOccurred)
    @_while_running
    def _error_occurred(self, message: ErrorOccurred) -> None:
        self._show_internal_error(message.reason)

    def _show_internal_error(self, reason: str) -> None:
        if reason != self.internal_error:
            self._log_events([f"error: {reason}"])
        self.internal_error = reason
        self._show_status()

    def _thread_failed(self, failure: threading.ExceptHookArgs) -> None:
        """threading.excepthook while the dashboard runs: a thread's uncaught exception is shown, not lost."""
        if failure.exc_type is SystemExit:  # as the default hook: a thread's sys.exit() is no failure
            return
        name = failure.thread.name if failure.thread is not None else "a thread"
        self.post_message(ErrorOccurred(f"thread {name} failed: {failure.exc_value!r}"))

    @on(Worker.StateChanged)
    @_while_running
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        test_id = self._probe_workers.pop(worker, None) if worker.is_finished else None
        if event.state != WorkerState.ERROR:
            return
        if test_id is not None:  # the test's record says it failed, instead of running for ever
            failed = copy.copy(self.tests[test_id])
            failed.error, failed.done = f"internal error: {worker.error!r}", True
            self.tests[test_id] = failed
            self.query_one(TestsPane).show_test(test_id, failed)
        self._show_internal_error(f"{worker.group} worker failed: {worker.error!r}")

    def _show_state(self, state: TableState) -> None:
        self.state = state
        self.query_one(SocketTable).show(state)
        self._refresh_detail()
        self._show_status()

    def _log_events(self, lines: list[str]) -> None:
        """Keep the last events; write them to the log widget only while it is shown."""
        stamp = time.strftime("%H:%M:%S")
        stamped = [f"{stamp} {line}" for line in lines]
        self.events.extend(stamped)
        log = self.query_one("#events", RichLog)
        if not log.has_class("hidden"):
            for line in stamped:
                log.write(line)

    @_while_running
    def _tick(self) -> None:
        self.engine.submit(ConnectionView.expire)
        self.query_one(SocketTable).refresh()  # ages move on

    # -- widgets -----------------------------------------------------------------------------

    def _show_status(self) -> None:
        self.query_one(StatusBar).show(
            self.state,
            paused=self.paused,
            stretched_to=self.engine.stretched_to,
            apply_ms=self.apply_ms,
            error=self.filter_error or self.poll_error or self.internal_error,
        )

    def _refresh_detail(self) -> None:
        """Describe the cursor's socket on a worker thread: counting who shares its tuple is O(n)."""
        detail = self.query(DetailPane)  # none while the app tears down: the table's last CursorMoved may come after
        if not detail or detail.first().has_class("hidden"):
            return
        self._detail_version += 1
        row, snapshot, version = self.query_one(SocketTable).cursor_row, self.state.snapshot, self._detail_version
        self.run_worker(
            partial(self._describe, row, snapshot, version), thread=True, group="detail", exit_on_error=False
        )

    def _describe(self, row: Row | None, snapshot: Snapshot | None, version: int) -> None:
        description = DetailPane.describe(row, snapshot)
        self.call_from_thread(self._show_description, description, version)

    @_while_running
    def _show_description(self, description: RenderableType, version: int) -> None:
        if version == self._detail_version:  # a newer description may already be on its way
            self.query_one(DetailPane).update(description)

    @on(CursorMoved)
    @_while_running
    def _cursor_moved(self, _message: CursorMoved) -> None:
        self._refresh_detail()

    @on(Input.Changed, "#filter")
    @_while_running
    def _filter_changed(self, event: Input.Changed) -> None:
        try:
            new_filter = parse_filter(event.value)
        except FilterError as error:
            self.filter_error = f"{error} — still showing: {self.good_filter or 'everything'}"
            event.input.add_class("-invalid")
        else:
            self.filter_error = ""
            self.good_filter = new_filter.text  # the engine applies it next: the state may lag behind
            event.input.remove_class("-invalid")
            self.engine.submit(lambda view: view.set_filter(new_filter))
        self._show_status()

    @on(SortRequested)
    def _sort_requested(self, message: SortRequested) -> None:
        self.engine.submit(lambda view: view.set_sort(message.column, message.reverse))

    @on(Input.Submitted, "#filter")
    @_while_running
    def _filter_submitted(self) -> None:
        self.query_one(SocketTable).focus()

    # -- actions -----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """'/' typed into a text box (the filter's, a dialog's) is text: the binding steps aside, so
        the key reaches the box in order with the keys around it."""
        return not (action == "filter" and isinstance(self.screen.focused, Input))

    def action_filter(self) -> None:
        self.screen.set_focus(self.query_one("#filter", Input))  # now, not after the next refresh

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        if box.has_focus and box.value.strip() and not self.filter_error:
            self.query_one(SocketTable).focus()  # leave the box, keep the filter
            return
        box.value = ""  # fires Input.Changed, which clears the filter
        self.query_one(SocketTable).focus()

    def action_pause(self) -> None:
        self.paused = not self.paused
        self.engine.pause(self.paused)
        self._show_status()

    def action_refresh(self) -> None:
        self.engine.refresh()

    def action_detail(self) -> None:
        self.query_one(DetailPane).toggle_class("hidden")
        self._refresh_detail()

    def action_log(self) -> None:
        log = self.query_one("#events", RichLog)
        log.toggle_class("hidden")
        if not log.has_class("hidden"):
            log.clear()
            for line in self.events:
                log.write(line)

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        palette_key = self.get_key_display(Binding(self.COMMAND_PALETTE_BINDING, "command_palette"))
        rows = help_rows(self.key_actions())
        self.push_screen(HelpScreen([*rows, (palette_key, "Command palette: every action by name")]))

    def action_zoom(self) -> None:
        screen = self.screen
        if screen.maximized is not None:
            screen.minimize()
        elif screen.focused is None or not screen.maximize(screen.focused):
            self.notify("Focus a pane to zoom it (the table, the tests, the log).", severity="warning")

    def key_actions(self) -> list[KeyAction]:
        """Every action with its keys: the App's bindings, then those of each widget in KEY_OWNERS."""
        return key_actions(self, [self, *(self.query_one(owner) for owner in self.KEY_OWNERS)])

    def action_peer(self) -> None:
        table = self.query_one(SocketTable)
        row = table.cursor_row
        peer = find_peer(row.sock, self.state.snapshot.sockets) if row and self.state.snapshot else None
        if peer is None:
            self.notify("No peer socket on this machine for this row.", severity="warning")
        elif not table.move_to_key(peer.key):
            self.notify("The peer socket is hidden by the filter.", severity="warning")

    def action_test(self) -> None:
        last = self.last_test
        hint = f"the built-in test server ({self._server.url})" if self._server else "the built-in test server"
        self.push_screen(TestDialog(hint, last.url, last.mode, last.count, last.hold))

    def action_tests_pane(self) -> None:
        """Show the pane with the keyboard in it (its lines move with the keys), or hide it."""
        pane = self.query_one(TestsPane)
        pane.toggle_class("hidden")
        if not pane.has_class("hidden"):
            pane.focus()
        elif self.screen.focused is None or pane.has_focus:
            self.query_one(SocketTable).focus()

    # -- test connections --------------------------------------------------------------------

    @on(LaunchProbe)
    def _launch_probe(self, message: LaunchProbe) -> None:
        self.last_test = message
        test_id = len(self.tests) + 1
        builtin = not message.url or message.url.startswith("/")
        self.tests[test_id] = ProbeResult(message.url or "(built-in test server)", message.mode, message.count)
        if builtin:
            self.builtin_tests.add(test_id)
        pane = self.query_one(TestsPane)
        pane.remove_class("hidden")
        pane.show_test(test_id, self.tests[test_id])
        worker = self.run_worker(
            partial(self._run_probe, test_id, message, builtin), thread=True, group="probes", exit_on_error=False
        )
        self._probe_workers[worker] = test_id

    def _run_probe(self, test_id: int, request: LaunchProbe, builtin: bool) -> None:
        """On a worker thread: the probe runs on its own event loop, reporting every step."""
        url = request.url
        if builtin:
            try:
                url = self._builtin_server_url().rstrip("/") + (url or "/")
            except OSError as error:
                failed = ProbeResult("(built-in test server)", request.mode, request.count, error=str(error), done=True)
                self.post_message(ProbeUpdated(test_id, failed))
                return

        def report(result: ProbeResult) -> None:
            self.post_message(ProbeUpdated(test_id, copy.deepcopy(result)))

        probe = Probe(url, request.mode, request.count, hold=request.hold, observer=report)
        asyncio.run(probe.run())

    def _builtin_server_url(self) -> str:
        with self._server_lock:
            if self._server is None:
                server = ServerThread("127.0.0.1", 0)
                server.start()
                self._server = server
            return self._server.url

    @on(ProbeUpdated)
    @_while_running
    def _probe_updated(self, message: ProbeUpdated) -> None:
        self.tests[message.test_id] = message.result
        self.query_one(TestsPane).show_test(message.test_id, message.result)
        mine = set(self.mine)
        for record in message.result.connections:
            if record.four_tuple is not None:
                mine.add(record.four_tuple)
                if message.test_id in self.builtin_tests:  # the server's end is ours too
                    mine.add(peer_tuple(record.four_tuple))
        if mine != self.mine:
            self.mine = frozen = frozenset(mine)
            self.engine.submit(lambda view: view.set_mine(frozen))

    @on(SocketWanted)
    @_while_running
    def _socket_wanted(self, message: SocketWanted) -> None:
        table = self.query_one(SocketTable)
        for four_tuple in message.four_tuples:
            row = self.state.row_with_tuple(four_tuple)
            if row is not None:
                table.move_to_key(row.sock.key)
                table.focus()
                return
        self.notify("This connection's socket is gone (or hidden by the filter); its record stays here.")

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Textual's commands, then one per action of the bindings (a title already there is not repeated)."""
        titles: set[str] = set()
        for command in super().get_system_commands(screen):
            if command.title not in self.REPLACED_COMMANDS:
                titles.add(command.title)
                yield command
        for key_action in self.key_actions():
            if key_action.is_command and key_action.title not in titles:
                titles.add(key_action.title)
                yield SystemCommand(
                    key_action.title, key_action.help, getattr(key_action.owner, f"action_{key_action.action}")
                )
