"""The `e` dialog: where to save the current view, and as JSON or CSV.

The path box is pre-filled with a name in the current directory; choosing the other format
changes its extension, and typing a path ending in `.json` or `.csv` chooses that format.
Dismissed with (path, format), or None when cancelled. Whether the file
exists is asked afterwards, by the dashboard, which opens the dialog again (the name kept, and
why, in its error line) when the path will not do or a replacement is declined.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Button, Input, Label, RadioButton, RadioSet

from conntui.export import EXPORT_FORMATS, with_format
from conntui.ui.dialog_screen import DialogScreen


class ExportDialog(DialogScreen[tuple[str, str] | None]):
    BINDINGS = [Binding("escape", "dismiss", "Cancel")]

    def __init__(self, path: str, rows: int, export_format: str, error: str = "") -> None:
        """`error`: why the dialog is asked again (shown under the path)."""
        super().__init__()
        self.path, self.rows, self.initial_format, self.error = path, rows, export_format, error

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="export-dialog"):
            sockets = "socket" if self.rows == 1 else "sockets"
            yield Label(f"Save the {self.rows} {sockets} shown (the fields of conntui list)", classes="title")
            yield Input(self.path, id="export-path")
            with RadioSet(id="export-format"):
                for export_format in EXPORT_FORMATS:
                    yield RadioButton(export_format.upper(), value=export_format == self.initial_format)
            yield Label(Content(self.error), id="export-error")
            with Vertical(classes="footer"):  # docked: always on screen
                with Horizontal(classes="buttons"):
                    yield Button("Save", variant="primary", id="save")
                    yield Button("Cancel", id="cancel")
                yield Label("enter: save · escape: cancel · tab: next", classes="keys")

    def on_mount(self) -> None:
        self.set_focus(self.query_one("#export-path", Input))

    @property
    def export_format(self) -> str:
        return EXPORT_FORMATS[max(0, self.query_one(RadioSet).pressed_index)]

    @on(RadioSet.Changed)
    def _format_changed(self) -> None:
        box = self.query_one("#export-path", Input)
        box.value = with_format(box.value, self.export_format)
        box.cursor_position = len(box.value)  # and the box scrolled to show it

    @on(Input.Changed, "#export-path")
    def _path_changed(self, event: Input.Changed) -> None:
        extension = event.value.rpartition(".")[2]
        if extension in EXPORT_FORMATS and extension != self.export_format:
            self.query(RadioButton)[EXPORT_FORMATS.index(extension)].value = True

    @on(Input.Submitted)
    @on(Button.Pressed, "#save")
    def save(self) -> None:
        path = self.query_one("#export-path", Input).value.strip()
        if not path:
            self.query_one("#export-error", Label).update("Say where to save it.")
            return
        self.dismiss((path, self.export_format))

    @on(Button.Pressed, "#cancel")
    def cancel(self) -> None:
        self.dismiss(None)
