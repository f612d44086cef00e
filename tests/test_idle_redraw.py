"""An idle dashboard redraws only what moved on screen: the ages once a second, nothing else.

The dashboard polls real loopback sockets; its clock is the test's, so a "second" passes when the
test says so. Each redraw asked of the table is recorded (its `refresh` calls and their regions).
"""

from __future__ import annotations

from textual.geometry import Region

from conntui.poller import Poller
from conntui.sources import open_source
from conntui.ui.app import ConntuiApp
from conntui.ui.socket_table import SocketTable
from tests.conftest import wait_for


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_second_later_only_the_age_column_is_redrawn_and_without_one_nothing(sockets) -> None:
    listener = sockets.listener()
    sockets.connection(listener)
    port = listener.getsockname()[1]
    clock = Clock()
    app = ConntuiApp(Poller(open_source(), "tcp"), interval=3600, filter_text=f"port:{port}", clock=clock)
    async with app.run_test(size=(180, 40)) as pilot:
        await wait_for(pilot, lambda: len(app.dashboard.state.visible) == 3 and app.dashboard.poll_count >= 2)
        assert app.dashboard._ticker is not None
        app.dashboard._ticker.stop()  # the test ticks
        table = app.query_one(SocketTable)
        await pilot.pause()
        redraws: list[tuple[Region, ...]] = []
        refresh = table.refresh
        table.refresh = lambda *regions, **options: (redraws.append(regions), refresh(*regions, **options))[1]

        table.redraw_changed_cells()
        assert redraws == []  # no time passed: nothing on screen moved

        age_before = table.render_line(1).text
        clock.now += 1
        table.redraw_changed_cells()
        layout = table._page().layout
        age = layout.columns.index(next(column for column in layout.columns if column.name == "age"))
        x = layout.starts[age] - int(table.scroll_x)
        assert redraws == [(Region(x, 1, layout.widths[age], 3),)]  # the ages' cells, not the rows
        assert table.render_line(1).text != age_before
        assert table.render_line(1).text.replace("1s", "0s", 1) == age_before  # the age, and only it, moved on
