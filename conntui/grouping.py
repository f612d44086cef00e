"""The table's groups: rows gathered by process, remote host, local port or destination.

`group_lines` turns the filtered, sorted rows into the table's lines: a `Group` header before
each group's rows (none after a collapsed header). A group counts its sockets, by state, and sums
its rows' send and receive rates (from the TCP byte counters: TCP only, no packet capture).
Inside a group the rows keep the sort's order; groups are ordered by the sort column's sum when
it is a byte or rate column, by their socket count for `×N`, and by their name otherwise.
Runs on the engine thread; knows nothing of Textual.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from conntui.model import format_endpoint

if TYPE_CHECKING:
    from conntui.view import Row, SortKey

# The groupings `G` cycles through, in order ("": no groups), and what the status line calls them.
GROUPINGS: tuple[str, ...] = ("", "process", "host", "local_port", "destination")
GROUPING_TITLES = {"process": "process", "host": "remote host", "local_port": "local port",
                   "destination": "destination"}  # fmt: skip
SUMMED_COLUMNS = frozenset({"sent", "received", "tx_rate", "rx_rate", "rate2", "rate10", "rate40", "total"})
STATE_ABBREVIATIONS = {"ESTABLISHED": "ESTAB", "TIME_WAIT": "TW", "CLOSE_WAIT": "CW", "SYN_SENT": "SYN-S",
                       "SYN_RECV": "SYN-R", "FIN_WAIT1": "FW1", "FIN_WAIT2": "FW2", "LAST_ACK": "LACK",
                       "CLOSING": "CLOSING", "CLOSE": "CLOSE", "LISTEN": "LISTEN", "NONE": "UDP"}  # fmt: skip


class GroupKey(NamedTuple):
    """A group header's key in the table: a pair, never equal to a socket's key (a number, or a
    four-tuple of five values)."""

    grouping: str
    value: Any  # the process name, the remote address, the local port, or (remote address, port)


class Group:
    """One group's header line: its rows (all of them, also when collapsed) and their sums.
    A plain slotted class: grouping 100,000 rows by local port may make tens of thousands."""

    __slots__ = ("collapsed", "key", "rows", "rx_rate", "state_counts", "tx_rate")

    def __init__(self, key: GroupKey, collapsed: bool) -> None:
        self.key, self.collapsed = key, collapsed
        self.rows: list[Row] = []
        self.state_counts: dict[str, int] = {}
        self.tx_rate = 0.0  # bytes/s, summed over the rows with TCP byte counters
        self.rx_rate = 0.0

    @property
    def count(self) -> int:
        return len(self.rows)

    def states_text(self) -> str:
        """`12 ESTAB 3 TW 1 LISTEN`: the most common first."""
        by_count = sorted(self.state_counts.items(), key=lambda item: -item[1])
        return " ".join(f"{count} {STATE_ABBREVIATIONS.get(state, state)}" for state, count in by_count)


def _process(row: Row) -> Any:
    return row.sock.process or ""


def _host(row: Row) -> Any:
    return row.sock.remote_ip or ""


def _local_port(row: Row) -> Any:
    return row.sock.local_port


def _destination(row: Row) -> Any:
    return (row.sock.remote_ip or "", row.sock.remote_port)


GROUP_VALUE: dict[str, Callable[[Row], Any]] = {
    "process": _process, "host": _host, "local_port": _local_port, "destination": _destination,
}  # fmt: skip


def group_label(key: GroupKey, host_name: Callable[[str], str | None] = lambda ip: None,
                service: Callable[[int], str | None] = lambda port: None) -> str:  # fmt: skip
    """The group's name as the header shows it (with the host or service name when given one)."""
    value = key.value
    if key.grouping == "process":
        return value or "no owner seen"
    if key.grouping == "local_port":
        name = service(value)
        return f"port {value} {name}" if name else f"port {value}"
    ip, port = (value, None) if key.grouping == "host" else value
    if not ip:
        return "no remote end (listening or unconnected)"
    name = host_name(ip)
    if key.grouping == "host":
        return f"{name} ({ip})" if name else ip
    endpoint = format_endpoint(ip, port)
    return f"{name}:{port} ({endpoint})" if name else endpoint


def group_lines(
    rows: Iterable[Row],
    grouping: str,
    collapsed: Collection[Any],
    sort_key: SortKey,
    sort_column: str,
    reverse: bool,
    name_key: Callable[[GroupKey], Any],
) -> tuple[list[Row | Group], list[Group]]:
    """(the table's lines, the groups in order) for rows already filtered and sorted.

    `collapsed` holds the values of the collapsed groups; `name_key` orders groups by name.
    """
    value_of = GROUP_VALUE[grouping]
    groups: dict[Any, Group] = {}
    for row in rows:
        value = value_of(row)
        group = groups.get(value)
        if group is None:
            group = groups[value] = Group(GroupKey(grouping, value), value in collapsed)
        group.rows.append(row)
        state_counts = group.state_counts
        state_counts[row.sock.state] = state_counts.get(row.sock.state, 0) + 1
        if row.tx_rate:
            group.tx_rate += row.tx_rate
        if row.rx_rate:
            group.rx_rate += row.rx_rate
    ordered = sorted(groups.values(), key=_group_order(sort_key, sort_column, name_key), reverse=reverse)
    lines: list[Row | Group] = []
    for group in ordered:
        lines.append(group)
        if not group.collapsed:
            lines.extend(group.rows)
    return lines, ordered


def _group_order(sort_key: SortKey, sort_column: str, name_key: Callable[[GroupKey], Any]) -> Callable[[Group], Any]:
    if sort_column in SUMMED_COLUMNS:
        counts: Counter[Any] = Counter()
        return lambda group: (sum(max(0, sort_key(row, counts)) for row in group.rows), name_key(group.key))
    if sort_column == "count":
        return lambda group: (group.count, name_key(group.key))
    return lambda group: name_key(group.key)
