"""Acting on a connection without the UI: signals to our own helper processes, SOCK_DESTROY on our
own loopback connections, process details, the atomic export. Real processes and sockets; the
missing privilege is real too (setpriv to the user nobody)."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from conntui import output
from conntui.acting import (
    COMMAND_LIMIT,
    close_connection,
    copy_text,
    describe_closing,
    describe_command,
    describe_process,
    kill_candidates,
    no_candidates_reason,
    send_signal,
)
from conntui.export import existing_entry, render, with_format, write_atomically
from conntui.model import ProcessInfo, Snapshot
from conntui.poller import Poller
from conntui.sources import open_source
from conntui.sources.netlink import socket_state
from conntui.sources.processes import ProcessDetailsCache
from tests.conftest import find, linux_only, poll_until
from tests.test_privilege import NOBODY, needs_setpriv

SLEEPER = "import sys, time; sys.stdout.write('ready\\n'); sys.stdout.flush(); time.sleep(60)"


@pytest.fixture
def helper():
    """Starts helper processes of our own (argv extra words allowed); ends them by pid afterwards."""
    started: list[subprocess.Popen] = []

    def start(*extra: str, **popen) -> subprocess.Popen:
        child = subprocess.Popen([sys.executable, "-c", SLEEPER, *extra], stdout=subprocess.PIPE, **popen)
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        started.append(child)
        return child

    yield start
    for child in started:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=10)


def info_of(child: subprocess.Popen) -> ProcessInfo:
    process = psutil.Process(child.pid)
    return ProcessInfo(child.pid, process.name(), "root", tuple(process.cmdline()), process.create_time())


def test_sigterm_and_sigkill_reach_the_process_they_name(helper) -> None:
    terminated, killed = helper(), helper()
    outcome = send_signal(info_of(terminated), "SIGTERM")
    assert outcome.ok and outcome.message.startswith(f"SIGTERM sent to {terminated.pid} (")
    assert terminated.wait(timeout=10) == -signal.SIGTERM
    assert send_signal(info_of(killed), "SIGKILL").ok
    assert killed.wait(timeout=10) == -signal.SIGKILL


def test_a_pid_with_another_create_time_is_never_signalled(helper) -> None:
    child = helper()
    seen_earlier = dataclasses.replace(info_of(child), create_time=info_of(child).create_time - 5)  # a reused pid
    outcome = send_signal(seen_earlier, "SIGKILL")
    assert not outcome.ok and "now belongs to another process" in outcome.message
    assert child.poll() is None  # untouched


def test_a_process_that_ended_is_said_not_raised(helper) -> None:
    child = helper()
    info = info_of(child)
    child.kill()
    child.wait(timeout=10)
    outcome = send_signal(info, "SIGTERM")
    assert not outcome.ok and "has already ended" in outcome.message


def test_a_zombie_is_said_to_have_ended_and_is_not_signalled() -> None:
    """A child of ours that has exited and that we do not reap (yet) is a zombie."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        process = psutil.Process(child.pid)
        info = ProcessInfo(child.pid, process.name(), "root", (), process.create_time())
        deadline = time.monotonic() + 30
        while process.status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
            time.sleep(0.01)
        assert process.status() == psutil.STATUS_ZOMBIE
        outcome = send_signal(info, "SIGTERM")
        assert not outcome.ok
        assert outcome.message == (
            f"Not sent: process {child.pid} ({info.name}) has already ended "
            f"(a zombie, not yet reaped by its parent {os.getpid()} ({psutil.Process().name()}))."
        )
    finally:
        assert child.wait(timeout=10) == 0  # reaped: exited by itself, untouched by a signal


@needs_setpriv
def test_permission_denied_is_a_message(helper) -> None:
    """As the user nobody, signalling a root process is refused by the kernel."""
    root_child = helper()
    info = info_of(root_child)
    code = textwrap.dedent(f"""
        from conntui.acting import send_signal
        from conntui.model import ProcessInfo
        print(send_signal(ProcessInfo({info.pid}, "python", "root", (), {info.create_time!r}), "SIGTERM").message)
    """)
    result = subprocess.run([*NOBODY, sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Permission denied: {root_child.pid} (python)")
    assert root_child.poll() is None


def test_several_owners_are_all_candidates_and_hidden_ones_are_not(helper, sockets) -> None:
    listener = sockets.listener()
    first, second = helper(pass_fds=[listener.fileno()]), helper(pass_fds=[listener.fileno()])
    rows = find(Poller(open_source(), "tcp").poll()[0].sockets, listener.getsockname())
    [sock] = [row for row in rows if row.state == "LISTEN"]
    snapshot = Snapshot((sock,), {first.pid: info_of(first), second.pid: info_of(second)})
    pids = {info.pid for info in kill_candidates(sock, snapshot)}
    assert {first.pid, second.pid} <= pids
    unverifiable = Snapshot((sock,), {first.pid: dataclasses.replace(info_of(first), create_time=None)})
    assert first.pid not in {info.pid for info in kill_candidates(sock, unverifiable)}


def test_no_candidate_says_why_an_owner_not_described_yet_is_not_one_that_ended(helper, sockets) -> None:
    listener = sockets.listener()
    child = helper(pass_fds=[listener.fileno()])
    rows = find(Poller(open_source(), "tcp").poll()[0].sockets, listener.getsockname())
    [listening] = [row for row in rows if row.state == "LISTEN"]
    assert child.pid in listening.pids
    sock = listening._replace(pids=(child.pid,))  # the child's alone
    # the row names the child; the snapshot `k` reads is the one before (the first rows, no details)
    before_its_details = Snapshot((sock._replace(pids=()),), {})
    assert not kill_candidates(sock, before_its_details)
    assert no_candidates_reason(sock, before_its_details) == "its owner's details are still being read: press k again"
    child.kill()
    child.wait(timeout=10)
    assert (
        no_candidates_reason(sock, before_its_details) == f"{child.pid} could not be read (ended, or not ours to read)"
    )
    hidden = "its owner is hidden (another user's process)"
    assert no_candidates_reason(sock._replace(pids=()), before_its_details) == hidden
    assert no_candidates_reason(sock._replace(pids=(), inode=0), before_its_details) == "no process holds it"


def test_a_command_line_past_the_limit_ends_in_an_ellipsis(helper) -> None:
    child = helper("x" * 400)
    command = describe_command(info_of(child))
    assert len(command) == COMMAND_LIMIT and command.endswith("x…")
    assert describe_command(info_of(helper("short"))).endswith(" short")  # whole: no ellipsis


def test_hostile_names_are_escaped_for_the_dialog_and_the_clipboard(helper) -> None:
    child = helper("\x1b[2J\u202egnp.exe")
    text = describe_process(info_of(child))
    assert "\x1b" not in text and "\u202e" not in text and "\\x1b[2J\\u202egnp.exe" in text


# -- SOCK_DESTROY --------------------------------------------------------------------------------


def established(poller: Poller, client: socket.socket):
    """Our client's own row: its exact four-tuple (other tests on the machine reuse port numbers)."""
    local, remote = client.getsockname(), client.getpeername()
    return poll_until(poller, lambda rows: [row for row in find(rows, local, remote) if row.state == "ESTABLISHED"])[0]


@linux_only
def test_closing_a_loopback_connection_aborts_it_for_its_owner(sockets) -> None:
    client, _server = sockets.connection(sockets.listener())
    poller = Poller(open_source("netlink"), "tcp")
    sock = established(poller, client)
    outcome = close_connection(sock, sock.key)
    if "CONFIG_INET_DIAG_DESTROY" in outcome.message:
        pytest.skip("this kernel cannot close sockets")
    assert outcome.ok and outcome.message == f"Closed tcp {sock.local} → {sock.remote}."
    with pytest.raises(ConnectionAbortedError):
        client.recv(1)
    again = close_connection(sock, sock.key)
    assert not again.ok and "already gone" in again.message
    assert copy_text(sock).startswith(f"tcp4 {sock.local} → {sock.remote} ESTABLISHED pid ")


@linux_only
def test_a_stale_cookie_leaves_the_socket_alone(sockets) -> None:
    client, _server = sockets.connection(sockets.listener())
    sock = established(Poller(open_source("netlink"), "tcp"), client)
    outcome = close_connection(sock, sock.key + 1)  # the same four values, another socket's cookie
    assert not outcome.ok and "already gone" in outcome.message
    client.setblocking(False)
    with pytest.raises(BlockingIOError):  # still open, nothing to read
        client.recv(1)


@linux_only
def test_a_connection_its_owner_closed_meanwhile_leaves_its_time_wait_alone(sockets) -> None:
    client, server = sockets.connection(sockets.listener())
    poller = Poller(open_source("netlink"), "tcp")
    sock = established(poller, client)  # as confirmed
    local, remote = client.getsockname(), client.getpeername()
    client.close()  # the owner closes first: its side goes to TIME_WAIT (same four values, same cookie)
    server.close()
    poll_until(poller, lambda rows: [row for row in find(rows, local, remote) if row.state == "TIME_WAIT"])
    outcome = close_connection(sock, sock.key)
    assert not outcome.ok
    assert outcome.message == "Not closed: already closed by its owner (now TIME_WAIT): not touched."
    assert socket_state(sock, sock.key) == "TIME_WAIT"  # still there


@linux_only
def test_closing_a_listener_or_a_udp_socket_says_what_it_did(sockets) -> None:
    listener = sockets.listener()
    [sock] = [
        row
        for row in poll_until(
            Poller(open_source("netlink"), "tcp"),
            lambda rows: [row for row in find(rows, listener.getsockname()) if row.state == "LISTEN"],
        )
    ]
    outcome = close_connection(sock, sock.key)
    if "CONFIG_INET_DIAG_DESTROY" in outcome.message:
        pytest.skip("this kernel cannot close sockets")
    assert outcome.message == f"Stopped the listener tcp {sock.local}: it no longer listens."
    assert "stops listening" in describe_closing(sock)[1]
    with pytest.raises(OSError):  # EINVAL: no longer listening
        listener.accept()
    udp = sockets.keep(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    udp.bind(("127.0.0.1", 0))
    udp.connect(listener.getsockname())
    rows = poll_until(Poller(open_source("netlink"), "udp"), lambda rows: find(rows, udp.getsockname(), proto="udp"))
    [sock] = [row for row in rows if row.remote_port == listener.getsockname()[1]]
    assert describe_closing(sock)[0] == "Disconnect this UDP socket (SOCK_DESTROY, as ss -K)?"
    outcome = close_connection(sock, sock.key)
    assert outcome.message == f"Disconnected udp {sock.local} → {sock.remote}: still open, unconnected."
    with pytest.raises(ConnectionAbortedError):
        udp.recv(1)
    udp.sendto(b"still open", ("127.0.0.1", 9))  # open, and unconnected


@needs_setpriv
def test_closing_without_cap_net_admin_says_so(sockets) -> None:
    client, _server = sockets.connection(sockets.listener())
    sock = established(Poller(open_source("netlink"), "tcp"), client)
    code = textwrap.dedent(f"""
        from conntui.acting import close_connection
        from conntui.model import Socket
        print(close_connection(Socket(*{tuple(sock)!r}), {sock.key}).message)
    """)
    result = subprocess.run([*NOBODY, sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Not closed: permission denied: closing a socket needs CAP_NET_ADMIN (run as root)."
    client.setblocking(False)
    with pytest.raises(BlockingIOError):
        client.recv(1)


# -- process details -----------------------------------------------------------------------------


def test_process_details_of_our_helper_and_cpu_after_a_second_reading(helper, tmp_path) -> None:
    hostile = tmp_path / "dir\x1b[2J"
    hostile.mkdir()
    child = helper(cwd=hostile)
    info = info_of(child)
    cache = ProcessDetailsCache()
    first = cache.details(child.pid, info.create_time)
    assert first is not None and first.cpu_percent is None  # one reading measures no interval
    assert first.exe == psutil.Process(child.pid).exe() and first.cwd == str(hostile)
    assert first.threads == 1 and first.memory_rss and first.started == info.create_time
    time.sleep(0.05)
    second = cache.details(child.pid, info.create_time)
    assert second is not None and second.cpu_percent is not None
    assert cache.details(child.pid, info.create_time - 5) is None  # another process's pid: not this one
    child.kill()
    child.wait(timeout=10)
    assert cache.details(child.pid, info.create_time) is None


@needs_setpriv
def test_process_details_another_user_may_not_read_are_none(helper) -> None:
    root_child = helper()
    info = info_of(root_child)
    code = textwrap.dedent(f"""
        from conntui.sources.processes import ProcessDetailsCache
        details = ProcessDetailsCache().details({info.pid}, {info.create_time!r})
        print(details.exe, details.cwd, details.threads is not None)
    """)
    result = subprocess.run([*NOBODY, sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["None", "None", "True"]


# -- export --------------------------------------------------------------------------------------


def test_export_is_lists_own_text_written_atomically_and_never_over_a_file_unasked(sockets, tmp_path) -> None:
    listener = sockets.listener()
    snapshot, _ = Poller(open_source(), "tcp").poll()
    shown = [row for row in find(snapshot.sockets, listener.getsockname()) if row.state == "LISTEN"]
    assert render(snapshot, shown, "json") == output.to_json(snapshot, shown) + "\n"
    assert render(snapshot, shown, "csv") == output.to_csv(snapshot, shown)
    target = tmp_path / "view.json"
    assert write_atomically(target, render(snapshot, shown, "json"), overwrite=False) == target
    assert json.loads(target.read_text())[0]["local_port"] == listener.getsockname()[1]
    with pytest.raises(FileExistsError):
        write_atomically(target, "new", overwrite=False)
    write_atomically(target, "new", overwrite=True)
    assert target.read_text() == "new" and [path.name for path in tmp_path.iterdir()] == ["view.json"]
    with pytest.raises(FileNotFoundError):
        write_atomically(tmp_path / "missing" / "view.csv", "x", overwrite=False)


def test_a_file_made_between_the_check_and_the_write_is_never_replaced(tmp_path, monkeypatch) -> None:
    """The race itself: another program creates the name while ours is being written."""
    target = tmp_path / "view.json"
    make_temporary = tempfile.mkstemp

    def theirs_appears_meanwhile(**where):
        target.write_text("theirs")
        return make_temporary(**where)

    monkeypatch.setattr(tempfile, "mkstemp", theirs_appears_meanwhile)
    with pytest.raises(FileExistsError):
        write_atomically(target, "ours", overwrite=False)
    assert target.read_text() == "theirs" and [path.name for path in tmp_path.iterdir()] == ["view.json"]


def test_a_dangling_symbolic_link_is_something_there(tmp_path) -> None:
    link = tmp_path / "view.json"
    link.symlink_to(tmp_path / "nowhere")
    assert existing_entry(link) == "symlink" and existing_entry(tmp_path) == "directory"
    assert existing_entry(tmp_path / "free.json") is None
    with pytest.raises(FileExistsError):
        write_atomically(link, "ours", overwrite=False)
    assert link.is_symlink() and not (tmp_path / "nowhere").exists()
    with pytest.raises(OSError, match="too long"):
        existing_entry(tmp_path / ("x" * 300))


def test_where_hard_links_are_refused_the_name_is_created_exclusively(tmp_path, monkeypatch) -> None:
    """FAT and some network file systems refuse hard links (EPERM); none here to mount, so os.link says so."""

    def refused(source, destination):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", refused)
    target = tmp_path / "view.csv"
    assert write_atomically(target, "ours", overwrite=False) == target
    assert target.read_text() == "ours" and oct(target.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(FileExistsError):
        write_atomically(target, "again", overwrite=False)
    assert target.read_text() == "ours" and [path.name for path in tmp_path.iterdir()] == ["view.csv"]


def test_the_format_choice_changes_only_a_formats_extension() -> None:
    assert with_format("a/b.json", "csv") == "a/b.csv"
    assert with_format("a/b.txt", "csv") == "a/b.txt"
    assert with_format(str(Path("noext")), "json") == "noext"


def test_a_file_name_as_long_as_a_name_can_be_is_saved(tmp_path) -> None:
    """The temporary file's name is short: a 250-character name (NAME_MAX is 255) is written."""
    from conntui.export import write_atomically

    target = tmp_path / ("d" * 245 + ".json")
    assert write_atomically(target, "[]\n", overwrite=False) == target
    assert target.read_text() == "[]\n" and [path.name for path in tmp_path.iterdir()] == [target.name]


def test_a_replace_agreed_to_replaces_only_that_entry(tmp_path) -> None:
    """The user agreed to replace a (dangling) link; a file put there since is not overwritten."""
    from conntui.export import entry_identity, write_atomically

    target = tmp_path / "view.json"
    target.symlink_to(tmp_path / "nowhere")
    agreed = entry_identity(target)
    target.unlink()
    target.write_text("PRECIOUS")  # another file took its place meanwhile
    with pytest.raises(FileExistsError):
        write_atomically(target, "[]\n", overwrite=True, replacing=agreed)
    assert target.read_text() == "PRECIOUS"
    assert write_atomically(target, "[]\n", overwrite=True, replacing=entry_identity(target)) == target
    assert target.read_text() == "[]\n" and [path.name for path in tmp_path.iterdir()] == ["view.json"]
