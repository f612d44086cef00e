"""The dashboard's engine thread: polls, and every change to the table's view, off the UI thread.

One thread owns the `Poller` and the `ConnectionView`. It polls every `interval` seconds (or
at once on `refresh()`), and runs the UI's requests (`submit`: filter, sort, expire, …) in
between, in order. After each it hands a new `TableState` (and, after a poll, the
event log's lines) to the UI through the callbacks it was given, so the UI thread never
waits on the OS, nor sorts, filters or formats 100,000 rows.

A poll that changed nothing (the poller says so, and no row has a byte rate to bring down to
zero) is not published: an idle dashboard does no view or drawing work; one asked for with
`refresh()` is, whatever it found (its caller waits for it). The first poll publishes
the sockets as soon as they are dumped, and the next one follows at once with their owners
(`Poller.poll_first_rows`); so does any poll whose owners the scan from memory could not all find
(`Poller.owners_later`): the new state first, the owners looked for after it (published if found).
After publishing a poll it does not poll again until the UI's `ack()` (requests still run):
polls never queue up behind a busy UI. A poll that takes more than half the interval stretches the
interval to twice its duration (`stretched_to`). `after_poll` sees every poll's snapshot, published
or not, on the engine thread (the dashboard's four-tuple budget), before the UI has it (after it, for
the first rows). Nothing ends the thread but
`stop()`: a failed poll, request or callback is reported through `on_error` and the loop goes on.
Knows nothing of Textual.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable

from conntui.changes import event_lines
from conntui.collector import collector_paused, release_freed_memory
from conntui.model import Snapshot
from conntui.poller import Poller, Polling
from conntui.view import ConnectionView, TableState

Command = Callable[[ConnectionView], "bool | None"]  # False: nothing changed, publish nothing
_POLL_NOW, _PAUSE, _RESUME = object(), object(), object()
ERROR_PAUSE = 0.5  # seconds the loop rests after an unexpected error, so a recurring one cannot spin
STOP_WAIT = 0.2  # seconds `stop()` waits for a poll under way: quitting is not held up by a slow poll


class Engine:
    def __init__(
        self,
        poller: Polling,
        view: ConnectionView,
        *,
        interval: float,
        on_poll: Callable[[Snapshot, TableState, list[str]], object],
        on_state: Callable[[TableState], object],
        on_error: Callable[[str], object],
        after_poll: Callable[[Snapshot], object] | None = None,
    ) -> None:
        self.poller, self.view, self.interval = poller, view, interval
        self.on_poll, self.on_state, self.on_error = on_poll, on_state, on_error
        self.after_poll = after_poll  # every poll, changed or not (the budget's rates need each one)
        self.paused = False  # the engine thread's own; the UI asks for a change with pause()
        self.polls = 0  # polls done, published or not (one that changed nothing is not)
        self._failed = False  # the last poll failed or was not taken: publish the next one whatever it is
        self._replaced_rows = False  # the last poll was published: the next one first hands back what it freed
        self.stretched_to: float | None = None
        self._commands: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._held = threading.Event()  # set by `hold`: timed polls wait
        self._acked = threading.Event()
        self._acked.set()
        self._stopping = threading.Event()
        self._closing, self._closed = threading.Lock(), False
        self._next_poll = 0.0
        self._poll_now = False
        self._owners_next = False  # the last poll's rows went out before (some of) their owners: poll at once
        if isinstance(poller, Poller):
            poller.owners_later = True
        self._thread = threading.Thread(target=self._run, name="conntui-engine", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread, and the poller once the thread is done with it; once, however often it is
        called. A poll under way is waited for `STOP_WAIT` at most (100,000 sockets on a busy machine
        take seconds): after that the thread, a daemon, closes the poller when its poll ends, and
        publishes nothing more."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._acked.set()
        self._commands.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout=STOP_WAIT)
        if not self._thread.is_alive():
            self._close_poller()

    def _close_poller(self) -> None:
        with self._closing:
            if not self._closed:
                self._closed = True
                self.poller.close()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def refresh(self) -> None:
        """Poll now (also while paused)."""
        self._commands.put(_POLL_NOW)

    def pause(self, paused: bool) -> None:
        """Stop (or resume) polling, in order with the requests already queued."""
        self._commands.put(_PAUSE if paused else _RESUME)

    def hold(self, held: bool) -> None:
        """Let no timed poll start from now on (an experiment is being timed), or let them again;
        unlike `pause`, at once, not after the requests already queued. `refresh` still polls."""
        if held:
            self._held.set()
        else:
            self._held.clear()
            self._commands.put(None)  # wake the loop: a poll may be due

    def submit(self, command: Command) -> None:
        self._commands.put(command)

    def ack(self) -> None:
        """The UI has taken the last poll's state: the next poll may come."""
        self._acked.set()
        self._commands.put(None)  # wake the loop

    def _run(self) -> None:
        self._next_poll = time.monotonic()
        try:
            while not self._stopping.is_set():
                try:
                    self._step()
                except Exception as error:  # the engine must outlive any bug: say it, rest, go on
                    self._report(f"internal error in the engine: {error!r}")
                    self._stopping.wait(ERROR_PAUSE)
        finally:
            self._close_poller()

    def _step(self) -> None:
        """Poll when due (or asked), else run the next request or wait for one."""
        due = not self.paused and not self._held.is_set() and time.monotonic() >= self._next_poll
        if (due or self._poll_now or self._owners_next) and self._acked.is_set():
            asked, self._poll_now, self._owners_next = self._poll_now, False, False
            started = time.monotonic()
            self._poll(publish=asked)
            took = time.monotonic() - started
            self.stretched_to = 2 * took if took > self.interval / 2 else None
            self._next_poll = time.monotonic() + (self.stretched_to or self.interval)
            return
        idle = self.paused or self._held.is_set() or not self._acked.is_set()
        wait = 0.5 if idle else max(0.0, self._next_poll - time.monotonic())
        try:
            command = self._commands.get(timeout=wait)
        except queue.Empty:
            return
        if command is _POLL_NOW:
            self._poll_now = True
        elif command is _PAUSE or command is _RESUME:
            self.paused = command is _PAUSE
        elif callable(command):
            self._run_command(command)

    def _report(self, reason: str) -> None:
        with contextlib.suppress(Exception):  # the UI cannot take it (it is going away): no one is left to tell
            self.on_error(reason)

    def _run_command(self, command: Command) -> None:
        try:
            changed = command(self.view)
        except Exception as error:  # a bad request must not stop the engine
            self._report(f"internal error: {error!r}")
            return
        if changed is not False:
            self.on_state(self.view.state())

    def _poll(self, *, publish: bool = False) -> None:
        """One poll, published when it changed something (or when asked for: `refresh`, whose
        caller waits for a poll that began after its request). The collector is paused throughout:
        the first poll alone makes 100,000 rows and their `Row`s, none of them in a cycle, and each
        of its passes would walk them all (at 100,000 sockets, the first rows came 40 % later)."""
        with collector_paused():
            self._poll_and_publish(publish)

    def _poll_and_publish(self, publish: bool) -> None:
        poller = self.poller
        first_rows = self.polls == 0 and isinstance(poller, Poller)
        if self._replaced_rows:  # the UI has let go of the rows the last poll replaced
            self._replaced_rows = False
            release_freed_memory()
        try:
            if first_rows and isinstance(poller, Poller):  # the rows first, their owners next
                snapshot, changes = poller.poll_first_rows()
            else:
                snapshot, changes = poller.poll()
            self._owners_next = isinstance(poller, Poller) and poller.owners_pending
        except Exception as error:  # a poll error is shown, never fatal
            self._report(f"poll failed: {error}")
            self._failed = True
            return
        self.polls += 1
        if self._stopping.is_set():  # stopped while it polled: nobody is left to show it to
            return
        if not first_rows:  # before the UI has the poll: what it shows next to the table (a lesson's
            self._after_poll(snapshot)  # outcome) reads both; the first rows come before it
        try:
            if snapshot.unchanged and not self.view.moving and not self._failed and not publish:
                return  # nothing to show: no view work, nothing for the UI to draw
            self._failed = False  # published: the UI clears the failure it shows
            self.view.apply(snapshot, changes)
            self._replaced_rows = True
            self._acked.clear()  # no further poll until the UI has taken this one
            try:
                self.on_poll(snapshot, self.view.state(), event_lines(changes))
            except BaseException:
                self._acked.set()  # the UI never got this poll: waiting for its ack would stop polling for ever
                self._failed = True  # and the next one is published, changed or not
                raise
        finally:
            if first_rows:
                self._after_poll(snapshot)

    def _after_poll(self, snapshot: Snapshot) -> None:
        if self.after_poll is not None:
            try:
                self.after_poll(snapshot)
            except Exception as error:  # the table is still published
                self._report(f"internal error after the poll: {error!r}")
