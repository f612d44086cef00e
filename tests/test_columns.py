"""The table's columns at the terminal sizes people have: which show, how they narrow, how they scroll and sort.

The dashboard polls real loopback sockets: two SO_REUSEPORT listeners sharing one four-tuple
(the `×2` mark), one of them also held by a child process (two owners), and a connection to a
third listener.
"""

from __future__ import annotations

from collections import Counter

from textual import events
from textual.app import App, ComposeResult

from conntui.changes import Changes
from conntui.model import Snapshot, Socket
from conntui.poller import Poller
from conntui.sources import open_source
from conntui.ui.app import ConntuiApp
from conntui.ui.messages import SortRequested
from conntui.ui.socket_table import MORE_HINT, SocketTable, lay_out
from conntui.view import COLUMN_BY_NAME, COLUMNS, ConnectionView, Row, format_bytes
from tests.conftest import wait_for

ESSENTIAL = {"proto", "local", "remote", "state", "pids", "process", "count"}
TODAYS_LAYOUT = ["proto", "local_ip", "local_port", "remote_ip", "remote_port", "state", "pids", "process", "user",
                 "age", "count"]  # fmt: skip
METRICS = ["rtt", "retrans", "sent", "received", "tx_rate", "rx_rate", "rate2", "rate10", "rate40", "total"]


class Scene:
    """Two listeners on one port (the first also held by a child) and a connection to a third listener."""

    def __init__(self, sockets, child_holding) -> None:
        first = sockets.listener(reuseport=True)
        self.port = first.getsockname()[1]
        sockets.listener(reuseport=True, port=self.port)
        self.child_pid = child_holding(first).pid
        other = sockets.listener()
        self.other_port = other.getsockname()[1]
        client, _server = sockets.connection(other)
        self.client_port = client.getsockname()[1]

    def app(self) -> ConntuiApp:
        return ConntuiApp(Poller(open_source(), "tcp"), interval=0.2, filter_text=f"port:{self.port},{self.other_port}")

    def complete(self, app: ConntuiApp) -> bool:
        """Every socket polled, and the child seen as the shared listener's second owner."""
        rows = app.dashboard.state.visible
        return len(rows) == 5 and any(len(row.sock.pids) == 2 for row in rows)


def line_of(table: SocketTable, sock_key: object) -> str:
    """The drawn text of a socket's row (it must be on screen)."""
    index = table.state.position(sock_key)
    assert index is not None
    return table.render_line(index - int(table.scroll_y) + 1).text


def header(table: SocketTable) -> str:
    return table.render_line(0).text


def unmarked(title_line: str) -> str:
    """A header without its sort marker."""
    return title_line.replace("▲", " ").replace("▼", " ")


async def test_at_80x24_every_row_shows_the_essentials_and_the_rest_scrolls_into_view(sockets, child_holding) -> None:
    scene = Scene(sockets, child_holding)
    app = scene.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: scene.complete(app))
        table = app.query_one(SocketTable)
        await pilot.pause()
        assert {column.name for column in table.on_screen} >= ESSENTIAL
        shared = next(row for row in app.dashboard.state.visible if len(row.sock.pids) == 2)
        text = line_of(table, shared.sock.key)
        assert "×2" in text and f"{shared.sock.pids[0]} +1" in text and str(scene.child_pid) not in text.split()
        assert f"127.0.0.1:{scene.port}" in text and shared.sock.process and shared.sock.process[:6] in text
        client = next(row for row in app.dashboard.state.visible if row.sock.local_port == scene.client_port)
        assert f"127.0.0.1:{scene.client_port}" in line_of(table, client.sock.key)
        assert f"127.0.0.1:{scene.other_port}" in line_of(table, client.sock.key)

        await pilot.press("m")  # ten more columns: no room for them, so they wait to the right
        assert [column.name for column in table.columns][-len(METRICS) :] == METRICS
        assert "RTT ms" in header(table)  # `m` brings them into view
        await pilot.press(*["left"] * 30)
        assert table.scroll_x == 0 and header(table).endswith(MORE_HINT)
        assert {column.name for column in table.on_screen} >= ESSENTIAL
        table.post_message(events.MouseScrollDown(table, 5, 5, 0, 1, 0, shift=True, meta=False, ctrl=False))
        await wait_for(pilot, lambda: table.scroll_x > 0)  # shift+wheel scrolls sideways
        await pilot.press(*["right"] * 30)  # column by column, to the very last one
        assert table.on_screen[-1].name == "total" and "Total" in header(table)
        assert not header(table).endswith(MORE_HINT) and header(table).startswith("←")


async def test_at_120x40_the_layout_is_at_least_todays(sockets, child_holding) -> None:
    scene = Scene(sockets, child_holding)
    app = scene.app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: scene.complete(app))
        table = app.query_one(SocketTable)
        await pilot.pause()
        assert [column.name for column in table.on_screen] == TODAYS_LAYOUT
        assert MORE_HINT not in header(table)
        for title in ("Proto", "Local address", "LPort", "Remote address", "RPort", "State", "PIDs", "Process",
                      "User", "Age", "×N"):  # fmt: skip
            assert title in header(table)


async def test_at_200x50_the_metrics_show_too(sockets, child_holding) -> None:
    scene = Scene(sockets, child_holding)
    app = scene.app()
    async with app.run_test(size=(200, 50)) as pilot:
        await wait_for(pilot, lambda: scene.complete(app))
        table = app.query_one(SocketTable)
        await pilot.pause()
        assert [column.name for column in table.on_screen] == TODAYS_LAYOUT + METRICS
        assert MORE_HINT not in header(table)


async def test_s_sorts_by_each_column_on_screen_in_turn_and_the_sort_moves_no_column(sockets, child_holding) -> None:
    scene = Scene(sockets, child_holding)
    for size in ((80, 24), (200, 50), None):  # None: just wide enough for every column, with no room to spare
        app = scene.app()
        async with app.run_test(size=size or (120, 40)) as pilot:
            await wait_for(pilot, lambda: scene.complete(app))  # noqa: B023
            table = app.query_one(SocketTable)
            if size is None:  # sorted by PIDs, whose marker has room in its column (a title-wide one's has not)
                table.post_message(SortRequested("pids", False))
                await wait_for(pilot, lambda: app.dashboard.state.sort_column == "pids")  # noqa: B023
                await pilot.pause()
                await pilot.resize_terminal(120 - (table.scrollable_content_region.width - table.columns_width), 40)
                await pilot.pause()
                assert table.scrollable_content_region.width == table.columns_width
            await pilot.pause()
            shown = [column.name for column in table.on_screen]
            titles = unmarked(header(table))
            chosen = []
            for _ in shown:
                before = app.dashboard.state
                await pilot.press("s")
                # the sort's own state, not a poll's that came first: `s` always moves to another column
                await wait_for(pilot, lambda: app.dashboard.state.sort_column != before.sort_column)  # noqa: B023
                chosen.append(app.dashboard.state.sort_column)
                await pilot.pause()
                # the marker takes no room: a column as wide as its title stays on screen when sorted by
                assert [column.name for column in table.on_screen] == shown, chosen[-1]
                assert unmarked(header(table)) == titles, chosen[-1]  # every title where it was
            assert sorted(chosen) == sorted(shown)  # each column on screen once, none off it


def test_every_column_sorts_the_view_by_its_own_key(sockets, child_holding) -> None:
    Scene(sockets, child_holding)
    poller = Poller(open_source(), "tcp")
    try:
        snapshot, changes = poller.poll()
    finally:
        poller.close()
    view = ConnectionView(clock=lambda: 0.0)
    view.apply(snapshot, changes)
    counts = snapshot.tuple_counts()
    for column in COLUMNS:
        for reverse in (False, True):
            view.set_sort(column.name, reverse)
            keys = [column.sort_key(row, counts) for row in view.state().visible]
            assert keys == sorted(keys, reverse=reverse), column.name
    view.set_sort("local")  # a joined endpoint sorts by address, then port, numerically
    ours = [row.sock for row in view.state().visible if row.sock.local_ip == "127.0.0.1"]
    assert [sock.local_port for sock in ours] == sorted(sock.local_port for sock in ours)


def test_narrow_layout_joins_endpoints_drops_by_priority_then_squeezes() -> None:
    names = [column.name for column in COLUMNS if not column.metric]
    roomy = {name: 8 for name in names} | {"local": 47, "remote": 47, "local_ip": 39, "remote_ip": 39}
    wide = lay_out([COLUMN_BY_NAME[name] for name in names], roomy, 200)
    assert [column.name for column in wide.columns] == TODAYS_LAYOUT and not wide.hidden

    narrow = lay_out([COLUMN_BY_NAME[name] for name in names], roomy, 80)
    kept = [column.name for column in narrow.columns[: narrow.first_screen]]
    assert kept == ["proto", "local", "remote", "state", "pids", "process", "count"]
    assert [column.name for column in narrow.columns[narrow.first_screen :]] == ["user", "age"]
    last = narrow.first_screen - 1
    assert narrow.starts[last] + narrow.widths[last] + 1 <= 80 - len(MORE_HINT)  # the kept ones fit beside the hint
    assert narrow.starts[narrow.first_screen] >= 80  # and nothing of the others shows on the first screen
    widths = dict(zip(kept, narrow.widths, strict=False))
    assert widths["local"] < 47 and widths["local"] >= COLUMN_BY_NAME["local"].min_width


def test_a_cut_endpoint_keeps_its_port() -> None:
    from conntui.ui.socket_table import _fit

    assert _fit("[2001:db8::1234:5678]:443", 13, COLUMN_BY_NAME["local"]).endswith("]:443")
    assert _fit("192.168.100.200:55555", 15, COLUMN_BY_NAME["remote"]).endswith(":55555")


def test_bytes_in_human_units() -> None:
    assert [format_bytes(n) for n in (None, 0, 512, 1536, 71 * 2**20, 3 * 2**30)] == [
        "-", "0 B", "512 B", "1.5 KiB", "71.0 MiB", "3.0 GiB"
    ]  # fmt: skip
    sock = Socket(1, "tcp", 4, "127.0.0.1", 1, "127.0.0.1", 2, "ESTABLISHED", bytes_sent=71 * 2**20, bytes_received=0)
    row = Row(sock, 0.0)
    assert COLUMN_BY_NAME["sent"].text(row, Counter(), 0.0) == "71.0 MiB"
    assert COLUMN_BY_NAME["received"].text(row, Counter(), 0.0) == "0 B"


class TableHost(App[None]):
    """The socket table alone, with the dashboard's stylesheet."""

    CSS_PATH = ConntuiApp.CSS_PATH

    def compose(self) -> ComposeResult:
        yield SocketTable(id="sockets")


async def test_a_wider_row_scrolled_past_moves_no_column_when_it_leaves_the_screen() -> None:
    rows = [Socket(index, "tcp", 4, "127.0.0.1", 40000 + index, "127.0.0.1", 80, "ESTABLISHED", 0, 0, (100,),
                   "short", "u") for index in range(40)]  # fmt: skip
    rows[30] = rows[30]._replace(process="a-longer-process-name")  # far below the first screen
    view = ConnectionView(clock=lambda: 0.0)
    view.apply(Snapshot(tuple(rows)), Changes())
    app = TableHost()
    async with app.run_test(size=(80, 12)) as pilot:
        table = app.query_one(SocketTable)
        table.show(view.state())
        await pilot.pause()
        before = header(table)
        table.scroll_to(y=28, animate=False, immediate=True)
        await pilot.pause()
        beside_it = header(table)
        assert beside_it != before  # the long name takes room: the layout makes it
        table.scroll_to(y=0, animate=False, immediate=True)
        await pilot.pause()
        after = header(table)
        assert after == beside_it  # and keeps it: the columns do not jump back and forth as rows scroll by
