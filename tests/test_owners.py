"""The owner scanner's memory between polls stays truthful as sockets come, go and change hands."""

from __future__ import annotations

import os
import socket

import pytest

from conntui.poller import Poller
from conntui.sources import open_source
from conntui.sources.owners import OwnerScanner
from tests.conftest import find, linux_only

pytestmark = linux_only


def owner_of(poller: Poller, sock: socket.socket | tuple) -> tuple[int, ...]:
    snapshot, _ = poller.poll()
    address = sock if isinstance(sock, tuple) else sock.getsockname()
    rows = [row for row in find(snapshot.sockets, address) if row.state == "LISTEN"]
    assert len(rows) == 1
    return rows[0].pids


def test_a_reused_fd_number_is_read_again(sockets) -> None:
    poller = Poller(open_source("netlink"), "tcp4")
    try:
        first = sockets.listener()
        assert owner_of(poller, first) == (os.getpid(),)
        number = first.fileno()
        first.close()
        second = sockets.listener()  # the lowest free fd: very likely the same number
        assert second.fileno() == number
        assert owner_of(poller, second) == (os.getpid(),)
    finally:
        poller.close()


def test_a_file_fd_replaced_by_a_socket_is_found(sockets, tmp_path) -> None:
    poller = Poller(open_source("netlink"), "tcp4")
    try:
        anchor = sockets.listener()
        owner_of(poller, anchor)
        handle = open(tmp_path / "f", "w")  # noqa: SIM115
        owner_of(poller, anchor)  # the scanner remembers this fd as "not a socket"
        number = handle.fileno()
        handle.close()
        replacement = sockets.listener()  # same fd number, same fd count: the memory cannot tell
        assert replacement.fileno() == number
        assert owner_of(poller, replacement) == (os.getpid(),)
    finally:
        poller.close()


def test_a_file_fd_replaced_by_a_socket_while_the_fd_count_changes_is_found_in_the_same_poll(sockets, tmp_path) -> None:
    poller = Poller(open_source("netlink"), "tcp4")
    try:
        anchor = sockets.listener()
        owner_of(poller, anchor)
        handle = open(tmp_path / "f", "w")  # noqa: SIM115
        owner_of(poller, anchor)  # the scanner remembers this fd as "not a socket"
        number = handle.fileno()
        handle.close()
        replacement = sockets.listener()  # same fd number...
        assert replacement.fileno() == number
        with open(tmp_path / "g", "w"):  # ...and one more fd: the process's fds are read again
            assert owner_of(poller, replacement) == (os.getpid(),)  # at once, not a poll later
    finally:
        poller.close()


def test_a_socket_passed_to_a_child_gains_an_owner_and_loses_it(sockets, child_holding) -> None:
    poller = Poller(open_source("netlink"), "tcp4")
    try:
        listener = sockets.listener()
        assert owner_of(poller, listener) == (os.getpid(),)
        child = child_holding(listener)
        assert set(owner_of(poller, listener)) == {os.getpid(), child.pid}
        child.kill()
        child.wait()
        assert owner_of(poller, listener) == (os.getpid(),)
    finally:
        poller.close()


def test_incremental_scan_matches_a_full_scan(sockets) -> None:
    listener = sockets.listener()
    for _ in range(5):
        sockets.connection(listener)
    scanner = OwnerScanner(full_every=1000)
    full = dict(scanner.scan())  # a copy: the scanner keeps its owners up to date in place
    again = scanner.scan(set(full))

    def ours(owners: dict) -> dict:  # other processes on the machine may open and close sockets meanwhile
        return {inode: pids for inode, pids in owners.items() if os.getpid() in pids}

    assert ours(again) == ours(full) and len(ours(full)) >= 11


def test_remembered_unix_sockets_are_not_read_again(sockets, monkeypatch) -> None:
    import conntui.sources.owners as owners_module

    listener = sockets.listener()
    for _ in range(40):
        for end in socket.socketpair():  # unix sockets: never in an inet dump, must not look "closed"
            sockets.keep(end)
    poller = Poller(open_source("netlink"), "tcp4")
    try:
        assert owner_of(poller, listener) == (os.getpid(),)
        reads = []
        real = os.readlink

        def counting(path: str, *, dir_fd: int | None = None) -> str:  # links are read relative to the fd dir
            reads.append(path if dir_fd is None else f"{real(f'/proc/self/fd/{dir_fd}')}/{path}")
            return real(path, dir_fd=dir_fd)

        monkeypatch.setattr(owners_module.os, "readlink", counting)
        assert owner_of(poller, listener) == (os.getpid(),)
        ours = [path for path in reads if path.startswith(f"/proc/{os.getpid()}/")]  # others may churn meanwhile
        assert len(ours) < 20, ours[:5]  # not the 80 unix socket fds again
    finally:
        poller.close()


def test_an_owner_that_lets_go_of_a_shared_socket_goes_within_two_polls(sockets, child_holding) -> None:
    poller = Poller(open_source("netlink"), "tcp4")
    try:
        listener = sockets.listener()
        child = child_holding(listener)
        assert set(owner_of(poller, listener)) == {os.getpid(), child.pid}
        owner_of(poller, listener)  # remembered now: the next scans come from memory
        address = listener.getsockname()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, listener.fileno())  # our copy closed, its fd number reused, same fd count
        os.close(devnull)
        owner_of(poller, address)
        assert owner_of(poller, address) == (child.pid,)
    finally:
        poller.close()


def test_the_one_shot_poll_finds_the_same_owners_and_not_its_own_scanning_child(
    sockets, child_holding, monkeypatch
) -> None:
    import conntui.forked as forked

    monkeypatch.setattr(forked, "worth_forking", lambda: True)  # fork, however busy the machine is
    mine = sockets.listener()
    shared = sockets.listener()
    child = child_holding(shared)
    client, server = sockets.connection(mine)
    poller = Poller(open_source("netlink"), "tcp4")
    try:
        steady, _ = poller.poll()
        once = poller.one_shot().snapshot()  # the scan runs in a forked child (holding copies of our sockets)
    finally:
        poller.close()
    for snapshot in (steady, once):
        (listening,) = [row for row in find(snapshot.sockets, mine.getsockname()) if row.state == "LISTEN"]
        assert listening.pids == (os.getpid(),) and listening.process and listening.user
        (both,) = [row for row in find(snapshot.sockets, shared.getsockname()) if row.state == "LISTEN"]
        assert both.pids == tuple(sorted({os.getpid(), child.pid}))  # in pid order, however the scan was shared
        (accepted,) = find(snapshot.sockets, server.getsockname(), client.getsockname())
        assert accepted.pids == (os.getpid(),)
    assert once.processes.keys() <= {os.getpid(), child.pid} | {pid for row in once.sockets for pid in row.pids}


def test_two_scans_sharing_the_processes_stop_where_the_other_has_claimed(sockets, child_holding) -> None:
    """`scan_in_child`'s child reads processes from the front of the list, the parent from the back,
    each claiming one in shared memory first: each stops at the first process the other claimed."""
    import mmap

    from conntui.sources.owners import _scan_claimed

    shared = sockets.listener()
    child = child_holding(shared)
    inode = os.fstat(shared.fileno()).st_ino
    processes = [(os.getpid(), 0, None), (child.pid, 0, None)]
    claims = mmap.mmap(-1, 2)
    claims[1] = 1  # the other scan has the child process
    front, _ = _scan_claimed("/proc", processes, claims)
    assert front[inode] == (os.getpid(),) and claims[0] == 1
    claims[:] = b"\x01\x00"
    back, _ = _scan_claimed("/proc", processes, claims, backwards=True)
    assert back[inode] == (child.pid,)
    claims[:] = b"\x00\x00"
    both, _ = _scan_claimed("/proc", processes[::-1], claims)
    assert both[inode] == tuple(sorted([os.getpid(), child.pid]))  # in pid order, whichever was read first


def test_the_one_shot_scan_reads_every_socket_of_an_fd_table_with_gaps_and_a_high_fd() -> None:
    """`list`'s scan reads fds by number up to the count of open ones, and lists the directory only
    for those above: a closed fd below (a gap) and an fd far above both count."""
    import subprocess
    import sys

    from conntui.sources.owners import _socket_inodes

    code = (
        "import os, socket, sys\n"
        "held = [socket.socket() for _ in range(6)]\n"
        "held.pop(2).close()\n"  # a gap among the low fds
        "os.dup2(held[0].fileno(), 4000)\n"  # the same socket again, far above the count
        "lone = socket.socket(); os.dup2(lone.fileno(), 3000); lone.close()\n"  # another, only up there
        "print(' '.join(str(os.fstat(fd).st_ino) for fd in [s.fileno() for s in held] + [3000]), flush=True)\n"
        "sys.stdin.read()\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        expected = [int(inode) for inode in child.stdout.readline().split()]
        inodes, all_read = _socket_inodes(f"/proc/{child.pid}/fd/")
    finally:
        child.kill()
        child.wait(timeout=10)
    assert len(expected) == 6 and all_read
    assert sorted(inodes) == sorted([*expected, expected[0]])  # fd 4000 holds held[0]'s socket too


def test_a_big_process_is_scanned_in_pieces_that_find_every_socket_it_holds() -> None:
    """`list`'s two scanners share a process of more than `_SHARE_FDS` fds in pieces: every socket
    is found, one held on thousands of fds, one on a far higher fd, past a gap."""
    import mmap
    import resource
    import subprocess
    import sys

    from conntui.sources.owners import _SHARE_FDS, _scan_claimed, _shares

    wanted = _SHARE_FDS + 600
    if resource.getrlimit(resource.RLIMIT_NOFILE)[1] < wanted + 10_000:
        pytest.skip("the fd limit is too low for a process this big")
    code = (
        "import os, resource, socket, sys\n"
        "wanted, high = int(sys.argv[1]), int(sys.argv[2])\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (high + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))\n"
        "many, far = socket.socket(), socket.socket()\n"
        "for fd in range(20, wanted): os.dup2(many.fileno(), fd)\n"  # a gap below 20
        "os.dup2(far.fileno(), high); far.close()\n"
        "print(os.fstat(many.fileno()).st_ino, os.fstat(high).st_ino, flush=True)\n"
        "sys.stdin.read()\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code, str(wanted), str(wanted + 5_000)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert child.stdout is not None
        many, far = map(int, child.stdout.readline().split())
        pieces = [share for share in _shares("/proc") if share[0] == child.pid]
        owners, unreadable = _scan_claimed("/proc", pieces, mmap.mmap(-1, len(pieces)))
    finally:
        child.kill()
        child.wait(timeout=10)
    assert len(pieces) == 2 and not unreadable
    assert owners[many] == owners[far] == (child.pid,)


def test_an_fd_far_up_is_read_while_the_process_fills_and_frees_a_gap_below() -> None:
    """`list`'s scan reads a process with many fds by number up to its fd table's size, so an fd
    above the count is read even while the process opens and closes fds in a gap below it (a
    scan that read up to the count and listed the rest only on finding a gap could miss it)."""
    import resource
    import subprocess
    import sys

    from conntui.sources.owners import _socket_inodes

    if resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 2048:
        pytest.skip("the fd limit is too low for a process this big")
    code = (
        "import os, resource, socket, sys, threading\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (2048, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))\n"
        "many, far = socket.socket(), socket.socket()\n"
        "for fd in range(5, 1800): os.dup2(many.fileno(), fd)\n"
        "os.dup2(far.fileno(), 1900); far.close()\n"  # above the count of open fds; its fd below, a gap
        "def churn():\n"
        "    while True: os.close(os.open(os.devnull, os.O_RDONLY))\n"  # takes and frees the gap
        "threading.Thread(target=churn, daemon=True).start()\n"
        "print(os.fstat(1900).st_ino, flush=True)\n"
        "sys.stdin.read()\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        far = int(child.stdout.readline())
        found = [far in _socket_inodes(f"/proc/{child.pid}/fd/")[0] for _ in range(20)]
    finally:
        child.kill()
        child.wait(timeout=10)
    assert all(found)


def test_a_scan_folds_in_only_what_changed_and_says_which_sockets(sockets) -> None:
    listener = sockets.listener()
    kept = sockets.connection(listener)
    closing = sockets.connection(listener)
    scanner = OwnerScanner(full_every=1000)
    scanner.scan(set(OwnerScanner().scan(full=True)))  # told which sockets live, as the poller tells it
    scanner.take_changed()

    def inode(sock) -> int:
        return os.fstat(sock.fileno()).st_ino

    closed = {inode(sock) for sock in closing}
    for sock in closing:
        sock.close()
    opened = {inode(sock) for sock in sockets.connection(listener)}
    fresh = OwnerScanner().scan(full=True)
    again = scanner.scan(set(fresh))

    def ours(owners: dict) -> dict:  # other processes on the machine may open and close sockets meanwhile
        return {inode: pids for inode, pids in owners.items() if os.getpid() in pids}

    assert ours(again) == ours(fresh)
    changed = scanner.take_changed()
    assert opened | closed <= changed and not {inode(sock) for sock in (*kept, listener)} & changed
    scanner.scan(set(fresh))  # nothing of ours changed since
    assert not (opened | closed) & scanner.take_changed()
