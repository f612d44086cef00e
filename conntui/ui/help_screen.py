"""The `?` help screen: every key the dashboard answers to, and the filter syntax.

Both are made from their single sources (the bindings, `conntui.filters.FILTER_TERMS`); the text
wraps to the terminal's width and scrolls with the keys, so all of it is reachable at 80×24.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from conntui.filters import FILTER_INTRO, filter_help_rows


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def __init__(self, keys: Iterable[tuple[str, str]]) -> None:
        """`keys`: (the keys as shown, what they do), one row per action."""
        super().__init__()
        self.keys = list(keys)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(Text("Keys", "bold"), classes="help-title")
            yield Static(_two_columns(self.keys, typed_width=12), id="help-keys")
            yield Static(Text("Filter", "bold"), classes="help-title", id="help-filter-title")
            yield Static(FILTER_INTRO)
            yield Static(_two_columns(filter_help_rows()), id="help-filter")
            yield Static(Text("↑ ↓ pgup pgdn scroll · escape closes", "dim"), id="help-close")

    def on_mount(self) -> None:
        self.query_one("#help").focus()


def _two_columns(rows: Iterable[tuple[str, str]], typed_width: int | None = None) -> Table:
    """What is typed (wrapped beyond `typed_width`), then what it does, wrapped within the screen's width."""
    grid = Table.grid(padding=(0, 2), expand=True)
    grid.add_column(no_wrap=typed_width is None, max_width=typed_width, style="bold")
    grid.add_column(ratio=1)
    for typed, meaning in rows:
        grid.add_row(typed, meaning)
    return grid
