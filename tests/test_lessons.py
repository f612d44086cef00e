"""The lessons screen (L, `conntui learn`): each lesson's experiment run on the real built-in
server through the dashboard's runner, its outcome said in words from the records and the polls,
and the dashboard pointed at it. Counts and directions are asserted, never timings."""

from __future__ import annotations

from textual.widgets import Input, OptionList, Static

from conntui.cli import build_parser, dashboard_app, parse_args, selection_filter
from conntui.lessons import LESSONS, differing_values, later_requests_median, nagle_stalled
from conntui.sources import open_source
from conntui.ui.app import ConntuiApp
from conntui.ui.budget_pane import BudgetPane
from conntui.ui.detail_pane import DetailPane
from conntui.ui.lessons_screen import LessonsScreen
from conntui.ui.socket_table import SocketTable
from conntui.ui.tests_pane import TestsPane
from tests.conftest import wait_for
from tests.test_app import make_app, plain

WAIT = 30.0  # seconds: a bound on a loopback experiment and the polls after it, never a speed assertion


async def run_lesson(pilot, app: ConntuiApp, key: str) -> str:
    """Select the lesson in the list, run it with `r`, wait for its outcome; the screen's text, unwrapped."""
    screen = app.screen
    assert isinstance(screen, LessonsScreen)
    screen.query_one(OptionList).highlighted = [lesson.key for lesson in LESSONS].index(key)
    await pilot.pause()
    await pilot.press("r")
    await wait_for(pilot, lambda: app.dashboard.lesson_runs[key].outcome is not None, timeout=WAIT)
    await pilot.pause()
    return " ".join(plain(screen.query_one("#lesson-body", Static)).split())  # unwrapped


def test_differing_values_names_what_three_connections_do_not_share() -> None:
    tuples = [("tcp", "127.0.0.1", port, "127.0.0.1", 8080) for port in (50001, 50002, 50003)]
    assert differing_values(tuples) == (["source IP", "destination IP", "destination port"], ["source port"])


async def test_L_opens_the_lessons_and_three_of_them_measure_the_right_counts() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("L")
        assert isinstance(app.screen, LessonsScreen)

        text = await run_lesson(pilot, app, "four-values")
        run = app.dashboard.lesson_runs["four-values"]
        ports = [connection.local_port for connection in run.records[run.test_ids[0]].connections]
        assert len(set(ports)) == 3
        assert "only the source port differs" in text and all(str(port) in text for port in ports)
        assert "share the source IP, destination IP and destination port" in text

        text = await run_lesson(pilot, app, "time-wait")
        run = app.dashboard.lesson_runs["time-wait"]
        client_first, server_first = (run.records[test_id].connections[0].four_tuple for test_id in run.test_ids)
        assert client_first is not None and server_first is not None
        # The sentences are read from the poll the outcome was measured on (a later one may already
        # have seen a TIME_WAIT recycled by a new connection to the same four-tuple).
        for four_tuple in (client_first, server_first):
            assert f"{four_tuple[1]}:{four_tuple[2]} → {four_tuple[3]}:{four_tuple[4]}" in text
        assert "Closed client first (GET /): the client's socket" in text
        assert "is in TIME_WAIT, the server's is gone" in text
        assert "is gone, the server's is in TIME_WAIT" in text and "The side that closed first keeps" in text

        text = await run_lesson(pilot, app, "modes")
        comparison = app.dashboard.lesson_runs["modes"].records[app.dashboard.lesson_runs["modes"].test_ids[0]]
        connections = {run.label: run.connections for run in comparison.runs}
        assert connections == {"single": 10, "parallel": 10, "keepalive": 1, "pipeline": 1}
        assert "keep-alive opened 1 connection and paid 1 handshake; serial opened 10 and paid 10" in text
        assert "at a simulated RTT of 50 ms" in text

        # The dashboard points at the last one: filter mine, its socket selected, the tests pane open.
        await pilot.press("escape")
        assert not isinstance(app.screen, LessonsScreen)
        assert app.dashboard.query_one("#filter", Input).value == "mine"
        assert not app.dashboard.query_one(TestsPane).has_class("hidden")
        keepalive = next(run for run in comparison.runs if run.label == "keepalive")
        wanted = keepalive.result.connections[0].four_tuple
        await wait_for(pilot, lambda: (row := app.query_one(SocketTable).cursor_row) and row.sock.four_tuple == wanted)


async def test_the_port_budget_lesson_opens_the_budget_view_on_its_destination() -> None:
    app = make_app()
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.press("L")
        text = await run_lesson(pilot, app, "port-budget")
        run = app.dashboard.lesson_runs["port-budget"]
        assert "20 connections, each closed by this side first, left 20 sockets in TIME_WAIT" in text
        await pilot.press("L")  # L also goes back
        assert not isinstance(app.screen, LessonsScreen)
        assert not app.dashboard.query_one("#budget").has_class("hidden")
        first = run.records[run.test_ids[0]].connections[0].four_tuple
        await wait_for(pilot, lambda: (row := app.query_one(SocketTable).cursor_row) and row.sock.four_tuple == first)
        assert app.dashboard.query_one(DetailPane).has_class("hidden")  # the budget lesson's pane is the budget
        budget = app.dashboard.query_one(BudgetPane)
        assert first is not None
        await wait_for(pilot, lambda: budget.cursor_line and budget.cursor_line.remote_port == first[4])
        await pilot.press("L")  # reopened on the lesson last looked at
        assert isinstance(app.screen, LessonsScreen) and app.screen.selected == "port-budget"


async def test_conntui_learn_starts_on_the_lessons_screen_through_the_cli_function() -> None:
    args = parse_args(build_parser(), ["learn", "--interval", "0.2", "--kind", "tcp"])
    app = dashboard_app(args, selection_filter(args.parser, args), open_source())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LessonsScreen))
        body = plain(app.screen.query_one("#lesson-body", Static))
        assert "Four values make a connection unique" in body and "Not run yet." in body
        assert app.screen.query_one("#lesson-list").region.right <= 80
        await pilot.press("escape")
        assert app.screen is app.dashboard
        assert any(action.action == "lessons" for action in app.key_actions())  # in help and the palette


async def test_the_steps_nagle_and_head_of_line_lessons_say_what_was_measured() -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("L")
        text = await run_lesson(pilot, app, "seven-steps")
        assert "One request to 127.0.0.1:" in text
        assert all(f"{step} " in text for step in ("dns", "connect", "send", "ttfb", "transfer", "close"))

        text = await run_lesson(pilot, app, "nagle")
        run = app.dashboard.lesson_runs["nagle"]
        runs = {one.label: one for one in run.records[run.test_ids[0]].runs}
        assert len(runs["nagle"].request_ms) == 5 and "requests 2–5 took a median of" in text
        stalled = nagle_stalled(later_requests_median(runs["nagle"]), later_requests_median(runs["nodelay"]))
        assert ("waited for the ACK of its first" in text) == stalled  # said as measured
        assert ("No delayed-ACK stall was seen" in text) == (not stalled)

        text = await run_lesson(pilot, app, "head-of-line")
        run = app.dashboard.lesson_runs["head-of-line"]
        pipeline, parallel = (run.records[test_id] for test_id in run.test_ids)
        assert len(pipeline.connections) == 1 and len(parallel.connections) == 5
        # In the pipeline the fast responses came after the slow one; in parallel before it.
        slow_ttfb = pipeline.connections[0].responses[0].ttfb_ms
        assert all(response.ttfb_ms >= slow_ttfb for response in pipeline.connections[0].responses[1:])
        assert "Pipelined on one connection, those 4 came back after it" in text
        await pilot.press("escape")
        assert not app.dashboard.query_one(TestsPane).has_class("hidden")
