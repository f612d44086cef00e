"""The `t` dialog: launch test HTTP connections (URL, mode, count, hold)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select

from conntui.http.records import MAX_PROBE_COUNT, PROBE_MODES
from conntui.ui.messages import LaunchProbe


class TestDialog(ModalScreen[None]):
    __test__ = False  # not a pytest test class

    BINDINGS = [Binding("escape", "dismiss", "Cancel")]

    def __init__(self, builtin_hint: str, url: str = "", mode: str = "single", count: int = 1, hold: float = 3.0):
        super().__init__()
        self.builtin_hint, self.url, self.mode, self.count, self.hold = builtin_hint, url, mode, count, hold

    def compose(self) -> ComposeResult:
        with Vertical(id="test-dialog"):
            yield Label("Launch test connections", classes="title")
            yield Label("URL (empty or a path like /delay?ms=500: the built-in test server)")
            yield Input(self.url, placeholder=self.builtin_hint, id="url")
            with Horizontal(classes="row"):
                with Vertical():
                    yield Label("Mode")
                    yield Select([(mode, mode) for mode in PROBE_MODES], value=self.mode, allow_blank=False, id="mode")
                with Vertical():
                    yield Label(f"Count (1-{MAX_PROBE_COUNT})")
                    yield Input(str(self.count), id="count", restrict=r"[0-9]*")
                with Vertical():
                    yield Label("Hold (s)")
                    yield Input(f"{self.hold:g}", id="hold", restrict=r"[0-9.]*")
            yield Label("", id="dialog-error")
            with Horizontal(classes="buttons"):
                yield Button("Launch", variant="primary", id="launch")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#url", Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#launch")
    def launch(self) -> None:
        count_text = self.query_one("#count", Input).value
        hold_text = self.query_one("#hold", Input).value or "0"
        error = self.query_one("#dialog-error", Label)
        if not count_text.isdigit() or not 1 <= int(count_text) <= MAX_PROBE_COUNT:
            error.update(f"Count must be a whole number from 1 to {MAX_PROBE_COUNT}.")
            return
        try:
            hold = float(hold_text)
        except ValueError:
            hold = -1.0
        if not 0 <= hold <= 3600:
            error.update("Hold must be a number of seconds from 0 to 3600.")
            return
        mode = self.query_one("#mode", Select).value
        self.app.post_message(
            LaunchProbe(self.query_one("#url", Input).value.strip(), str(mode), int(count_text), hold)
        )
        self.dismiss()

    @on(Button.Pressed, "#cancel")
    def cancel(self) -> None:
        self.dismiss()
