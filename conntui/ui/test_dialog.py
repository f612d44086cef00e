"""The `t` dialog: launch test HTTP connections (URL, mode, count, hold, the built-in server's
simulated RTT); "compare" and "compare nagle" beside the modes run an experiment instead.
On a narrow terminal the fields stack, one per line; on a short one the dialog scrolls, its
Launch and Cancel buttons docked at its foot, always on the screen.

Each value is checked before launching (the URL by the client's own parser), and a bad one is
said inline, the dialog staying open. It is pre-filled with the last launched (so valid) request,
and dismissed with the new one (None: cancelled).
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select

from conntui.http.client import parse_url
from conntui.http.records import COMPARE_CHOICES, MAX_PROBE_COUNT, MAX_RTT_MS, PROBE_MODES
from conntui.http.runner import ProbeRequest
from conntui.text import printable

NARROW_WIDTH = 78  # columns: below this the fields stack, one per line (see conntui.tcss)
SHORT_HEIGHT = 21  # lines: below this the fields scroll between the title and the buttons


class TestDialog(ModalScreen[ProbeRequest | None]):
    __test__ = False  # not a pytest test class

    BINDINGS = [Binding("escape", "dismiss", "Cancel")]
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (NARROW_WIDTH, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (SHORT_HEIGHT, "-tall")]

    def __init__(self, builtin_hint: str, last: ProbeRequest) -> None:
        super().__init__()
        self.builtin_hint, self.last = builtin_hint, last

    def compose(self) -> ComposeResult:
        with Vertical(id="test-dialog"):
            yield Label("Launch test connections", classes="title")
            with VerticalScroll(id="test-dialog-body"):  # scrolls on a short terminal
                yield Label("URL (empty or a path like /delay?ms=500: the built-in test server)")
                yield Input(self.last.url, placeholder=self.builtin_hint, id="url")
                with Horizontal(classes="row"):
                    with Vertical(classes="mode-field"):
                        yield Label("Mode")
                        modes = [(mode, mode) for mode in (*PROBE_MODES, *COMPARE_CHOICES)]
                        yield Select(modes, value=self.last.mode, allow_blank=False, id="mode")
                    with Vertical():
                        yield Label(f"Count (1-{MAX_PROBE_COUNT})")
                        yield Input(str(self.last.count), id="count", restrict=r"[0-9]*")
                    with Vertical():
                        yield Label("Hold (s)")
                        yield Input(f"{self.last.hold:g}", id="hold", restrict=r"[0-9.]*")
                    with Vertical():
                        yield Label("RTT ms, simulated")
                        yield Input(str(self.last.rtt_ms), id="rtt", restrict=r"[0-9]*")
                yield Label("", id="dialog-error")
            with Horizontal(classes="buttons"):
                yield Button("Launch", variant="primary", id="launch")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        # Now, not after the next refresh as Widget.focus() does: keys typed right after `t`
        # (type-ahead, a paste) must land in the box, not act as the dashboard's keys.
        self.set_focus(self.query_one("#url", Input))

    @on(Input.Submitted)
    @on(Button.Pressed, "#launch")
    def launch(self) -> None:
        url = self.query_one("#url", Input).value.strip()
        count_text = self.query_one("#count", Input).value
        hold_text = self.query_one("#hold", Input).value or "0"
        error = self.query_one("#dialog-error", Label)
        if (reason := url_error(url)) is not None:
            error.update(Content(f"URL: {printable(reason)}"))  # Content: the URL's [brackets] are not markup
            self.query_one("#url", Input).focus()
            return
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
        rtt_text = self.query_one("#rtt", Input).value or "0"
        if not (rtt_text.isdigit() and len(rtt_text) <= 6 and int(rtt_text) <= MAX_RTT_MS):
            error.update(f"RTT must be a whole number of milliseconds from 0 to {MAX_RTT_MS:,}.")
            return
        rtt_ms = int(rtt_text)
        if rtt_ms and url and not url.startswith("/"):
            error.update("The simulated RTT is the built-in server's: leave the URL empty, or a path.")
            return
        mode = self.query_one("#mode", Select).value
        self.dismiss(ProbeRequest(url, str(mode), int(count_text), hold, rtt_ms))

    @on(Button.Pressed, "#cancel")
    def cancel(self) -> None:
        self.dismiss()


def url_error(url: str) -> str | None:
    """Why the client would refuse this URL, or None. Empty or a path (`/delay?ms=500`) means
    the built-in test server, whose address is sound."""
    try:
        parse_url(url if url and not url.startswith("/") else f"http://127.0.0.1{url}")
    except ValueError as error:
        return str(error)
    return None
