"""The budget view (b), the history pane (h) and the tests pane (T) on small terminals: each shows its
title and a line, or a notification says the terminal is too small for it and z zooms it; zoomed, it
shows them."""

from __future__ import annotations

import pytest

from conntui.ui.budget_pane import BudgetPane
from conntui.ui.history_pane import HistoryTable
from conntui.ui.room import lines_on_screen
from conntui.ui.tests_pane import TestsPane
from tests.test_app import make_app

PANES = [
    ("b", BudgetPane, "budget view", 1 + BudgetPane.PINNED + 1),
    ("h", HistoryTable, "history pane", 2),
    ("T", TestsPane, "tests pane", 2),
]


@pytest.mark.parametrize("size", [(40, 12), (60, 20), (80, 24)])
@pytest.mark.parametrize(("key", "widget_type", "name", "needed"), PANES)
async def test_a_pane_opened_on_a_small_terminal_is_shown_or_said_too_small(
    size: tuple[int, int], key: str, widget_type: type, name: str, needed: int
) -> None:
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await pilot.press(key)
        await pilot.pause()
        pane = app.screen.query_one(widget_type)
        said = [n.message for n in app._notifications if f"too small for the {name}" in n.message]
        if size == (40, 12):
            assert lines_on_screen(pane) < needed and said  # the table keeps its rows: no room left
        else:
            assert lines_on_screen(pane) >= needed and not said
            assert app.screen.region.contains_region(app.screen.find_widget(pane).visible_region)
        await pilot.press("z")  # as the notification says
        await pilot.pause()
        assert lines_on_screen(pane) >= needed


async def test_with_no_socket_shown_the_status_line_has_no_empty_field() -> None:
    from tests.conftest import wait_for
    from tests.test_app import status_text

    app = make_app("proc:no-process-is-called-this")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.dashboard.poll_count >= 1 and "0/" in status_text(app))
        status = " ".join(status_text(app).split())
        assert status.startswith("0/") and "│ │" not in status, status
