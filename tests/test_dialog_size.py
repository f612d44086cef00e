"""The `t` dialog at 80x24 and 200x50: every field, its label and the buttons on the screen, on one line each."""

from __future__ import annotations

import pytest
from textual.widgets import Button, Input, Label, Select

from conntui.ui.test_dialog import TestDialog
from tests.test_app import make_app


@pytest.mark.parametrize("size", [(80, 24), (200, 50)])
async def test_the_test_dialog_fits_the_terminal_with_each_field_on_one_line(size: tuple[int, int]) -> None:
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await pilot.press("t")
        assert isinstance(app.screen, TestDialog)
        app.screen.query_one("#mode", Select).value = "compare nagle"  # the longest choice
        await pilot.pause()
        width, height = size
        dialog = app.screen.query_one("#test-dialog").region
        assert dialog.right <= width and dialog.bottom <= height
        for widget in app.screen.query(Input).results():
            assert widget.region.right <= dialog.right and widget.region.height == 3
        mode = app.screen.query_one("#mode", Select)
        assert mode.region.height == 3  # "compare nagle" on one line, not wrapped onto a second
        for label in app.screen.query(Label).results():
            if str(label.content):  # the error line is empty until there is an error
                assert label.region.right <= dialog.right and label.region.height == 1
        for button in app.screen.query(Button).results():
            assert button.region.bottom <= dialog.bottom
