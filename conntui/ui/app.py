"""The dashboard App: the dashboard screen, the keys that are the App's own, the palette, the signals.

The dashboard itself (widgets, timer, the engine and the test runner) is `DashboardScreen`; the
App makes it its first screen and, on every way out (`q`, `ctrl+c`, SIGTERM, SIGHUP, the palette),
stops its producers before Textual removes the widgets, so nothing reaches a widget that is gone.
While the dashboard runs, a thread's uncaught exception is shown on its status line, not lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from rich.console import RenderableType
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.driver import Driver
from textual.screen import Screen

from conntui.history import DEFAULT_BOUND
from conntui.poller import Polling
from conntui.ui.dashboard_screen import DashboardScreen
from conntui.ui.help_screen import HelpScreen
from conntui.ui.keys import KeyAction, help_rows, key_actions
from conntui.ui.messages import ErrorOccurred
from conntui.ui.terminal import outliving_its_terminal

# Signals that end the dashboard the way `q` does, with the shell's exit status for them (128 + n).
ENDING_SIGNALS = tuple(
    getattr(signal, name)
    for name in ("SIGTERM", "SIGHUP", "SIGINT", "SIGQUIT", "SIGUSR1", "SIGUSR2")
    if hasattr(signal, name)
)


class ConntuiApp(App[None]):
    CSS_PATH = Path(__file__).with_name("conntui.tcss")
    TITLE = "conntui"
    SUB_TITLE = "live connections by four-tuple"
    # The keys that work on every screen; the dashboard's are DashboardScreen.BINDINGS.
    BINDINGS = [
        Binding("question_mark", "help", "Help", tooltip="Every key, and the filter syntax"),
        Binding("q", "quit", "Quit", tooltip="Quit conntui"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),  # as in top, htop, btop
    ]  # fmt: skip
    # Textual's own palette commands that conntui replaces: its zoom, its screenshot (saved to the
    # current directory, where Textual's goes to ~/Downloads and fails where there is none).
    REPLACED_COMMANDS = frozenset({"Maximize", "Minimize", "Screenshot"})

    def __init__(
        self,
        poller: Polling | None = None,
        *,
        interval: float = 1.0,
        filter_text: str = "",
        clock: Callable[[], float] = time.monotonic,
        history: int = DEFAULT_BOUND,
        lessons: bool = False,
    ) -> None:
        """`lessons`: open on the lessons screen (`conntui learn`), the dashboard under it."""
        super().__init__()
        self.dashboard = DashboardScreen(
            poller, interval=interval, filter_text=filter_text, clock=clock, history=history
        )
        self.start_on_lessons = lessons
        self._previous_excepthook = threading.excepthook

    def get_default_screen(self) -> Screen:
        return self.dashboard

    def get_driver_class(self) -> type[Driver]:
        """Textual's driver for this platform, made not to hang when the terminal goes away."""
        return outliving_its_terminal(super().get_driver_class())

    def on_mount(self) -> None:
        threading.excepthook = self._thread_failed
        if self.start_on_lessons:
            self.dashboard.action_lessons()
        if not self.is_headless:
            loop = asyncio.get_running_loop()
            for signum in ENDING_SIGNALS:
                with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows' loop
                    loop.add_signal_handler(signum, functools.partial(self.exit, return_code=128 + signum))

    def exit(self, result: None = None, return_code: int = 0, message: RenderableType | None = None) -> None:
        """Every way out (`q`, `ctrl+c`, a signal, the palette) stops the producers before the widgets go."""
        self.dashboard.stop()
        super().exit(result, return_code, message)

    def on_unmount(self) -> None:
        self.dashboard.stop()
        threading.excepthook = self._previous_excepthook
        if not self.is_headless:
            loop = asyncio.get_running_loop()
            for signum in ENDING_SIGNALS:
                with contextlib.suppress(NotImplementedError):
                    loop.remove_signal_handler(signum)

    def _thread_failed(self, failure: threading.ExceptHookArgs) -> None:
        """threading.excepthook while the dashboard runs: a thread's uncaught exception is shown, not lost."""
        if failure.exc_type is SystemExit:  # as the default hook: a thread's sys.exit() is no failure
            return
        name = failure.thread.name if failure.thread is not None else "a thread"
        self.dashboard.post_message(ErrorOccurred(f"thread {name} failed: {failure.exc_value!r}"))

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        palette_key = self.get_key_display(Binding(self.COMMAND_PALETTE_BINDING, "command_palette"))
        rows = help_rows(self.key_actions())
        self.push_screen(HelpScreen([*rows, (palette_key, "Command palette: every action by name")]))

    def key_actions(self) -> list[KeyAction]:
        """Every action with its keys: the dashboard's bindings, the App's, then those of its widgets with keys."""
        screen, *widgets = self.dashboard.key_owners()
        return key_actions(self, [screen, self, *widgets])

    def save_screenshot_here(self) -> None:
        """Save an SVG of the screen in the current directory and say where (or why not)."""
        try:
            path = self.save_screenshot(path=os.getcwd())
        except OSError as error:
            self.notify(f"Screenshot not saved: {error}", severity="error")
        else:
            self.notify(f"Screenshot saved to {path}")

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Textual's commands, conntui's screenshot, then one per action of the bindings (a title
        already there is not repeated)."""
        titles: set[str] = set()
        for command in super().get_system_commands(screen):
            if command.title not in self.REPLACED_COMMANDS:
                titles.add(command.title)
                yield command
        titles.add("Screenshot")
        yield SystemCommand(
            "Screenshot",
            "Save an SVG 'screenshot' of the screen in the current directory",
            lambda: self.set_timer(0.1, self.save_screenshot_here),  # once the palette has closed
        )
        for key_action in self.key_actions():
            if key_action.is_command and key_action.title not in titles:
                titles.add(key_action.title)
                yield SystemCommand(
                    key_action.title, key_action.help, getattr(key_action.owner, f"action_{key_action.action}")
                )
