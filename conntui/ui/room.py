"""A pane opened where the layout left it no room (a small terminal): said in a notification,
with the way to see it anyway (z zooms the focused pane to the whole screen)."""

from __future__ import annotations

from textual.errors import NoWidget
from textual.widget import Widget


def lines_on_screen(widget: Widget) -> int:
    """How many of the widget's lines are on the screen now (0 when the layout left it out)."""
    try:
        return widget.screen.find_widget(widget).visible_region.height
    except NoWidget:
        return 0


def say_if_no_room(widget: Widget, name: str, needed: int) -> None:
    """When fewer than `needed` lines of the widget are on the screen (and nothing is zoomed),
    say that the terminal is too small for it, and how to see it."""
    if widget.screen.maximized is None and lines_on_screen(widget) < needed:
        widget.notify(
            f"The terminal is too small for the {name}: z zooms it (z again: back).",
            severity="warning",
        )
