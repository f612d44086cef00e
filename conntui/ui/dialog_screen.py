"""What the act and save dialogs share: they fit any terminal down to 40x12.

Each dialog docks its buttons and a line of keys at its bottom, so they stay on screen however
small the terminal; what the dialog says above them scrolls. Below 64 columns or 20 lines the
screen is `-cramped` and its buttons compact (one line, no border), so that three fit side by
side in 40 columns.
"""

from __future__ import annotations

from typing import TypeVar

from textual import events
from textual.screen import ModalScreen
from textual.widgets import Button

ResultType = TypeVar("ResultType")

ROOMY = (64, 20)  # columns and lines from which the buttons get their borders


class DialogScreen(ModalScreen[ResultType]):
    def on_resize(self, event: events.Resize) -> None:
        cramped = event.size.width < ROOMY[0] or event.size.height < ROOMY[1]
        self.set_class(cramped, "-cramped")
        for button in self.query(Button):
            button.compact = cramped
