"""The `t` dialog at 80x24 and 200x50: every field, its label and the buttons on the screen, on one line each;
on a small terminal (40x12, 60x20) the fields stack and scroll, the buttons stay on the screen."""

from __future__ import annotations

import pytest
from textual.widgets import Button, Input, Label, Select

from conntui.ui.test_dialog import TestDialog
from tests.conftest import wait_for
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


FIELDS = ("#url", "#mode", "#count", "#hold", "#rtt")


def _on_screen(app, widget) -> bool:
    """The widget wholly visible: inside the screen and not scrolled out of its container."""
    region = app.screen.find_widget(widget).visible_region
    return region == widget.region and app.screen.region.contains_region(region)


@pytest.mark.parametrize("size", [(40, 12), (60, 20), (80, 24)])
async def test_on_a_small_terminal_the_fields_stack_and_scroll_and_the_buttons_stay(size: tuple[int, int]) -> None:
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await pilot.press("t")
        assert isinstance(app.screen, TestDialog)
        await pilot.pause()
        fields = [app.screen.query_one(selector) for selector in FIELDS]
        for field in fields:
            field.focus()
            await wait_for(pilot, lambda field=field: _on_screen(app, field))  # focused: scrolled into view, whole
            assert field.region.width >= 10  # room for what is typed, not a sliver beside the others
            for button in app.screen.query(Button).results():
                assert _on_screen(app, button), (button.id, button.region)
        for label in app.screen.query(Label).results():
            text = str(label.content)
            assert label.region.width * label.region.height >= len(text), text  # wrapped, never cut:
            assert label.region.right <= label.parent.content_region.right, text  # nor by its field's column
