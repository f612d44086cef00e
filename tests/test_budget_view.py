"""The budget view (`b`) and the detail pane's budget line, in the real dashboard over real loopback
connections closed client-first; the colours from 50 % and 80 % on a tiny port range (exhausting
the machine's real ports is not an option)."""

from __future__ import annotations

from textual.app import App, ComposeResult

from conntui.budget import BudgetTracker, PortSpace
from conntui.model import Snapshot, Socket
from conntui.poller import Poller
from conntui.sources import open_source
from conntui.ui.app import ConntuiApp
from conntui.ui.budget_pane import BUDGET_COLUMNS, BudgetPane, fit_budget_columns
from conntui.ui.detail_pane import DetailPane
from conntui.ui.socket_table import SocketTable
from tests.conftest import cursor_to, linux_only, wait_for
from tests.test_app import plain
from tests.test_budget import K, close_client_first

LEVELS = ("error", "warning")


def pane_lines(pane: BudgetPane) -> list[str]:
    return [pane.render_line(y).text for y in range(pane.scrollable_content_region.height)]


def our_line(pane: BudgetPane, port: int):
    return next((line for line in pane.lines if line.destination == ("tcp", "127.0.0.1", "127.0.0.1", port)), None)


@linux_only
async def test_the_budget_view_counts_connections_closed_client_first_and_filters_to_them(sockets) -> None:
    listener = sockets.listener()
    port = listener.getsockname()[1]
    app = ConntuiApp(Poller(open_source(), "tcp"), interval=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("b")
        pane = app.query_one(BudgetPane)
        assert not pane.has_class("hidden") and pane.has_focus
        await wait_for(pilot, lambda: pane.report is not None)
        close_client_first(sockets, listener, K)  # after the first poll: the view must see them as new
        await wait_for(pilot, lambda: (line := our_line(pane, port)) and line.time_wait >= K and line.new_per_s)
        line = our_line(pane, port)
        assert line.ports_in_use >= K and line.established == 0  # the accepted sides are not outgoing
        usages = [line.usage for line in pane.lines]
        assert usages == sorted(usages, reverse=True)
        pane.action_jump(pane.lines.index(line))
        await pilot.pause()
        shown = pane_lines(pane)
        assert all(len(text) <= pane.scrollable_content_region.width for text in shown)  # readable at 80 columns
        assert shown[0].startswith("ports ") and "free ports / 60 s" in shown[0]
        assert shown[1].startswith("tcp_tw_reuse=")
        titles = shown[2].split()  # which columns fit 80 depends on the widest endpoint on screen
        assert {"Destination", "TimeWait", "Ports", "Usage", "New/s"} <= set(titles)
        [row] = [text.split() for text in shown[3:] if f"127.0.0.1:{port} " in text]
        assert row[titles.index("TimeWait")] == f"{line.time_wait:,}"
        assert row[titles.index("Ports")] == f"{line.ports_in_use:,}"
        await pilot.press("enter")  # the table shows this destination's sockets
        destination_filter = f"proto:tcp lip:127.0.0.1 rip:127.0.0.1 rport:{port}"
        await wait_for(pilot, lambda: app.dashboard.state.filter.text == destination_filter)
        await wait_for(pilot, lambda: len(app.dashboard.state.visible) >= K)
        assert all(row.sock.remote_port == port for row in app.dashboard.state.visible)
        await pilot.press("b")
        assert pane.has_class("hidden") and isinstance(app.focused, SocketTable)
        await pilot.press("enter")
        detail = app.query_one(DetailPane)
        sentence = f"destination 127.0.0.1:{port} from 127.0.0.1: "
        await wait_for(pilot, lambda: sentence in plain(detail))
        assert "in TIME_WAIT" in plain(detail) and "ceiling" in plain(detail)


@linux_only
async def test_the_detail_pane_of_a_listener_or_an_accepted_socket_has_no_budget_line(sockets) -> None:
    listener = sockets.listener()
    port = listener.getsockname()[1]  # in the ephemeral range (bound to port 0) but a listener's
    sockets.connection(listener)
    app = ConntuiApp(Poller(open_source(), "tcp"), interval=0.2, filter_text=f"lport:{port}")
    async with app.run_test(size=(150, 40)) as pilot:
        await wait_for(pilot, lambda: len(app.dashboard.state.visible) == 2 and app.dashboard.budget is not None)
        await pilot.press("enter")
        detail = app.query_one(DetailPane)
        for row in list(app.dashboard.state.visible):  # the listener, then the accepted side
            await cursor_to(pilot, lambda row=row: row)
            described = f"source port {port}   destination IP {row.sock.remote_ip or '*'}"
            await wait_for(pilot, lambda text=described: text in plain(detail))
            assert "Budget" not in plain(detail)


class PaneHost(App[None]):
    """The budget pane alone, with the dashboard's stylesheet."""

    CSS_PATH = ConntuiApp.CSS_PATH

    def compose(self) -> ComposeResult:
        yield BudgetPane(id="budget")


def tiny_range_report():
    """Ten usable ports; destinations using 9, 5 and 4 of them (90 %, 50 %, 40 %)."""
    space = PortSpace(40000, 40010, frozenset({40010}))
    sockets = tuple(
        Socket((remote_port, port), "tcp", 4, "127.0.0.1", port, "127.0.0.2", remote_port, "TIME_WAIT")
        for remote_port, used in ((80, 9), (81, 5), (82, 4))
        for port in range(40000, 40000 + used)
    )
    return BudgetTracker(space, 0).add(Snapshot(sockets, taken_at=0.0))


async def test_destinations_are_coloured_from_50_and_80_percent_of_the_usable_ports() -> None:
    app = PaneHost()
    async with app.run_test(size=(100, 12)) as pilot:
        pane = app.query_one(BudgetPane)
        pane.show(tiny_range_report())
        await pilot.pause()
        assert [line.usage for line in pane.lines] == [0.9, 0.5, 0.4]
        error, warning = (
            pane.get_component_rich_style(f"budget-pane--{level}", partial=True) for level in ("error", "warning")
        )
        assert error.color != warning.color != pane.rich_style.color

        def colour(y: int):
            return next(segment.style.color for segment in pane.render_line(y) if segment.text.strip())

        assert (colour(3), colour(4), colour(5)) == (error.color, warning.color, pane.rich_style.color)
        assert "tcp_tw_reuse=0: off: no reuse" in pane.render_line(1).text


def test_narrow_lines_keep_the_budget_columns_and_drop_the_others_first() -> None:
    lines = tiny_range_report().lines
    titles = [column.title for column in fit_budget_columns(lines, 200)[0]]
    assert titles == [column.title for column in BUDGET_COLUMNS]
    narrow = [column.title for column in fit_budget_columns(lines, 60)[0]]  # the time to exhaustion leaves first
    assert narrow == ["Destination", "Estab", "TimeWait", "Ports", "Usage", "New/s", "Ceiling/s"]
    narrowest = [column.title for column in fit_budget_columns(lines, 30)[0]]
    assert narrowest == ["Destination", "TimeWait", "Ports", "Usage", "New/s"]


async def test_at_60_columns_the_columns_off_screen_are_a_sideways_scroll_away() -> None:
    app = PaneHost()
    async with app.run_test(size=(60, 20)) as pilot:
        pane = app.query_one(BudgetPane)
        pane.show(tiny_range_report())
        pane.focus()
        await pilot.pause()
        titles = pane.render_line(2).text
        assert titles.rstrip().endswith("→") and "Exhausted in" not in titles, titles
        seen = [titles]
        for _ in range(len(BUDGET_COLUMNS)):  # bounded: one press per column at most
            await pilot.press("right")
            seen.append(pane.render_line(2).text)
        assert seen[-1].startswith("←") and seen[-1].rstrip().endswith("Exhausted in")
        assert {len(line) for line in pane_lines(pane)} == {pane.scrollable_content_region.width}  # never wider
        for _ in range(len(BUDGET_COLUMNS)):
            await pilot.press("left")
        assert pane.render_line(2).text == titles


async def test_the_budget_view_with_no_outgoing_connection_says_so_and_the_dashboard_goes_on(sockets) -> None:
    """A machine (here: a view of one listener) with no outgoing socket: no destination line, and
    no failure (the widths of the columns once came from the lines only)."""
    from tests.test_engine import OnePort

    port = sockets.listener().getsockname()[1]
    app = ConntuiApp(Poller(OnePort(port), "tcp4"), interval=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.dashboard.budget is not None)
        await pilot.press("b")
        pane = app.query_one(BudgetPane)
        await wait_for(pilot, lambda: any("Destination" in line for line in pane_lines(pane)))
        assert pane.lines == () and app.is_running and not app.dashboard.internal_error
