"""A confirmation before an act that cannot be undone (kill a process, close a connection, replace a file).

It names what will be acted on (text given by the caller, already escaped: `conntui.text`) and
offers one button per way of going ahead plus Cancel. `y` takes the first way (the default),
`enter` the focused button, `n` and `escape` cancel. Dismissed with the chosen button's id, or
None when cancelled.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Button, Label

from conntui.ui.dialog_screen import DialogScreen


class ConfirmDialog(DialogScreen[str | None]):
    BINDINGS = [
        Binding("y", "confirm", "Yes"),
        Binding("n,escape", "dismiss", "No"),
    ]

    def __init__(self, title: str, lines: Sequence[str], choices: Sequence[tuple[str, str]]) -> None:
        """`choices`: (id, label) per way of going ahead, the default first."""
        super().__init__()
        self.title_text, self.lines, self.choices = title, lines, choices

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="confirm-dialog"):
            yield Label(Content(self.title_text), classes="title")
            for line in self.lines:
                yield Label(Content(line), classes="line")  # Content: a process name is not markup
            with Vertical(classes="footer"):  # docked: always on screen
                with Horizontal(classes="buttons"):
                    for index, (choice, label) in enumerate(self.choices):
                        yield Button(label, id=choice, variant="error" if index == 0 else "warning")
                    yield Button("Cancel (n)", id="cancel")
                yield Label(f"y: {self.choices[0][0]} · n, escape: cancel · tab: next", classes="keys")

    def on_mount(self) -> None:
        self.set_focus(self.query_one(f"#{self.choices[0][0]}", Button))

    def action_confirm(self) -> None:
        self.dismiss(self.choices[0][0])

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None if event.button.id == "cancel" else event.button.id)
