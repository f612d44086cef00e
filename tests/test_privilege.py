"""What a missing privilege hides is said, and decided by what was actually unreadable.

Run for real with `setpriv`: as an unprivileged user, and as root without CAP_SYS_PTRACE (which
may not read another user's fd links), next to root with every capability.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from conntui.changes import Changes
from conntui.model import Snapshot
from conntui.ui.app import ConntuiApp
from conntui.ui.status_bar import StatusBar
from tests.conftest import Sockets
from tests.test_snapshots import ReplayPoller

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
NO_PTRACE = ["setpriv", "--bounding-set=-sys_ptrace"]
PYTHON = os.path.realpath(sys.executable)  # the venv's shim path may sit under a directory nobody cannot read


def _setpriv_works() -> str:
    if not sys.platform.startswith("linux"):
        return "needs Linux: /proc and setpriv"
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root, to become another user"
    if shutil.which("setpriv") is None:
        return "setpriv (util-linux) is not installed"
    probe = subprocess.run([*NOBODY, sys.executable, "-c", "import conntui"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        return f"the unprivileged user cannot run this Python: {probe.stderr.decode(errors='replace').strip()}"
    return ""


SKIP = _setpriv_works()
needs_setpriv = pytest.mark.skipif(bool(SKIP), reason=SKIP or "runs")


@pytest.fixture
def nobodys_listener() -> Iterator[tuple[int, int]]:
    """(pid, port) of a listener held by a process of the user nobody; ended by its pid."""
    code = (
        "import socket, sys; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); "
        "print(s.getsockname()[1], flush=True); sys.stdin.read()"
    )
    holder = subprocess.Popen([*NOBODY, PYTHON, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    port = int(holder.stdout.readline())
    yield holder.pid, port
    holder.kill()
    holder.wait(timeout=10)


def conntui_list(prefix: list[str], port: int, *, filtered: bool = True) -> tuple[list[dict], str]:
    """The listener on `port`, as `list --json` shows it: filtered to the port, or among every
    row (`list`'s other path, whose rows are encoded before their owners are known)."""
    selection = ["--port", str(port)] if filtered else []
    result = subprocess.run(
        [*prefix, sys.executable, "-m", "conntui", "list", "--json", "--kind", "tcp", *selection],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    return [row for row in rows if row["state"] == "LISTEN" and row["local_port"] == port], result.stderr


@needs_setpriv
def test_root_sees_another_users_owner(nobodys_listener) -> None:
    pid, port = nobodys_listener
    (row,), _ = conntui_list([], port)
    assert row["pids"] == [pid] and row["user"] == "nobody"


@needs_setpriv
@pytest.mark.parametrize("filtered", [True, False])
def test_root_without_ptrace_says_owners_are_hidden(nobodys_listener, filtered: bool) -> None:
    _pid, port = nobodys_listener
    (row,), stderr = conntui_list(NO_PTRACE, port, filtered=filtered)
    assert row["pids"] == [] and row["user"] == "nobody"  # the socket's own uid, at least
    (line,) = stderr.splitlines()
    assert line.startswith("conntui list: owners of ") and "hidden" in line and "CAP_SYS_PTRACE" in line


@needs_setpriv
def test_an_unprivileged_user_is_told_owners_are_hidden() -> None:
    sockets = Sockets()
    try:
        port = sockets.listener().getsockname()[1]  # held by this (root) process
        (row,), stderr = conntui_list(NOBODY, port)
    finally:
        sockets.close_all()
    assert row["pids"] == [] and row["user"] == "root"
    (line,) = stderr.splitlines()
    assert "hidden" in line and "run as root" in line


@needs_setpriv
def test_a_filter_on_owners_that_shows_none_hidden_still_says_owners_are_hidden() -> None:
    """Unprivileged, `--filter proc:…` can match no socket whose owner is hidden (it has none to
    match): the note then counts every hidden owner, rather than saying nothing."""
    sockets = Sockets()
    try:
        sockets.listener()  # held by this (root) process: hidden from nobody
        result = subprocess.run([*NOBODY, sys.executable, "-m", "conntui", "list", "--kind", "tcp", "--filter",
                                 "proc:no-such-process"], capture_output=True, text=True, timeout=60)  # fmt: skip
    finally:
        sockets.close_all()
    assert result.returncode == 0 and result.stdout.splitlines()[1:] == []  # the header, no row
    (line,) = result.stderr.splitlines()
    assert line.startswith("conntui list: owners of ") and "hidden" in line


@needs_setpriv
def test_a_filter_that_shows_only_owned_rows_says_nothing_of_hidden_owners(nobodys_listener) -> None:
    """Unprivileged, `--port P` on nobody's own listener: its row has its owner, and the owners hidden
    elsewhere (root's) are not the rows asked for: no note."""
    pid, port = nobodys_listener
    (row,), stderr = conntui_list(NOBODY, port)
    assert row["pids"] == [pid] and stderr == ""


class HiddenOwnersPoller(ReplayPoller):
    """The captured sockets, as a poll that could not read some processes' fds reports them."""

    def poll(self) -> tuple[Snapshot, Changes]:
        snapshot, changes = super().poll()
        return dataclasses.replace(snapshot, hidden_owners=2, unreadable_processes=3), changes


async def test_the_status_line_says_it_too() -> None:
    app = ConntuiApp(HiddenOwnersPoller(), interval=60)
    async with app.run_test(size=(200, 30)) as pilot:
        while app.dashboard.poll_count < 1:
            await pilot.pause(0.05)
        status = str(app.query_one(StatusBar).render())
    assert "owners of 2 sockets hidden: 3 processes not readable" in status
