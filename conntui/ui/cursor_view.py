"""A line-by-line widget with a cursor: the moves of `CURSOR_BINDINGS` (up, down, page, first,
last), the cursor kept on a line and in view below the widget's pinned lines. The tests pane, the
budget view and the history table are such widgets (the socket table, whose lines are grouped,
moves its own)."""

from __future__ import annotations

from textual.scroll_view import ScrollView


class CursorView(ScrollView):
    PINNED = 0  # lines at the top that do not scroll (a header, column titles)

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.cursor = 0

    @property
    def line_count(self) -> int:
        raise NotImplementedError

    def _cursor_moved(self) -> None:
        """Called once the cursor is on its new line (to remember what it is on)."""

    def _move_cursor(self, index: int) -> None:
        """Put the cursor on line `index` and scroll it into view; forced, because the scrollbar that
        permits scrolling appears only after the next layout, when the lines just outgrew the widget."""
        self.cursor = max(0, min(index, self.line_count - 1))
        self._cursor_moved()
        height = max(1, self.scrollable_content_region.height - self.PINNED)
        top = int(self.scroll_y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True, force=True)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True, force=True)
        self.refresh()

    def action_cursor(self, delta: int) -> None:
        self._move_cursor(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self._move_cursor(self.cursor + direction * max(1, self.scrollable_content_region.height - self.PINNED - 1))

    def action_jump(self, index: int) -> None:
        self._move_cursor(index if index >= 0 else self.line_count - 1)
