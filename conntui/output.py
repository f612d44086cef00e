"""`conntui list` renderings of a snapshot: JSON, CSV and a plain text table.

JSON and CSV read one field table (`FIELDS`: name, value, whether it is the system's own text);
the plain table reads the dashboard's own columns (`conntui.view.COLUMNS`), so its cells are the
dashboard's.

The table and the CSV are read by people: their text passes through `printable`, so a process
name cannot write control sequences to the terminal or start a row of its own. JSON carries the
real value, escaped by the encoder.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter, itemgetter

from conntui.collector import collector_paused
from conntui.model import FourTuple, OwnerEntries, Snapshot, Socket
from conntui.text import cell_width, fit_cells, printable


@dataclass(frozen=True, slots=True)
class Field:
    """One field of `list --json` and `--csv`, in their order."""

    name: str
    value: Callable[[Socket, Counter[FourTuple]], object] | None = None  # None: the socket's attribute `name`
    system_text: bool = False  # the system's own string (a process or user name): escaped where people read it


FIELDS: tuple[Field, ...] = (
    Field("proto"),
    Field("family"),
    Field("local_ip"),
    Field("local_port"),
    Field("remote_ip"),
    Field("remote_port"),
    Field("state"),
    Field("pids", lambda sock, counts: list(sock.pids)),
    Field("process", system_text=True),
    Field("user", system_text=True),
    Field("tuple_count", lambda sock, counts: counts[sock.four_tuple]),
    Field("rtt_ms"),
    Field("retrans"),
    Field("bytes_sent"),
    Field("bytes_received"),
)
FIELD_NAMES = tuple(field.name for field in FIELDS)
# The plain table: the dashboard's own columns (`conntui.view`, imported for the table only), endpoints as `ip:port`.
TABLE_COLUMNS = ("proto", "local", "remote", "state", "pids", "process", "user", "count")


def records(snapshot: Snapshot, sockets: Sequence[Socket]) -> list[dict[str, object]]:
    """The JSON objects of `list --json`, one per socket, fields in `FIELDS` order: the plain
    definition that the fast writers below (`json_pieces`, `to_csv`) are held to by tests."""
    counts = snapshot.tuple_counts()
    named = [(field.name, _getter(field, counts)) for field in FIELDS]
    with collector_paused():
        return [{name: get(sock) for name, get in named} for sock in sockets]


def _getter(field: Field, counts: Counter[FourTuple]) -> Callable[[Socket], object]:
    value = field.value
    if value is None:
        return attrgetter(field.name)
    return lambda sock: value(sock, counts)


class _JsonText(dict[object, str]):
    """A value -> its JSON text, encoded once per distinct value (a host has few addresses, names, pid
    sets and RTTs); an (pids, process, user) owner -> its three fields, named."""

    def __missing__(self, value: object) -> str:
        if isinstance(value, tuple) and len(value) == 3 and isinstance(value[0], tuple):
            pids, process, user = value
            text = f'"pids":{self[pids]},"process":{self[process]},"user":{self[user]}'
        else:
            text = json.dumps(list(value) if isinstance(value, tuple) else value, separators=(",", ":"))
        self[value] = text
        return text


def to_json(snapshot: Snapshot, sockets: Sequence[Socket]) -> str:
    """`json.dumps(records(snapshot, sockets))`, compact, written row by row (`JsonRows`; a test
    holds the two equal)."""
    return "".join(json_pieces(snapshot, sockets))


def json_pieces(snapshot: Snapshot, sockets: Sequence[Socket]) -> Iterator[str]:
    """`to_json`'s text in pieces, to be written as they come (`JsonRows.pieces`)."""
    return JsonRows(sockets, snapshot.tuple_counts()).pieces()


_OWNER = itemgetter(*(Socket._fields.index(name) for name in ("pids", "process", "user")))
_HEAD, _TAIL = itemgetter(0), itemgetter(1)
JSON_PIECE_ROWS = 2000


class JsonRows:
    """`list --json`'s rows, encoded in two steps: what of each row does not depend on its owner
    when made (`list` does it while its owner scan still runs in a forked child), the owner's three
    fields (`pids`, `process`, `user`) in `pieces`.

    Each distinct value is encoded once (`_JsonText`), the rest written by f-strings: at 20,000
    sockets ~15 ms where building the dicts and encoding them takes 82. (Written by two processes,
    a half each, it takes longer: a forked child reading the rows bumps their reference counts, and
    every page it touches is copied, for it and for the parent: 196 ms against 130 at 100,000.)"""

    def __init__(self, sockets: Sequence[Socket], counts: Counter[FourTuple]) -> None:
        """`counts`: the sockets per four-tuple of the whole snapshot (`Snapshot.tuple_counts`)."""
        self._text = text = _JsonText()
        text[None] = "null"
        count = counts.get if counts else None  # most hosts: every four-tuple is held once
        with collector_paused():
            # Each row's text before the owner's fields, a comma first (the first row's is cut in
            # `pieces`), and after them: made in one pass, a pair per row (20 ms less than two).
            self._halves = [
                (f',{{"proto":{text[proto]},"family":{family},"local_ip":{text[local_ip]},"local_port":{local_port},'
                 f'"remote_ip":{text[remote_ip]},"remote_port":{"null" if remote_port is None else remote_port},'
                 f'"state":{text[state]},',
                 f',"tuple_count":{count((proto, local_ip, local_port, remote_ip, remote_port), 1) if count else 1},'
                 f'"rtt_ms":{text[rtt_ms]},"retrans":{"null" if retrans is None else retrans},'
                 f'"bytes_sent":{"null" if bytes_sent is None else bytes_sent},'
                 f'"bytes_received":{"null" if bytes_received is None else bytes_received}}}')
                for (_key, proto, family, local_ip, local_port, remote_ip, remote_port, state, _inode, _uid, _pids,
                     _process, _user, rtt_ms, _rttvar_ms, retrans, _cwnd, bytes_sent, bytes_received) in sockets
            ]  # fmt: skip
            self._own_owners = list(map(text.__getitem__, map(_OWNER, sockets)))  # the owner fields each row has

    def pieces(
        self, found: Sequence[tuple[int, ...] | None] | None = None, entries: OwnerEntries | None = None
    ) -> Iterator[str]:
        """The JSON array, each row with the owner fields it came with or, with `found` (one per
        row, in their order), those (`entries`) of the pids found for it where some were (not None).
        In pieces of `JSON_PIECE_ROWS` rows to be written as they come: each piece's memory is reused
        by the next instead of new pages for the whole text (20,000 sockets in a new process: 17 ms,
        against 26 as one string). Joined in C: each distinct owner's fields are encoded once."""
        halves, owners = self._halves, self._own_owners
        if found is not None and entries:
            found_text = {pids: self._text[entry] for pids, entry in entries.items()}
            owners = list(map(found_text.get, found, owners))
        yield "["
        for start in range(0, len(halves), JSON_PIECE_ROWS):
            end = start + JSON_PIECE_ROWS
            some = halves[start:end]
            rows = zip(map(_HEAD, some), owners[start:end], map(_TAIL, some), strict=True)
            piece = "".join(chain.from_iterable(rows))
            yield piece[1:] if start == 0 else piece
        yield "]"


def to_csv(snapshot: Snapshot, sockets: Sequence[Socket]) -> str:
    """`list --csv`: the `FIELDS` of each socket, a row each, people's text escaped (`printable`);
    written as `to_json` is, field by field in C (`csv.writer.writerows`), each distinct owner's
    cells made once (a test holds it to the cells of `records`)."""
    counts = snapshot.tuple_counts()
    count = counts.get if counts else None  # most hosts: every four-tuple is held once
    owner_cells = _OwnerCells()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")  # None is written as an empty cell
    writer.writerow(FIELD_NAMES)
    with collector_paused():
        writer.writerows([
            (proto, family, local_ip, local_port, remote_ip, remote_port, state, *owner_cells[pids, process, user],
             count((proto, local_ip, local_port, remote_ip, remote_port), 1) if count else 1,
             rtt_ms, retrans, bytes_sent, bytes_received)
            for (_key, proto, family, local_ip, local_port, remote_ip, remote_port, state, _inode, _uid, pids,
                 process, user, rtt_ms, _rttvar_ms, retrans, _cwnd, bytes_sent, bytes_received) in sockets
        ])  # fmt: skip
    return out.getvalue()


class _OwnerCells(dict[tuple[tuple[int, ...], str | None, str | None], tuple[str, str, str]]):
    """An owner (pids, process, user) -> its three CSV cells: pids space-separated, names escaped."""

    def __missing__(self, owner: tuple[tuple[int, ...], str | None, str | None]) -> tuple[str, str, str]:
        pids, process, user = owner
        cells = self[owner] = (" ".join(map(str, pids)), printable(process or ""), printable(user or ""))
        return cells


def to_table(snapshot: Snapshot, sockets: Sequence[Socket]) -> str:
    """The dashboard's cells, as wide as each column needs."""
    from conntui.view import COLUMN_BY_NAME, Row

    columns = [COLUMN_BY_NAME[name] for name in TABLE_COLUMNS]
    counts = snapshot.tuple_counts()
    texts = [[column.title for column in columns]]
    texts += [[text(row, counts, 0.0) for text in [column.text for column in columns]]
              for row in (Row(sock, first_seen=0.0) for sock in sockets)]  # fmt: skip
    # Widths in terminal cells: a process name may hold wide characters (counted by `cell_width`
    # only in a column that has some: one C-level test per column, `isascii`, decides).
    widths = [max(map(len if "".join(column).isascii() else cell_width, column)) for column in zip(*texts, strict=True)]
    ascii_pad = "  ".join(f"{{:<{width}}}" for width in widths)
    return "".join(
        (ascii_pad.format(*line) if "".join(line).isascii() else "  ".join(map(fit_cells, line, widths))).rstrip()
        + "\n"
        for line in texts
    )
