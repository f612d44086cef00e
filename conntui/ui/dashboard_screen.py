"""The dashboard screen: the widgets, the ticking timer, and the producers that feed them.

The screen starts the engine (`conntui.engine`: polls and the table's view, off the UI thread)
and owns the test runner (`conntui.http.runner`: the test connections and the built-in server),
takes in what they report as messages, draws, and forwards the user's requests to them. Both
end with the screen: `stop()` (called by the App on every way out, and on the screen's unmount)
stops the timer, the engine and the runner before Textual removes the widgets, and no handler
touches a widget after it.

The kernel's destroy events are read by a `DestroyFeed` thread of their own and handed to the engine,
which folds them, with the polls, into the history of closed connections (`h`); where they are
unavailable the status line says the closes come from polls only, and the event log says why.

Nothing that fails off the UI thread ends the dashboard: a failed poll, an error in the engine,
a test or a worker, or in drawing a row is shown on the status line and in the event log.
"""

from __future__ import annotations

import functools
import time
from collections import deque
from collections.abc import Callable
from functools import partial

from rich.console import RenderableType
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.dom import DOMNode
from textual.timer import Timer
from textual.widgets import Footer, Header, Input, RichLog
from textual.worker import Worker, WorkerState

from conntui.budget import BudgetReport, BudgetTracker, BudgetUnavailable, read_port_space, read_tw_reuse
from conntui.destroy_feed import DestroyFeed, subscribe
from conntui.engine import Engine
from conntui.filters import FilterTyping
from conntui.grouping import Group
from conntui.history import DEFAULT_BOUND, ConnectionHistory
from conntui.http.experiments import TestRecord
from conntui.http.records import COMPARE_CHOICES
from conntui.http.runner import ProbeRequest, ProbeRunner
from conntui.lessons import LESSONS, Lesson, LessonRun
from conntui.model import FourTuple, Snapshot, Socket
from conntui.names import Names
from conntui.poller import Poller, Polling
from conntui.sources.kernel_counts import read_kernel_counts
from conntui.sources.processes import ProcessDetailsCache
from conntui.ui.budget_pane import BudgetPane
from conntui.ui.connection_actions import ConnectionActions
from conntui.ui.detail_pane import DetailPane
from conntui.ui.history_pane import HistoryPane, HistoryTable
from conntui.ui.lessons_screen import LessonsScreen
from conntui.ui.messages import (
    BudgetReady,
    CloseEventsLost,
    CursorMoved,
    DestinationChosen,
    ErrorOccurred,
    GroupToggleRequested,
    PollFailed,
    ProbeUpdated,
    SnapshotReady,
    SocketWanted,
    SortRequested,
    StateReady,
)
from conntui.ui.overview_strip import OverviewStrip
from conntui.ui.socket_table import SocketTable
from conntui.ui.status_bar import StatusBar
from conntui.ui.test_dialog import TestDialog
from conntui.ui.tests_pane import TestsPane
from conntui.uniqueness import find_peer
from conntui.view import EMPTY_STATE, ConnectionView, Row, TableState

EVENT_LOG_LINES = 2000


def _while_live(handler: Callable) -> Callable:
    """Skip `handler` once the screen has stopped or the app has begun to tear down: widgets may be gone."""

    @functools.wraps(handler)
    def guarded(self: DashboardScreen, *args: object) -> None:
        if self.live:
            handler(self, *args)

    return guarded


class DashboardScreen(ConnectionActions):
    # The dashboard's keys: the footer, the `?` screen and the command palette read them (with the
    # App's and those of the widgets in KEY_OWNERS). The description names the action in the
    # footer and the palette; the tooltip says what it does.
    BINDINGS = [
        # A priority binding runs before the key reaches the focused widget, so the focus has
        # moved by the time the next key (of a paste, of a fast typist) arrives.
        Binding("slash", "filter", "Filter", priority=True, tooltip="Filter as you type (enter leaves the box)"),
        Binding("escape", "clear_filter", "Clear filter", show=False, tooltip="Clear the filter: show every socket"),
        Binding("p", "pause", "Pause", tooltip="Pause or resume polling"),
        # show=False: not in the footer, so that at 80 columns it keeps ? and q (help and palette list every key)
        Binding("r", "refresh", "Refresh", show=False, tooltip="Poll the sockets now, also while paused"),
        Binding("enter", "detail", "Detail", tooltip="Show or hide the selected socket's details"),
        Binding("g", "peer", "Peer", show=False, tooltip="Jump to the peer socket (the other end on this machine)"),
        Binding("l", "log", "Log", tooltip="Show or hide the event log: opened, closed, changed sockets"),
        Binding("t", "test", "Test", tooltip="Launch test HTTP connections and time their seven steps"),
        Binding("T", "tests_pane", "Tests pane", show=False, tooltip="Show or hide the tests and their timelines"),
        Binding("z", "zoom", "Zoom", show=False, tooltip="Zoom the focused pane to the whole screen, and back"),
        Binding("n", "service_names", "Services", show=False, tooltip="Service names beside ports (443 https)"),
        Binding("d", "host_names", "DNS", show=False, tooltip="Remote host names by reverse DNS (off: numbers)"),
        Binding("b", "budget", "Budget", show=False,
                tooltip="Show or hide the four-tuple budget: ephemeral ports, TIME_WAIT and ceiling per destination"),
        Binding("k", "kill", "Kill owner", show=False, tooltip="Terminate the selected socket's owner (asks first)"),
        Binding("x", "close_connection", "Close connection", show=False,
                tooltip="Close the selected connection: SOCK_DESTROY, as ss -K (asks first; needs CAP_NET_ADMIN)"),
        Binding("e", "export", "Export", show=False, tooltip="Save the sockets shown to a JSON or CSV file"),
        Binding("c", "copy", "Copy row", show=False,
                tooltip="Copy the selected row (four-tuple, state, owner) to the clipboard"),
        Binding("h", "history", "History", show=False, tooltip="Show or hide the closed connections, newest first, "
                "also those shorter than a poll; its header spells out the status line's counts"),
        Binding("L", "lessons", "Lessons", show=False,
                tooltip="The chapter's lessons, each with an experiment to run and its measured outcome"),
        Binding("G", "grouping", "Group", show=False,
                tooltip="Group by process, remote host, local port, destination, or not (enter or space folds one)"),
        Binding("minus", "fold_all", "Fold all", show=False, tooltip="Collapse every group, or expand them all"),
        Binding("o", "overview", "Overview", show=False,
                tooltip="Show or hide the overview: states, opened/closed, host rates, top processes and remotes"),
    ]  # fmt: skip
    KEY_OWNERS = (SocketTable, TestsPane, BudgetPane)  # the widgets that declare keys of their own

    def __init__(
        self,
        poller: Polling | None = None,
        *,
        interval: float = 1.0,
        filter_text: str = "",
        clock: Callable[[], float] = time.monotonic,
        history: int = DEFAULT_BOUND,
    ) -> None:
        super().__init__()
        self.clock = clock
        self.initial_filter = filter_text
        self.state: TableState = EMPTY_STATE
        self.poll_count = 0
        self.apply_ms = 0.0  # UI-thread time spent taking in the last poll
        self.events: deque[str] = deque(maxlen=EVENT_LOG_LINES)
        self.filter_error = ""
        self.filter_typing = FilterTyping(filter_text)  # the filter shown while one is typed
        self.poll_error = ""
        self.paused = False  # as asked of the engine (which applies it in order with other requests)
        self.lesson_shown = LESSONS[0].key  # the lessons screen opens on the last lesson looked at
        self.timing: set[int] = set()  # experiments running: polls wait, so that they time themselves only
        self.internal_error = ""  # the last failure of a thread, a worker or a drawing, until another one
        self.names = Names()  # service and host names, when the user switches them on
        self._names_version = self.names.version
        self.budget: BudgetReport | None = None  # the engine's latest, once taken in
        self.budget_unavailable = ""
        try:  # the port space is read once: the rates compare polls within the same range
            self.budget_tracker: BudgetTracker | None = BudgetTracker(read_port_space(), read_tw_reuse())
        except BudgetUnavailable as error:
            self.budget_tracker, self.budget_unavailable = None, str(error)
        poller = poller if poller is not None else Poller()
        # Destroy events and the kernel's counters are this machine's: only with a poller of it.
        listener, self.closes_note = subscribe(poller)  # closes_note: why closes come from polls only
        self.closes_lost = False  # the kernel dropped destroy events once (a burst beyond its buffer)
        read_counts = read_kernel_counts if isinstance(poller, Poller) else lambda: None
        closed = ConnectionHistory(history, destroy_events=listener is not None, read_counts=read_counts)
        self.engine = Engine(
            poller,
            ConnectionView(clock=clock, filter=self.filter_typing.shown, names=self.names, history=closed),
            interval=interval,
            on_poll=lambda snapshot, state, events: self.post_message(SnapshotReady(state, events)),
            on_state=lambda state: self.post_message(StateReady(state)),
            on_error=lambda reason: self.post_message(PollFailed(reason)),
            after_poll=self._track_budget,
        )
        self.runner = ProbeRunner(
            on_update=lambda test_id, result: self.post_message(ProbeUpdated(test_id, result)),
            on_mine=self._mine_changed,
            on_error=lambda reason: self.post_message(ErrorOccurred(reason)),
        )
        self.feed = (
            DestroyFeed(
                listener,
                on_batch=self._destroyed,
                on_lost=lambda reason: self.post_message(CloseEventsLost(reason)),
            )
            if listener is not None
            else None
        )
        self.last_test = ProbeRequest("", "single", 1, 3.0)
        self.lesson_runs: dict[str, LessonRun] = {}  # the latest run of each lesson, by its key
        self._wanted_row: FourTuple | None = None  # a lesson's socket, selected once a state shows it
        self._detail_version = 0
        self._last_budget: BudgetReport | None = None  # the engine thread's own
        self.process_details = ProcessDetailsCache()  # for the detail pane, on its worker threads
        self._jump_to: object | None = None  # a socket key to put the cursor on once its group is open
        self._ticker: Timer | None = None
        self._live = False

    @property
    def live(self) -> bool:
        """Mounted, not stopped, and the app not tearing down: every widget is there."""
        return self._live and self.app.is_running

    @property
    def tests(self) -> dict[int, TestRecord]:
        """The tests as the tests pane shows them (the runner's records, once taken in)."""
        return self.query_one(TestsPane).results

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="panes"):  # what is left between the header and the filter box
            yield OverviewStrip(id="overview", classes="hidden")
            yield SocketTable(self.clock, self.names, id="sockets")
            yield DetailPane(id="detail", classes="hidden")
            yield BudgetPane(id="budget", classes="hidden")
            yield TestsPane(id="tests", classes="hidden")
            yield RichLog(id="events", classes="hidden", max_lines=EVENT_LOG_LINES, wrap=False)
            yield HistoryPane(id="history", classes="hidden")
        yield Input(  # not selected on focus: a key typed next adds to the filter, never replaces it
            self.initial_filter,
            placeholder="/ to filter: port:8080 state:established proc:nginx …",
            id="filter",
            select_on_focus=False,
        )
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self._live = True
        self.query_one(SocketTable).focus()
        pane = self.query_one(BudgetPane)
        pane.border_title = "four-tuple budget per destination (enter: filter the table to it)"
        if self.budget_unavailable:
            pane.show_unavailable(self.budget_unavailable)
        self._show_status()
        self._ticker = self.set_interval(1.0, self._tick)
        if self.closes_note:
            self._log_events([f"closes from polls only: {self.closes_note}"])
        self.engine.view.history.start_counting(time.time())  # before the engine thread starts: no race
        self.engine.start()
        if self.feed is not None:
            self.feed.start()

    def on_unmount(self) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the timer, the engine and the runner: after this, nothing asks the widgets for anything."""
        self._live = False
        if self._ticker is not None:
            self._ticker.stop()
        if self.feed is not None:
            self.feed.stop()
        self.engine.stop()
        self.runner.stop()

    def key_owners(self) -> list[DOMNode]:
        """The screen and its widgets that declare keys, in the order the help screen lists them."""
        return [self, *(self.query_one(owner) for owner in self.KEY_OWNERS)]

    # -- from the engine ---------------------------------------------------------------------

    @on(SnapshotReady)
    @_while_live
    def _apply_snapshot(self, message: SnapshotReady) -> None:
        started = self.clock()  # the screen's clock, so a frozen clock gives a steady picture
        try:
            self.poll_count += 1
            self.poll_error = ""
            if self.poll_count > 1:
                self._log_events(message.events)
            self._show_state(message.state)
        finally:
            self.engine.ack()
            self.apply_ms = (self.clock() - started) * 1000

    def _track_budget(self, snapshot: Snapshot) -> None:
        """On the engine thread, after every poll: fold it into the budget; send the lines when they changed."""
        if self.budget_tracker is None:
            return
        report = self.budget_tracker.add(snapshot)
        previous, self._last_budget = self._last_budget, report
        if previous is None or report.lines != previous.lines:
            self.post_message(BudgetReady(report))

    @on(BudgetReady)
    @_while_live
    def _budget_ready(self, message: BudgetReady) -> None:
        self.budget = message.report
        self.query_one(BudgetPane).show(message.report)

    @on(StateReady)
    @_while_live
    def _state_ready(self, message: StateReady) -> None:
        self._show_state(message.state)

    @on(PollFailed)
    @_while_live
    def _poll_failed(self, message: PollFailed) -> None:
        if message.reason != self.poll_error:  # a failure that repeats every poll is logged once
            self._log_events([f"error: {message.reason}"])
        self.poll_error = message.reason
        self._show_status()

    @on(ErrorOccurred)
    @_while_live
    def _error_occurred(self, message: ErrorOccurred) -> None:
        if message.reason != self.internal_error:
            self._log_events([f"error: {message.reason}"])
        self.internal_error = message.reason
        self._show_status()

    @on(CloseEventsLost)
    @_while_live
    def _close_events_lost(self, message: CloseEventsLost) -> None:
        if not self.closes_lost:  # said once: a burst loses many
            self._log_events([f"{message.reason}: the sockets a poll saw get their close from the poll"])
        self.closes_lost = True
        self._show_status()

    def _destroyed(self, sockets: list[Socket], at: float) -> None:
        """On the feed's thread: the engine folds them into the history, in order with the polls."""
        self.engine.submit(lambda view: view.history.destroyed(sockets, at))

    @on(Worker.StateChanged)
    @_while_live
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.post_message(ErrorOccurred(f"{event.worker.group} worker failed: {event.worker.error!r}"))

    def _show_state(self, state: TableState) -> None:
        self.state = state
        table = self.query_one(SocketTable)
        table.show(state)
        jump_to = self._jump_to
        if jump_to is not None and (table.move_to_key(jump_to) or state.group_of_hidden(jump_to) is None):
            self._jump_to = None  # there, or its group open and the socket gone: no later surprise jump
        strip = self.query_one(OverviewStrip)
        if not strip.has_class("hidden"):
            strip.show(state.overview)
        history = self.query_one(HistoryPane)
        if not history.has_class("hidden"):
            history.show(state.history, self.closes_note)
        self._select_wanted_row()
        self._refresh_detail()
        self._show_status()
        self._look_at_lessons()

    def _log_events(self, lines: list[str]) -> None:
        """Keep the last events; write them to the log widget only while it is shown."""
        stamp = time.strftime("%H:%M:%S")
        stamped = [f"{stamp} {line}" for line in lines]
        self.events.extend(stamped)
        log = self.query_one("#events", RichLog)
        if not log.has_class("hidden"):
            for line in stamped:
                log.write(line)

    @_while_live
    def _tick(self) -> None:
        self._look_at_lessons()  # also when no poll changed anything: a lesson's wait is bounded
        self.engine.submit(ConnectionView.expire)
        self.query_one(SocketTable).redraw_changed_cells()  # ages move on (and names that came in are drawn)
        self._refresh_detail()  # while shown: the owner's CPU % and memory move on, even when no socket changed
        if self.names.version != self._names_version:  # a filter may match the names that came in
            self._names_version = self.names.version
            self.engine.submit(ConnectionView.names_changed)

    # -- widgets -----------------------------------------------------------------------------

    def _show_status(self) -> None:
        self.query_one(StatusBar).show(
            self.state,
            paused=self.paused,
            timing=bool(self.timing) and not self.paused,
            stretched_to=self.engine.stretched_to,
            apply_ms=self.apply_ms,
            error=self.filter_error or self.poll_error or self.internal_error,
            closes_note=self.closes_note,
            closes_lost=self.closes_lost,
        )

    def _refresh_detail(self) -> None:
        """Describe the cursor's socket on a worker thread: counting who shares its tuple is O(n)."""
        detail = self.query(DetailPane)  # none while the screen tears down: the table's last CursorMoved may come after
        if not detail or detail.first().has_class("hidden"):
            return
        self._detail_version += 1
        line, snapshot, version = self.query_one(SocketTable).cursor_line, self.state.snapshot, self._detail_version
        describe = partial(self._describe, self.app, line, snapshot, self.budget, version)
        self.run_worker(describe, thread=True, group="detail", exit_on_error=False)

    def _describe(
        self,
        app: App[object],
        line: Row | Group | None,
        snapshot: Snapshot | None,
        budget: BudgetReport | None,
        version: int,
    ) -> None:
        if isinstance(line, Group):
            description = DetailPane.describe_group(line)
        else:
            description = DetailPane.describe(line, snapshot, budget, self.process_details)
        app.call_from_thread(self._show_description, description, version)

    @_while_live
    def _show_description(self, description: RenderableType, version: int) -> None:
        if version == self._detail_version:  # a newer description may already be on its way
            self.query_one(DetailPane).update(description)

    @on(CursorMoved)
    @_while_live
    def _cursor_moved(self, _message: CursorMoved) -> None:
        self._refresh_detail()

    @on(Input.Changed, "#filter")
    @_while_live
    def _filter_changed(self, event: Input.Changed) -> None:
        typing = self.filter_typing
        before = typing.shown
        error = typing.typed(event.value)
        shown = typing.shown
        if error is None:
            self.filter_error = ""
            event.input.remove_class("-invalid")
        else:  # what the table shows comes before the reason: a narrow status line cuts the reason's end
            still = shown.text or "everything"
            self.filter_error = f"bad filter term {error.shown_term!r}, still showing {still}: {error.reason}"
            event.input.add_class("-invalid")
        if shown.text != before.text:  # the engine applies it next: the state may lag behind
            self.engine.submit(lambda view: view.set_filter(shown))
        self._show_status()

    @on(GroupToggleRequested)
    def _group_toggle_requested(self, message: GroupToggleRequested) -> None:
        self.engine.submit(lambda view: view.toggle_group(message.key))

    @on(SortRequested)
    def _sort_requested(self, message: SortRequested) -> None:
        self.engine.submit(lambda view: view.set_sort(message.column, message.reverse))

    @on(Input.Submitted, "#filter")
    @_while_live
    def _filter_submitted(self) -> None:
        self.query_one(SocketTable).focus()

    # -- actions -----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """'/' typed into a text box (the filter's) is text: the binding steps aside, so the key
        reaches the box in order with the keys around it."""
        return not (action == "filter" and isinstance(self.focused, Input))

    def action_filter(self) -> None:
        self.set_focus(self.query_one("#filter", Input))  # now, not after the next refresh

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        if box.has_focus and box.value.strip() and not self.filter_error:
            self.query_one(SocketTable).focus()  # leave the box, keep the filter
            return
        box.value = ""  # fires Input.Changed, which clears the filter
        self.query_one(SocketTable).focus()

    def action_pause(self) -> None:
        self.paused = not self.paused
        self._pause_polls()

    def _pause_polls(self) -> None:
        """Polls stop while the user pauses them, and while an experiment runs: a poll of a busy
        machine in this process would take the CPU from it, and its figures would time the dashboard."""
        self.engine.pause(self.paused)
        self.engine.hold(bool(self.timing))
        self._show_status()

    def action_refresh(self) -> None:
        self.engine.refresh()

    def action_detail(self) -> None:
        table = self.query_one(SocketTable)
        if isinstance(table.cursor_line, Group):  # enter on a group's header folds it
            table.action_toggle_group()
            return
        self.query_one(DetailPane).toggle_class("hidden")
        self._refresh_detail()

    def action_log(self) -> None:
        log = self.query_one("#events", RichLog)
        log.toggle_class("hidden")
        if not log.has_class("hidden"):
            log.clear()
            for line in self.events:
                log.write(line)

    def action_service_names(self) -> None:
        shown = self.names.toggle_services()
        self._names_toggled(f"Service names {'shown' if shown else 'hidden'}.")

    def action_host_names(self) -> None:
        shown = self.names.toggle_hosts()
        note = "looked up in the background; a failed lookup keeps the number" if shown else "numbers only"
        self._names_toggled(f"Remote host names {'shown' if shown else 'hidden'}: {note}.")

    def _names_toggled(self, message: str) -> None:
        self._names_version = self.names.version
        self.engine.submit(ConnectionView.names_changed)
        self.query_one(SocketTable).refresh()
        self.notify(message)

    def action_history(self) -> None:
        """Show the closed connections with the keyboard in them, or hide them."""
        pane = self.query_one(HistoryPane)
        pane.toggle_class("hidden")
        if not pane.has_class("hidden"):
            pane.show(self.state.history, self.closes_note)
            pane.query_one(HistoryTable).focus()
        elif self.focused is None or pane.query_one(HistoryTable).has_focus:
            self.query_one(SocketTable).focus()

    def action_grouping(self) -> None:
        self.engine.submit(ConnectionView.next_grouping)  # the status line says which

    def action_fold_all(self) -> None:
        if not self.state.grouping:
            self.notify("Nothing to fold: G groups the table.", severity="warning")
            return
        self.engine.submit(ConnectionView.toggle_all_groups)

    def action_overview(self) -> None:
        strip = self.query_one(OverviewStrip)
        strip.toggle_class("hidden")
        shown = not strip.has_class("hidden")
        if shown:
            strip.show(self.state.overview)
        self.engine.submit(lambda view: view.show_overview(shown))

    def action_zoom(self) -> None:
        if self.maximized is not None:
            self.minimize()
        elif self.focused is None or not self.maximize(self.focused):
            self.notify("Focus a pane to zoom it (the table, the tests, the log).", severity="warning")

    def action_peer(self) -> None:
        table = self.query_one(SocketTable)
        row = table.cursor_row
        peer = find_peer(row.sock, self.state.snapshot.sockets) if row and self.state.snapshot else None
        if isinstance(table.cursor_line, Group):
            self.notify("A group's header has no peer: move to one of its sockets.", severity="warning")
        elif peer is None:
            self.notify("No peer socket on this machine for this row.", severity="warning")
        elif table.move_to_key(peer.key):
            return
        elif (group := self.state.group_of_hidden(peer.key)) is not None:
            self._jump_to = peer.key  # the cursor goes there once the engine has opened the group
            self.engine.submit(lambda view: view.expand_group(group.key))
            self.notify("The peer socket was in a collapsed group: expanded.")
        else:
            self.notify("The peer socket is hidden by the filter.", severity="warning")

    def action_test(self) -> None:
        url = self.runner.server_url
        hint = f"the built-in test server ({url})" if url else "the built-in test server"
        self.app.push_screen(TestDialog(hint, self.last_test), callback=self._dialog_closed)

    def action_budget(self) -> None:
        """Show the budget view with the keyboard in it, or hide it."""
        pane = self.query_one(BudgetPane)
        pane.toggle_class("hidden")
        if not pane.has_class("hidden"):
            pane.focus()
        elif self.focused is None or pane.has_focus:
            self.query_one(SocketTable).focus()

    @on(DestinationChosen)
    @_while_live
    def _destination_chosen(self, message: DestinationChosen) -> None:
        """Filter the table to the destination's sockets (the budget itself counts every socket)."""
        proto, local_ip, remote_ip, remote_port = message.destination
        self.query_one("#filter", Input).value = f"proto:{proto} lip:{local_ip} rip:{remote_ip} rport:{remote_port}"

    def action_tests_pane(self) -> None:
        """Show the pane with the keyboard in it (its lines move with the keys), or hide it."""
        pane = self.query_one(TestsPane)
        pane.toggle_class("hidden")
        if not pane.has_class("hidden"):
            pane.focus()
        elif self.focused is None or pane.has_focus:
            self.query_one(SocketTable).focus()

    # -- test connections --------------------------------------------------------------------

    def _dialog_closed(self, request: ProbeRequest | None) -> None:
        if request is not None:  # None: cancelled
            self.launch(request)

    def launch(self, request: ProbeRequest) -> None:
        """Start a test and open the tests pane (where its records will come in)."""
        self.last_test = request
        self._start(request)
        self.query_one(TestsPane).remove_class("hidden")

    def _start(self, request: ProbeRequest) -> int:
        """Start a test on the runner; an experiment holds the polls until it is done."""
        test_id = self.runner.launch(request)
        if request.mode in COMPARE_CHOICES:
            self.timing.add(test_id)
            self._pause_polls()
        return test_id

    def _mine_changed(self, mine: frozenset[FourTuple]) -> None:
        """On a probe's thread: the engine marks the rows (its queue keeps the runner's order)."""
        self.engine.submit(lambda view: view.set_mine(mine))

    @on(ProbeUpdated)
    @_while_live
    def _probe_updated(self, message: ProbeUpdated) -> None:
        self.query_one(TestsPane).show_test(message.test_id, message.result)
        if message.test_id in self.timing and message.result.done:
            self.timing.discard(message.test_id)
            self._pause_polls()
            if not self.timing:
                self.engine.refresh()  # its sockets, at once
        for run in self.lesson_runs.values():
            if run.take(message.test_id, message.result, time.time()):  # the clock of a snapshot's taken_at
                self.engine.refresh()  # a poll now: the outcome is read from the kernel's table
                self._lesson_changed(run.lesson.key)

    @on(SocketWanted)
    @_while_live
    def _socket_wanted(self, message: SocketWanted) -> None:
        table = self.query_one(SocketTable)
        for four_tuple in message.four_tuples:
            row = self.state.row_with_tuple(four_tuple)
            if row is not None:
                table.move_to_key(row.sock.key)
                table.focus()
                return
        self.notify("This connection's socket is gone (or hidden by the filter); its record stays here.")

    # -- lessons -------------------------------------------------------------------------------

    def action_lessons(self) -> None:
        if not any(isinstance(screen, LessonsScreen) for screen in self.app.screen_stack):
            self.app.push_screen(LessonsScreen(self, self.lesson_shown))

    def run_lesson(self, lesson: Lesson) -> None:
        """Launch the lesson's tests on the runner (off the UI thread, as `t` does); the outcome is
        measured once they are done, from the polls after them (`_look_at_lessons`)."""
        test_ids = tuple(self._start(request) for request in lesson.requests)
        self.lesson_runs[lesson.key] = LessonRun(lesson, test_ids)

    def _look_at_lessons(self) -> None:
        for run in self.lesson_runs.values():
            if run.outcome is None and run.look(self.state.snapshot, self.budget, time.time()):
                self._point_at(run)
                self._lesson_changed(run.lesson.key)

    def _point_at(self, run: LessonRun) -> None:
        """The dashboard on the lesson's result: filter `mine`, its socket selected, its pane open."""
        assert run.outcome is not None
        self.query_one("#filter", Input).value = "mine"
        self.query_one(f"#{run.lesson.pane}").remove_class("hidden")  # each pane's id is its name
        self._wanted_row = run.outcome.select
        if run.outcome.select is not None and run.lesson.pane == "budget":
            proto, local_ip, _, remote_ip, remote_port = run.outcome.select
            self.query_one(BudgetPane).select_destination((proto, local_ip, remote_ip or "", remote_port or 0))
        self._select_wanted_row()
        self._refresh_detail()

    def _select_wanted_row(self) -> None:
        if self._wanted_row is not None and (row := self.state.row_with_tuple(self._wanted_row)) is not None:
            self.query_one(SocketTable).move_to_key(row.sock.key)
            self._wanted_row = None

    def _lesson_changed(self, key: str) -> None:
        for screen in self.app.screen_stack:
            if isinstance(screen, LessonsScreen):
                screen.lesson_changed(key)
