"""`conntui list` and the argument contract, run as a user runs them: a real process."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import subprocess
import sys

import pytest

from conntui import __version__

FIELDS = [
    "proto",
    "family",
    "local_ip",
    "local_port",
    "remote_ip",
    "remote_port",
    "state",
    "pids",
    "process",
    "user",
    "tuple_count",
    "rtt_ms",
    "retrans",
    "bytes_sent",
    "bytes_received",
]


def conntui(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conntui", *args], capture_output=True, text=True, timeout=60)


def test_list_json_has_exact_fields_and_our_sockets(sockets) -> None:
    listener = sockets.listener()
    client, _server = sockets.connection(listener)
    port = listener.getsockname()[1]
    result = conntui("list", "--json", "--port", str(port))
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert all(list(row) == FIELDS for row in rows)
    by_state = {(row["state"], row["local_port"]): row for row in rows}
    listen = by_state[("LISTEN", port)]
    assert listen["remote_ip"] is None and listen["remote_port"] is None
    assert listen["pids"] == [os.getpid()] and listen["process"] and listen["tuple_count"] == 1
    mine = by_state[("ESTABLISHED", client.getsockname()[1])]
    assert (mine["proto"], mine["family"], mine["local_ip"]) == ("tcp", 4, "127.0.0.1")
    assert (mine["remote_ip"], mine["remote_port"]) == ("127.0.0.1", port)
    assert len(rows) == 3  # the listener and both ends: nothing else has this port


def test_list_csv_matches_json_fields(sockets) -> None:
    listener = sockets.listener(reuseport=True)
    sockets.listener(reuseport=True, port=listener.getsockname()[1])
    result = conntui("list", "--csv", "--filter", f"lport:{listener.getsockname()[1]} state:listen", "--kind", "tcp4")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == FIELDS
    assert len(rows) == 2 and {row["tuple_count"] for row in rows} == {"2"}
    assert rows[0]["pids"] == str(os.getpid()) and rows[0]["remote_ip"] == ""


def test_list_table_is_human_readable(sockets) -> None:
    listener = sockets.listener()
    # state:listen: a TIME_WAIT of an earlier test may share the port number
    result = conntui("list", "--port", str(listener.getsockname()[1]), "--filter", "state:listen")
    assert result.returncode == 0
    header, row = result.stdout.splitlines()
    assert header.split()[:3] == ["Proto", "Local", "address"]
    assert f"127.0.0.1:{listener.getsockname()[1]}" in row and "LISTEN" in row


def test_list_kind_udp_only_lists_udp(sockets) -> None:
    import socket

    udp = sockets.keep(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    udp.bind(("127.0.0.1", 0))
    rows = json.loads(conntui("list", "--json", "--kind", "udp").stdout)
    assert rows and {row["proto"] for row in rows} == {"udp"}
    assert any(row["local_port"] == udp.getsockname()[1] and row["state"] == "NONE" for row in rows)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["list", "--filter", "state:LISTEN foo:1"], "foo:1"),
        (["list", "--port", "70000"], "70000"),
        (["list", "--kind", "sctp"], "sctp"),
        (["list", "--backend", "carrier-pigeon"], "carrier-pigeon"),
        (["list", "--json", "--csv"], "not allowed"),
        (["--interval", "0"], "0.1–3600 s"),
        (["--interval", "inf"], "0.1–3600 s"),
        (["--interval", "1e308"], "0.1–3600 s"),
        (["--interval", "nan"], "0.1–3600 s"),
        (["--interval", "-1"], "0.1–3600 s"),
        (["--interval=0.01"], "0.1–3600 s"),
        (["list", "--filter", f"port:{'9' * 4301}"], "(4306 characters)': port 99"),  # named, shortened
        (["list", "--filter", "port:\x1b[2J"], "'port:\\x1b[2J'"),  # named, and escaped: no escape code written
        (["--interval", "soon"], "not a number"),
        (["--interval", "1_0"], "not a number"),
        (["--interval", "\u0663"], "not a number"),  # an Arabic-Indic 3
        (["probe", "http://127.0.0.1:9/", "--timeout", "inf"], "0.01–3600 s"),
        (["probe", "http://127.0.0.1:9/", "--hold", "nan"], "0–3600 s"),
        (["probe", "http://127.0.0.1:9/", "-n", "9" * 5000], "whole number from 1 to 100"),
        (["list", "--port", "9" * 5000], "(5000 characters) is out of range"),
        (["list", "--port", "nosuchservice"], "unknown port or service name"),
        (["list", "--bogus", "\x1b[2J"], "conntui list: error: unrecognized arguments: --bogus \\x1b[2J"),  # escaped
        (["serve", "--bogus"], "conntui serve: error: unrecognized arguments: --bogus"),
        (["probe", "http://127.0.0.1:9/\udcff"], "the URL is not valid UTF-8"),  # the byte 0xff in argv
        (["--filter", "port:"], "port:"),
        (["frobnicate"], "frobnicate"),
        (["--history", "9" * 5000], "(5000 characters)' must be a whole number from 1 to 1,000,000"),
        (["--history", "0"], "'0' must be a whole number from 1 to 1,000,000"),
        (["--history", "1e3"], "must be a whole number"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = conntui(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("how", [["--filter", "-state:listen"], ["--filter=-state:listen"]])
def test_a_negated_first_filter_term_is_a_filter_not_an_option(how: list[str], sockets) -> None:
    listener = sockets.listener()
    sockets.connection(listener)
    port = str(listener.getsockname()[1])
    result = conntui("list", "--json", "--port", port, *how)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    # (a TIME_WAIT of an earlier test may share the port number: only the live ones are ours)
    assert [row["state"] for row in rows if row["state"] != "TIME_WAIT"] == ["ESTABLISHED"] * 2
    dashboard = conntui(*how)  # accepted there too: what stops it is only that this is no terminal
    assert dashboard.returncode == 2 and "needs a terminal" in dashboard.stderr


def test_selection_given_before_the_subcommand_is_kept() -> None:
    from conntui.cli import build_parser, parse_args

    args = parse_args(build_parser(), ["--filter", "-state:listen", "--port", "22", "list", "--json"])
    assert (args.filter, args.port, args.kind) == ("-state:listen", ["22"], "inet")


@pytest.mark.parametrize("command", [[], ["list"]])
def test_help_shows_every_filter_term(command: list[str]) -> None:
    from conntui.filters import filter_help_rows

    result = conntui(*command, "--help")
    assert result.returncode == 0
    for syntax, meaning in filter_help_rows():
        assert f"{syntax}  " in result.stdout and meaning in result.stdout  # one line each, not rewrapped


@pytest.mark.parametrize(
    ("args", "prefix", "status"),
    [
        (["list", "--filter", "foo:1"], "conntui list: error: bad filter term", 2),
        (["list", "--port", "70000"], "conntui list: error: argument --port", 2),
        (["--filter", "foo:1"], "conntui: error: bad filter term", 2),
        (["--filter", "port:22"], "conntui: error: the dashboard needs a terminal", 2),
        (["probe", "http://127.0.0.1:9/\udcff"], "conntui probe: error: the URL is not valid UTF-8", 2),
        (["probe", "http://127.0.0.1:9/", "--timeout", "1"], "conntui probe: error: connect:", 1),
        (["serve", "--port", "x"], "conntui serve: error: argument --port", 2),
    ],
)
def test_every_error_line_starts_with_its_command(args: list[str], prefix: str, status: int) -> None:
    result = conntui(*args)
    assert result.returncode == status
    assert result.stderr.startswith(prefix), result.stderr


def test_version() -> None:
    result = conntui("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"conntui {__version__}"


def test_list_does_not_import_textual() -> None:
    code = "import sys; from conntui.cli import main; main(['list', '--json']); assert 'textual' not in sys.modules"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("backend", ["netlink", "proc", "psutil"])
def test_list_backends_all_work(backend: str, sockets) -> None:
    listener = sockets.listener()
    port = str(listener.getsockname()[1])  # lport: a stray TIME_WAIT may have had this as its remote port
    rows = json.loads(
        conntui("list", "--json", "--backend", backend, "--filter", f"lport:{port} !state:time-wait").stdout
    )
    assert [row["state"] for row in rows] == ["LISTEN"]


def test_list_table_shows_a_shared_socket_as_its_first_owner_plus_the_others(sockets, child_holding) -> None:
    listener = sockets.listener()
    child_holding(listener)
    port = str(listener.getsockname()[1])
    selection = ("--port", port, "--filter", "state:listen")
    (record,) = json.loads(conntui("list", "--json", *selection).stdout)
    assert len(record["pids"]) == 2 and os.getpid() in record["pids"]  # JSON keeps every owner
    _header, row = conntui("list", *selection).stdout.splitlines()
    assert f"  {record['pids'][0]} +1  " in row and str(record["pids"][1]) not in row.split()


def test_list_into_a_closed_pipe_is_quiet(sockets) -> None:
    listener = sockets.listener()
    for _ in range(500):  # more output than a pipe holds: the writer outlives `head -1`
        sockets.connection(listener)
    result = subprocess.run(
        f"{sys.executable} -m conntui list --port {listener.getsockname()[1]} | head -1",
        shell=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.stdout.startswith("Proto") and result.stderr == ""


def test_the_json_and_csv_writers_write_what_the_json_and_csv_modules_would(sockets) -> None:
    import csv
    import io

    from conntui.model import Snapshot, Socket
    from conntui.output import FIELDS, JSON_PIECE_ROWS, json_pieces, records, to_csv, to_json
    from conntui.text import printable

    def csv_of(rows: list[dict[str, object]]) -> str:  # each field's value as a cell, people's text escaped
        def cell(value: object, system_text: bool) -> object:
            if value is None:
                return ""
            if isinstance(value, list):
                return " ".join(map(str, value))
            return printable(str(value)) if system_text else value

        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([field.name for field in FIELDS])
        writer.writerows([cell(row[field.name], field.system_text) for field in FIELDS] for row in rows)
        return out.getvalue()

    from conntui.poller import Poller
    from conntui.sources import open_source

    listener = sockets.listener()
    sockets.connection(listener)
    poller = Poller(open_source(), "inet")
    try:
        snapshot = poller.one_shot().snapshot()
    finally:
        poller.close()
    hostile = Socket(1, "tcp", 6, "::1", 80, None, None, "LISTEN", 7, 0, (1, 2), 'a"b\\c\x1b\u202e\udcff é', "ü\n",
                     0.125, 0.5, 3, 10, 2**40, 0)  # fmt: skip
    reused = hostile._replace(key=2, pids=(3,), process="other", rtt_ms=1e-05)  # the same four-tuple (SO_REUSEPORT)
    shown = [*snapshot.sockets, hostile, reused]
    snapshot = Snapshot(tuple(shown), snapshot.processes)
    assert to_json(snapshot, shown) == json.dumps(records(snapshot, shown), separators=(",", ":"))
    assert [row["tuple_count"] for row in json.loads(to_json(snapshot, shown))][-2:] == [2, 2]
    many = [hostile._replace(key=index, local_port=index % 65536) for index in range(2 * JSON_PIECE_ROWS + 1)]
    written = "".join(json_pieces(Snapshot(tuple(many)), many))  # as `list` writes it, piece by piece
    assert written == json.dumps(records(Snapshot(tuple(many)), many), separators=(",", ":"))
    alone = Snapshot(tuple(snapshot.sockets[:-1]), snapshot.processes)  # every four-tuple held once
    assert to_json(alone, alone.sockets) == json.dumps(records(alone, alone.sockets), separators=(",", ":"))
    assert len(json.loads(to_json(snapshot, shown))) == len(shown) > 3
    assert to_csv(snapshot, shown) == csv_of(records(snapshot, shown))
    assert to_csv(alone, alone.sockets) == csv_of(records(alone, alone.sockets))


def test_list_json_of_every_socket_is_the_snapshots_json_though_encoded_before_the_owners_were_known(sockets) -> None:
    """`list --json` with no filter encodes each row but its owner while the owner scan runs
    (`JsonRows`), and adds the owners after: the same text as the snapshot's JSON."""
    from conntui.model import TupleCounts
    from conntui.output import JsonRows, to_json
    from conntui.poller import Poller
    from conntui.sources import open_source

    listener = sockets.listener()
    sockets.connection(listener)
    poller = Poller(open_source(), "inet")
    try:
        poll = poller.one_shot()
    finally:
        poller.close()
    rows = JsonRows(poll.sockets, TupleCounts.of(poll.sockets))
    written = "".join(rows.pieces(*poll.owner_pids()))
    snapshot = poll.snapshot()
    assert written == to_json(snapshot, snapshot.sockets)
    mine = [row for row in json.loads(written) if row["local_port"] == listener.getsockname()[1]]
    assert len(mine) == 2 and all(row["pids"] == [os.getpid()] for row in mine)
    assert poll.hidden_owners() == (snapshot.hidden_owners, snapshot.unreadable_processes)


def test_list_gives_the_same_rows_in_listing_order_whether_its_owner_scan_starts_first_or_later(sockets) -> None:
    """`conntui list` starts its owner scan before its imports (conntui.launcher); with `--backend`
    given the command line starts it, later. Same rows, owners and order either way."""
    listener = sockets.listener()
    for _ in range(3):
        sockets.connection(listener)
    selection = ("--port", str(listener.getsockname()[1]), "--filter", "!state:time-wait")
    early = json.loads(conntui("list", "--json", *selection).stdout)
    later = json.loads(conntui("list", "--json", "--backend", "auto", *selection).stdout)
    assert len(early) == 7 and all(row["pids"] == [os.getpid()] for row in early)
    keys = [(row["local_port"], row["remote_port"], row["state"], row["pids"]) for row in early]
    assert keys == [(row["local_port"], row["remote_port"], row["state"], row["pids"]) for row in later]
    order = [
        (row["proto"], row["family"], row["local_port"], row["local_ip"], row["remote_port"] or 0) for row in early
    ]
    assert order == sorted(order)


def test_forked_work_gives_its_bytes_or_none_when_it_fails_and_a_cancelled_child_is_gone(monkeypatch) -> None:
    import time

    import conntui.forked as forked

    monkeypatch.setattr(forked, "worth_forking", lambda: True)
    done = forked.run_forked(lambda pipe: pipe.write(str(os.getpid()).encode()))
    assert done is not None
    assert done.result() not in (None, str(os.getpid()).encode())  # another process did it
    failed = forked.run_forked(lambda pipe: pipe.write(bytes(1 // 0)))
    assert failed is not None and failed.result() is None
    slow = forked.run_forked(lambda pipe: (pipe.write(b"first"), pipe.flush(), time.sleep(60)))
    assert slow is not None
    assert slow.read(5) == b"first"  # read as soon as written, while the child still works
    slow.cancel()
    with pytest.raises(ChildProcessError):  # ended and reaped: no such child any more
        os.waitpid(slow.pid, os.WNOHANG)
    slow.cancel()  # twice: nothing (its pid may be another process's by now)


def test_ctrl_c_during_list_ends_it_quietly() -> None:
    import signal
    import time

    import psutil

    command = [sys.executable, "-m", "conntui", "list", "--json"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # Past Python's own start (a ctrl+c in its `site` imports is Python's traceback, not ours): once
    # `list` has forked its child, or after 0.3 s (on a busy machine it does not fork).
    deadline = time.monotonic() + 0.3
    with contextlib.suppress(psutil.NoSuchProcess):  # it ended first: the signal finds nothing, as ctrl+c would
        while time.monotonic() < deadline and not psutil.Process(process.pid).children():
            time.sleep(0.002)
    time.sleep(0.02)  # within its imports, its poll or its output: each ends the same way
    process.send_signal(signal.SIGINT)
    _, errors = process.communicate(timeout=30)
    assert process.returncode in (0, 130, -signal.SIGINT) and "Traceback" not in errors  # -2: before Python's handler


@pytest.mark.parametrize("how", ["full disk", "closed stdout"])
def test_list_that_cannot_write_says_so_in_one_line(how: str) -> None:
    with open("/dev/full", "w") if how == "full disk" else open(os.devnull) as target:
        stdout = target.fileno() if how == "full disk" else None
        command = [sys.executable, "-m", "conntui", "list", "--json"]
        if stdout is None:  # the shell's `>&-`
            result = subprocess.run(" ".join(command) + " >&-", shell=True, capture_output=False,
                                    stderr=subprocess.PIPE, text=True, timeout=60)  # fmt: skip
        else:
            result = subprocess.run(command, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith("conntui list: error: ")


def test_list_out_of_file_descriptors_says_so_in_one_line() -> None:
    """At 5 fds (the three streams, the netlink socket, one more) `list` forked has no fd left for
    its own share of the owner scan: one line. Not forked (the machine busy: `worth_forking`) it
    needs no more than 5: its rows. Never a traceback."""
    import resource

    def few_fds() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (5, 5))

    result = subprocess.run([sys.executable, "-m", "conntui", "list"], capture_output=True, text=True, timeout=60,
                            preexec_fn=few_fds)  # fmt: skip
    if result.returncode == 0:
        assert result.stdout.startswith("Proto") and not result.stderr, result.stderr
    else:
        assert result.returncode == 1 and result.stderr == "conntui list: error: Too many open files\n", result.stderr


def test_a_usage_error_after_the_owner_scan_began_leaves_no_scanning_child() -> None:
    marker = f"conntui-test-{os.getpid()}"
    result = conntui("list", "--filter", marker, "--kind", "bogus")  # the launcher forks before the parse
    assert result.returncode == 2
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    assert left.stdout == ""  # the child was ended and reaped with its parent
