"""The `?` help screen: every key the dashboard answers to."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from conntui.filters import FILTER_HELP

KEYS = (
    ("/", "filter as you type (enter or escape to leave the box)"),
    ("escape", "clear the filter"),
    ("p", "pause / resume polling"),
    ("r", "refresh now"),
    ("enter", "show / hide the detail pane"),
    ("g", "jump to the peer socket (other end on this machine)"),
    ("l", "show / hide the event log"),
    ("t", "launch test HTTP connections (the seven steps, timed)"),
    ("T", "show / hide the tests pane (enter on a test: jump to its socket)"),
    ("s / S", "sort by the next column / reverse (or click a column title)"),
    ("m", "show / hide TCP metrics: RTT, retransmits, bytes, send/receive rates"),
    ("↑ ↓ PgUp PgDn Home End", "move the cursor"),
    ("ctrl+p", "command palette"),
    ("?", "this help"),
    ("q / ctrl+c", "quit"),
)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        keys = "\n".join(f"  {key:<24} {meaning}" for key, meaning in KEYS)
        with Vertical(id="help"):
            yield Static(Text.assemble(("Keys\n", "bold"), keys, ("\n\nFilter\n", "bold"), FILTER_HELP))
            yield Static(Text("escape to close", "dim"))
