"""Hostile names from the system: the `conntui.text` rules, then real processes that name themselves.

A helper process sets its own name with prctl(PR_SET_NAME) (no privilege needed) and listens on
loopback; `conntui list` and the dashboard must show the name escaped, never execute it, and
always write valid UTF-8.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
from textual.widgets import RichLog

from conntui.changes import Changes, event_lines
from conntui.model import Socket
from conntui.text import cell_width, escape_undecodable, fit_cells, printable
from conntui.ui.detail_pane import DetailPane
from conntui.ui.socket_table import SocketTable
from conntui.view import COLUMNS, cell
from tests.conftest import wait_for
from tests.test_app import SIZE, make_app, plain, row_for

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

# (name as set with prctl, the name's real value (JSON), how people see it (table, CSV, TUI))
HOSTILE_NAMES = {
    "escape sequences": (b"\x1b]0;pwn\x07\xc2\x9b2J\x7f", "\x1b]0;pwn\x07\x9b2J\x7f", r"\x1b]0;pwn\x07\x9b2J\x7f"),
    "newline": (b"evil\nrow", "evil\nrow", r"evil\x0arow"),
    "invalid UTF-8": (b"bad\xff\xfename\x1b", r"bad\xff\xfename" + "\x1b", r"bad\xff\xfename\x1b"),
}

NAMED_LISTENER = """
import ctypes, socket, sys
if ctypes.CDLL(None, use_errno=True).prctl(15, ctypes.c_char_p(bytes.fromhex(sys.argv[1])), 0, 0, 0):
    raise OSError(ctypes.get_errno(), "prctl(PR_SET_NAME)")
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(1)
print(listener.getsockname()[1], flush=True)
sys.stdin.read()
"""


@pytest.fixture
def named_listener() -> Iterator[Callable[[bytes], tuple[int, int]]]:
    """Starts a process that names itself and listens on 127.0.0.1; returns (pid, port). Ends it by pid."""
    if not sys.platform.startswith("linux"):
        pytest.skip("prctl(PR_SET_NAME) is Linux-only")
    children: list[subprocess.Popen] = []

    def start(name: bytes) -> tuple[int, int]:
        child = subprocess.Popen(
            [sys.executable, "-c", NAMED_LISTENER, name.hex()], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        children.append(child)
        assert child.stdout is not None
        return child.pid, int(child.stdout.readline())

    yield start
    for child in children:
        child.kill()
        child.wait(timeout=5)
        for pipe in (child.stdin, child.stdout):
            if pipe is not None:
                pipe.close()


def list_output(*args: str) -> str:
    """`conntui list` under an ordinary UTF-8 locale; its output, which must be valid UTF-8.

    PYTHONIOENCODING gives stdout the strict UTF-8 a locale such as en_US.UTF-8 gives it (under
    C.UTF-8 Python would write undecodable bytes back out raw instead of failing).
    """
    env = {**os.environ, "LC_ALL": "C.UTF-8", "PYTHONIOENCODING": "utf-8"}
    result = subprocess.run(
        [sys.executable, "-m", "conntui", "list", *args], capture_output=True, env=env, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
    return result.stdout.decode("utf-8")  # strict: raises on anything that is not UTF-8


# -- the rules ---------------------------------------------------------------------------------


def test_printable_escapes_c0_del_c1_and_surrogates_and_keeps_other_unicode() -> None:
    assert printable("nginx: worker") == "nginx: worker"
    assert printable("\x1b]0;x\x07\x9b\x7f\x00\t\n") == r"\x1b]0;x\x07\x9b\x7f\x00\x09\x0a"
    assert printable("café\u00a0日本\u200d") == "café\u00a0日本\u200d"  # not isprintable(), still safe
    assert printable("a\udcffb\ud800") == r"a\xffb\ud800"
    assert printable("evil\u202etxt.exe\u2066\u200b\u2028") == r"evil\u202etxt.exe\u2066\u200b\u2028"  # reorder, hide


def test_escape_undecodable_turns_surrogateescaped_bytes_into_text() -> None:
    raw = b"bad\xff\xfe\xc3name\x1b"
    assert escape_undecodable(raw.decode("utf-8", "surrogateescape")) == r"bad\xff\xfe\xc3name" + "\x1b"
    assert escape_undecodable("ascii") == "ascii" and escape_undecodable("日本") == "日本"


def test_event_lines_show_names_escaped() -> None:
    sock = Socket(1, "tcp", 4, "127.0.0.1", 80, None, None, "LISTEN", pids=(7,), process="a\x1b[2Jb", user="u\n")
    (line,) = event_lines(Changes(opened=(sock,)))
    assert r"(a\x1b[2Jb 7)" in line and not CONTROL.search(line)


# -- `conntui list` with a real hostile process ------------------------------------------------


@pytest.mark.parametrize("name, real, shown", HOSTILE_NAMES.values(), ids=HOSTILE_NAMES.keys())
def test_list_shows_hostile_names_escaped_and_json_carries_the_value(named_listener, name, real, shown) -> None:
    pid, port = named_listener(name)
    selection = ("--filter", f"port:{port} state:listen")  # a TIME_WAIT of an earlier test may share the port

    table = list_output(*selection)
    assert not CONTROL.search(table.replace("\n", ""))
    lines = table.splitlines()
    # a pid may be narrower than the "PIDs" header: padded after
    assert len(lines) == 2 and f" {pid} " in lines[1] and f"  {shown}  " in lines[1]

    text = list_output("--csv", *selection)
    assert not CONTROL.search(text.replace("\n", ""))
    header, *rows = csv.reader(io.StringIO(text))
    assert len(text.splitlines()) == 2 and len(rows) == 1, text  # exactly one data row, not a forged one
    fields = dict(zip(header, rows[0], strict=True))
    assert fields["process"] == shown and fields["pids"] == str(pid)

    (record,) = json.loads(list_output("--json", *selection))
    assert record["process"] == real and record["pids"] == [pid]


# -- the dashboard -----------------------------------------------------------------------------


async def test_dashboard_shows_a_hostile_name_escaped_in_cells_detail_and_log(named_listener) -> None:
    name, real, shown = b"\x1b]0;pwn\x07[/]\xc2\x9b\x7f", "\x1b]0;pwn\x07[/]\x9b\x7f", r"\x1b]0;pwn\x07[/]\x9b\x7f"
    app = make_app("proc:pwn")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.dashboard.poll_count >= 1)
        await pilot.press("l")  # the event log, so the socket's "opened" line is written to it
        pid, port = named_listener(name)
        await wait_for(pilot, lambda: row_for(app, port))
        row = row_for(app, port)
        assert row.sock.process == real and row.sock.pids == (pid,)

        cells = {column.name: cell(app.dashboard.state, row, column.name, 0.0) for column in COLUMNS}
        assert cells["process"] == shown and not any(CONTROL.search(text) for text in cells.values())
        table = app.query_one(SocketTable)
        assert table.move_to_key(row.sock.key)
        drawn = table.render_line(table.cursor_index - int(table.scroll_y) + 1).text
        assert str(port) in drawn and r"\x1b]0;pwn" in drawn and not CONTROL.search(drawn)

        await pilot.press("enter")
        detail = app.query_one(DetailPane)
        await wait_for(pilot, lambda: "Owner" in plain(detail))  # described on a worker thread
        described = plain(detail)
        assert f"{pid} {shown} (" in described and not CONTROL.search(described.replace("\n", ""))
        assert r"-c \x0aimport ctypes" in described  # its command line (the helper's code has newlines)

        log = app.query_one("#events", RichLog)
        await wait_for(pilot, lambda: any(str(port) in line.text for line in log.lines))
        logged = [line.text for line in log.lines if str(port) in line.text]
        assert any(shown in line for line in logged) and not any(CONTROL.search(line) for line in logged)


def test_cells_count_wide_characters_twice_and_combining_marks_not_at_all() -> None:
    assert [cell_width(text) for text in ("abc", "漢字", "🙂x", "e\u0301e\u0301")] == [3, 4, 3, 2]
    assert fit_cells("漢字漢字", 5) == "漢字…" and cell_width(fit_cells("漢字漢字", 5)) == 5
    assert fit_cells("漢字", 6, "right") == "  漢字" and fit_cells("e\u0301", 3) == "e\u0301  "
    assert fit_cells("abcdef", 4) == "abc…" and fit_cells("ab", 4, "right") == "  ab"


@pytest.mark.parametrize("name", ["漢字漢字漢", "🙂🙂🙂", "e\u0301e\u0301e\u0301xx"])
def test_list_keeps_its_columns_aligned_beside_wide_or_combining_names(named_listener, name) -> None:
    _pid, port = named_listener(name.encode())
    header, row = list_output("--filter", f"port:{port} state:listen").splitlines()
    assert name[:5] in row or name in row
    # the user's column starts in the same terminal cell on both lines
    assert cell_width(header[: header.index("User")]) == cell_width(row[: row.rindex("root")])
