"""The experiments from the dashboard: the runner runs a comparison on a built-in server that is
RTT ms away (simulated), and the `t` dialog's "compare" choice shows it in the tests pane as bars."""

from __future__ import annotations

import threading

from textual.widgets import Input, Select

from conntui.http.experiments import Comparison
from conntui.http.runner import ProbeRequest, ProbeRunner
from conntui.model import peer_tuple
from conntui.ui.test_dialog import TestDialog
from conntui.ui.tests_pane import TestsPane
from tests.conftest import wait_for
from tests.test_app import make_app, pane_text, plain

WAIT = 20.0  # seconds: a bound on a loopback test, never a speed assertion


def test_the_runner_runs_a_comparison_on_a_builtin_server_rtt_ms_away() -> None:
    done = threading.Event()
    records = []

    def on_update(test_id, record) -> None:
        records.append(record)
        if record.done:
            done.set()

    runner = ProbeRunner(on_update=on_update, on_mine=lambda mine: None, on_error=records.append)
    try:
        runner.launch(ProbeRequest("/", "compare", 2, 0.0, rtt_ms=20))
        assert done.wait(WAIT)
        comparison = runner.tests[1]
        assert isinstance(comparison, Comparison) and comparison.ok, comparison.first_error
        assert [run.connections for run in comparison.runs] == [2, 2, 1, 1]
        assert comparison.simulated_rtt_ms == 20 and runner.server_url is None  # only the 20 ms server runs
        clients = {record.four_tuple for record in comparison.connections}
        assert len(clients) == 6 and {peer_tuple(four) for four in clients if four} <= runner.mine
        assert isinstance(records[0], Comparison) and not records[0].runs  # said before it ran
    finally:
        runner.stop()


async def test_compare_from_the_dialog_shows_the_modes_as_bars_labelled_simulated() -> None:
    app = make_app()
    async with app.run_test(size=(150, 40)) as pilot:
        await pilot.press("t")
        assert isinstance(app.screen, TestDialog)
        app.screen.query_one("#mode", Select).value = "compare"
        app.screen.query_one("#count", Input).value = "3"
        app.screen.query_one("#rtt", Input).value = "20"
        await pilot.press("enter")
        assert not isinstance(app.screen, TestDialog)
        await wait_for(pilot, lambda: app.dashboard.tests.get(1) and app.dashboard.tests[1].done, timeout=WAIT)
        assert app.dashboard.tests[1].ok
        pane = app.query_one(TestsPane)
        text = pane_text(pane)
        assert "compare ×3" in text and "[server RTT 20 ms, simulated]" in text
        rows = [line.strip.text for line in pane.lines if line.strip.text.split()[:1] in (["single"], ["pipeline"])]
        assert len(rows) == 2 and rows[0].index("█") == rows[1].index("█")  # aligned bars
        single = next(index for index, line in enumerate(pane.lines) if line.strip.text.lstrip().startswith("single"))
        assert len(pane.lines[single].four_tuples) == 3  # enter on a mode's line: that mode's sockets
        await pilot.press("t")  # offered again as launched
        assert app.screen.query_one("#rtt", Input).value == "20"
        assert app.screen.query_one("#mode", Select).value == "compare"
        app.screen.query_one("#url", Input).value = "http://127.0.0.1:9/"
        await pilot.press("enter")  # a simulated RTT is the built-in server's only
        assert isinstance(app.screen, TestDialog)
        assert "built-in server's" in plain(app.screen.query_one("#dialog-error"))


async def test_polls_wait_while_an_experiment_runs_in_the_dashboard() -> None:
    """A poll of a busy machine, in the dashboard's process, would be timed with the experiment."""
    app = make_app()
    async with app.run_test(size=(150, 40)) as pilot:
        await wait_for(pilot, lambda: app.dashboard.poll_count >= 1, timeout=WAIT)
        app.dashboard.launch(ProbeRequest("/", "compare", 3, 0.0, rtt_ms=100))  # about 2 s
        assert app.dashboard.timing == {1}
        polls = -1
        while app.dashboard.engine.polls != polls:  # a poll already under way ends (slowly on a busy machine)
            polls = app.dashboard.engine.polls
            await pilot.pause(0.3)
        assert "polls wait for the experiment" in str(app.query_one("#status").content)
        await pilot.pause(0.6)  # three intervals
        assert not app.dashboard.tests[1].done and app.dashboard.engine.polls == polls  # none while it runs
        await wait_for(pilot, lambda: app.dashboard.tests[1].done, timeout=WAIT)
        await wait_for(pilot, lambda: app.dashboard.engine.polls > polls, timeout=WAIT)  # then at once
        assert not app.dashboard.timing


async def test_compare_in_the_tests_pane_fits_its_width_at_80_columns() -> None:
    """At 80x24 no row of the table is wrapped: each line is the heading, the header, a mode's row
    (its total, connections, connect Σ, TTFB and TIME_WAIT on it) or a note."""
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("t")
        app.screen.query_one("#mode", Select).value = "compare"
        app.screen.query_one("#count", Input).value = "3"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.dashboard.tests.get(1) and app.dashboard.tests[1].done, timeout=WAIT)
        assert app.dashboard.tests[1].ok
        pane = app.query_one(TestsPane)
        lines = [line.strip.text.strip() for line in pane.lines]
        assert lines[0].startswith("#1 compare ×3") and "median ttfb  TIME_WAIT" in lines[1]
        rows = [line.split() for line in lines[2:6]]
        assert [row[0] for row in rows] == ["single", "parallel", "keepalive", "pipeline"]
        assert all(len(row) >= 10 and "█" in row[3] for row in rows), rows  # mode, ms, bar, conns, ms ×3, TIME_WAIT
        assert all(len(line.strip.text.rstrip()) <= pane.scrollable_content_region.width for line in pane.lines)
