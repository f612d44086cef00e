"""Which owner? A socket several processes hold asks which one `k` is for.

One line per owner (pid, name, command line, escaped); `enter` picks, `escape` cancels.
Dismissed with the chosen pid, or None.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from conntui.acting import describe_process
from conntui.model import ProcessInfo
from conntui.ui.dialog_screen import DialogScreen


class OwnerDialog(DialogScreen[int | None]):
    BINDINGS = [Binding("escape", "dismiss", "Cancel")]

    def __init__(self, owners: Sequence[ProcessInfo]) -> None:
        super().__init__()
        self.owners = owners

    def compose(self) -> ComposeResult:
        with Vertical(id="owner-dialog"):
            yield Label(f"{len(self.owners)} processes hold this socket: which one?", classes="title")
            yield Label("enter: choose · escape: none", classes="keys")
            yield OptionList(*(Option(Content(describe_process(info)), id=str(info.pid)) for info in self.owners))

    def on_mount(self) -> None:
        self.set_focus(self.query_one(OptionList))

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(int(event.option.id or 0))
