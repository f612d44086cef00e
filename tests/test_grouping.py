"""Grouping (`G`): each grouping on real loopback sockets, folding, the filter and the sort inside
groups, the cursor on headers, the peer jump into a folded group; and the pure grouping itself."""

from __future__ import annotations

from textual.widgets import Input

from conntui.grouping import Group, GroupKey, group_label, group_lines
from conntui.model import Socket
from conntui.ui.detail_pane import DetailPane
from conntui.ui.messages import SortRequested
from conntui.ui.socket_table import SocketTable
from conntui.view import COLUMN_BY_NAME, Row
from tests.conftest import wait_for
from tests.test_app import SIZE, make_app, plain, status_text

OURS = "state:listen,established"  # not a TIME_WAIT another test left on a port the kernel gave us again


def groups_of(app) -> dict:
    return {group.key.value: group for group in app.dashboard.state.groups}


async def group_by(pilot, grouping: str) -> None:
    app = pilot.app
    while app.dashboard.state.grouping != grouping:
        wanted = app.dashboard.state.grouping
        await pilot.press("G")
        await wait_for(pilot, lambda: app.dashboard.state.grouping != wanted)  # noqa: B023


def line_text(table: SocketTable, key: object) -> str:
    index = table.state.position(key)
    assert index is not None
    return table.render_line(index - int(table.scroll_y) + 1).text


async def test_every_grouping_counts_the_right_sockets_and_the_filter_applies_inside(sockets) -> None:
    first, second = sockets.listener(), sockets.listener()
    port_a, port_b = first.getsockname()[1], second.getsockname()[1]
    clients = [sockets.connection(first)[0] for _ in range(3)] + [sockets.connection(second)[0] for _ in range(2)]
    client_ports = {client.getsockname()[1] for client in clients}
    app = make_app(f"port:{port_a},{port_b} {OURS}")
    async with app.run_test(size=SIZE) as pilot:
        # every socket, and their owners (the first poll shows the rows, the next one their owners)
        await wait_for(
            pilot, lambda: len(app.dashboard.state.visible) == 12 and app.dashboard.state.visible[0].sock.pids
        )
        process = app.dashboard.state.visible[0].sock.process

        await group_by(pilot, "process")
        assert {value: group.count for value, group in groups_of(app).items()} == {process: 12}
        assert "in 1 group by process" in status_text(app)

        await group_by(pilot, "host")
        assert {value: group.count for value, group in groups_of(app).items()} == {"": 2, "127.0.0.1": 10}

        await group_by(pilot, "local_port")
        counts = {value: group.count for value, group in groups_of(app).items()}
        assert counts == {port_a: 4, port_b: 3, **dict.fromkeys(client_ports, 1)}
        assert groups_of(app)[port_a].state_counts == {"ESTABLISHED": 3, "LISTEN": 1}
        table = app.query_one(SocketTable)
        assert f"▾ port {port_a} — 4 sockets: 3 ESTAB 1 LISTEN" in line_text(table, GroupKey("local_port", port_a))
        lines = app.dashboard.state.lines  # each header, then its rows in the sort's order
        assert [line.key.value for line in lines if isinstance(line, Group)] == sorted(counts)
        assert all(row.sock.local_port == line.key.value for line in lines if isinstance(line, Group)
                   for row in line.rows)  # fmt: skip

        await group_by(pilot, "destination")
        counts = {value: group.count for value, group in groups_of(app).items()}
        expected = {("", None): 2, ("127.0.0.1", port_a): 3, ("127.0.0.1", port_b): 2}
        expected.update({("127.0.0.1", port): 1 for port in client_ports})
        assert counts == expected

        app.query_one("#filter", Input).value = f"port:{port_a},{port_b} state:listen"
        await wait_for(pilot, lambda: len(app.dashboard.state.visible) == 2)
        assert {value: group.count for value, group in groups_of(app).items()} == {("", None): 2}

        await group_by(pilot, "")
        assert app.dashboard.state.lines is app.dashboard.state.visible and not app.dashboard.state.groups


async def test_folding_the_cursor_the_detail_pane_and_the_peer_jump(sockets) -> None:
    listener = sockets.listener()
    port = listener.getsockname()[1]
    client, _server = sockets.connection(listener)
    sockets.connection(listener)
    client_port = client.getsockname()[1]
    app = make_app(f"port:{port} {OURS}")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.dashboard.state.visible) == 5)
        await group_by(pilot, "local_port")
        table = app.query_one(SocketTable)
        header = GroupKey("local_port", port)
        assert table.move_to_key(header)
        await pilot.press("space")  # folds the group: its rows go, its header stays under the cursor
        await wait_for(pilot, lambda: groups_of(app)[port].collapsed)
        state = app.dashboard.state
        assert len(state.lines) == 5 and {GroupKey("local_port", client_port), header} <= set(state.positions)
        assert all(state.position(row.key) is None for row in groups_of(app)[port].rows)
        assert table.cursor_key == header and "▸" in line_text(table, header)

        client_row = next(row for row in state.visible if row.sock.local_port == client_port)
        assert table.move_to_key(client_row.key)
        await pilot.press("enter")  # the detail pane, on a socket
        await pilot.press("g")  # its peer is in the folded group: the group opens, the cursor goes there
        await wait_for(pilot, lambda: table.cursor_row is not None and table.cursor_row.sock.local_port == port)
        assert not groups_of(app)[port].collapsed
        assert table.cursor_row.sock.peer_tuple == client_row.sock.four_tuple

        assert table.move_to_key(header)  # on a header the pane sums up the group
        await wait_for(pilot, lambda: "Group" in plain(app.query_one(DetailPane)))
        assert "3: 2 ESTAB 1 LISTEN" in plain(app.query_one(DetailPane))
        await pilot.press("enter")  # enter on a header folds it too
        await wait_for(pilot, lambda: groups_of(app)[port].collapsed)

        await pilot.press("minus")  # every group folded, then every one open
        await wait_for(pilot, lambda: all(group.collapsed for group in app.dashboard.state.groups))
        assert len(app.dashboard.state.lines) == 3
        await pilot.press("minus")
        await wait_for(pilot, lambda: not any(group.collapsed for group in app.dashboard.state.groups))
        assert len(app.dashboard.state.lines) == 8

        table.post_message(SortRequested("remote_port", True))  # as a click on the title twice
        await wait_for(pilot, lambda: app.dashboard.state.sort_column == "remote_port")
        values = [group.key.value for group in app.dashboard.state.groups]
        assert values == sorted(values, reverse=True)  # among groups: by name, reversed
        remote_ports = [row.sock.remote_port or -1 for row in groups_of(app)[port].rows]
        assert remote_ports == sorted(remote_ports, reverse=True) and remote_ports[-1] == -1  # inside: by the column


def test_groups_sort_by_summed_rates_by_count_or_by_name() -> None:
    rows = [
        Row(Socket(index, "tcp", 4, "127.0.0.1", port, "127.0.0.1", 40000 + index, "ESTABLISHED"), 0.0, tx_rate=rate)
        for index, (port, rate) in enumerate([(80, 10.0), (80, 5.0), (443, 100.0), (22, 0.0), (22, 0.0), (22, 0.0)])
    ]

    def order(column: str) -> list[object]:
        _lines, groups = group_lines(rows, "local_port", set(), COLUMN_BY_NAME[column].sort_key, column, False,
                                     lambda key: key.value)  # fmt: skip
        return [group.key.value for group in groups]

    assert order("tx_rate") == [22, 80, 443]  # 0, 15, 100 bytes/s
    assert order("count") == [443, 80, 22]  # 1, 2, 3 sockets
    assert order("state") == [22, 80, 443]  # by name
    lines, groups = group_lines(rows, "local_port", {80}, COLUMN_BY_NAME["state"].sort_key, "state", False,
                                lambda key: key.value)  # fmt: skip
    assert [line.key for line in lines if isinstance(line, Row)] == [3, 4, 5, 2]  # 80's rows folded away
    assert groups[1].tx_rate == 15.0 and groups[1].states_text() == "2 ESTAB"
    assert group_label(GroupKey("destination", ("10.0.0.1", 443)), lambda ip: "example.org") == \
        "example.org:443 (10.0.0.1:443)"  # fmt: skip
    assert group_label(GroupKey("host", "")) == "no remote end (listening or unconnected)"
