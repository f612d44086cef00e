"""Socket inode -> every pid holding it, from the `/proc/*/fd` links (Linux).

Every pid is kept: a socket inherited across fork has two owners, as `ss -p` shows. Processes
that vanish, or whose fds we may not read (other users' when not root), are skipped.

Reading every fd link costs ~4 µs; at 100,000 sockets that is most of a poll. `OwnerScanner`
therefore remembers each process's fd -> inode map and, on the next poll, reads a link again
only when its fd is new, or the socket it pointed to has closed, or that socket is shared by
several processes (one of them may have closed its copy and reused the fd number while the
socket lives on: such an owner goes at the next scan), and rereads everything every
`full_every`-th scan. The poller asks for a full scan whenever a live socket is left
without an owner that the last full scan did not already fail to place.
"""

from __future__ import annotations

import marshal
import os
from collections.abc import Callable, Set

UNREADABLE = -1  # an fd whose link we may not read: remembered, not retried


def _read_fds(fd_dir: str, known: dict[str, int], distrusted: Set[int], recheck: bool = False) -> dict[str, int]:
    """fd name -> socket inode (0 for anything else, UNREADABLE), re-reading only what may have changed
    (and, with `recheck`, what was not a socket).

    The links are read relative to the open fd directory: the kernel resolves no path per link."""
    readlink = os.readlink
    directory = os.open(fd_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fds: dict[str, int] = {}
        for name in os.listdir(directory):
            inode = known.get(name)
            if inode is None or inode in distrusted or (recheck and inode == 0):
                try:
                    target = readlink(name, dir_fd=directory)
                except FileNotFoundError:  # closed meanwhile
                    continue
                except OSError:  # not ours to read (no ptrace right over it)
                    fds[name] = UNREADABLE
                    continue
                inode = int(target[8:-1]) if target.startswith("socket:[") else 0
            fds[name] = inode
        return fds
    finally:
        os.close(directory)


class OwnerScanner:
    def __init__(self, proc: str = "/proc", full_every: int = 30) -> None:
        self.proc = proc
        self.full_every = full_every
        self.unownable: set[int] = set()  # live sockets a full scan found no owner for
        self.last_full = False  # whether the last scan read every link
        self._fds: dict[int, dict[str, int]] = {}
        self._scans = 0
        self._live: Set[int] = set()  # the live sockets the last scan was told of
        self._shared: set[int] = set()  # sockets the last scan found in several processes
        # Every socket inode -> the pids holding it: one dict, kept up to date by each scan (callers
        # do not change it), and the sockets whose owners changed since `take_changed` was last called.
        self._owners: dict[int, tuple[int, ...]] = {}
        self._changed: set[int] = set()
        # Processes whose fds the last scan could not (all) read: the owners it may have missed.
        self.unreadable: set[int] = set()

    def scan(
        self, live_inodes: Set[int] | None = None, *, full: bool = False, recheck: bool = False
    ) -> dict[int, tuple[int, ...]]:
        """Owners of every socket inode.

        From memory unless `full` (or every `full_every`-th scan): a link is read again when its
        fd is new, when the socket it pointed to was alive at the last scan and is not in
        `live_inodes` now (it closed, so the fd number may name another socket), or when that
        socket had several owners (any one of them may have let go of it). With `recheck`, also
        every link remembered as not a socket (a file closed and a socket opened on its fd
        number leaves the fd count as it was): a few links per process, not all of them.
        """
        full = full or self._scans % self.full_every == 0
        self._scans += 1
        self.last_full = full
        # Sockets that were alive at the last scan and are not now: fds that named them may
        # name something else. Other remembered inodes (unix sockets, kinds not polled) stand.
        distrusted = self._shared | (self._live - live_inodes if live_inodes is not None else set())
        if live_inodes is not None:
            self._live = live_inodes
        return self._scan(distrusted, remember=not full, recheck=recheck)

    def take_changed(self) -> set[int]:
        """The sockets whose owners changed (gained or lost one) in the scans since the last call."""
        changed, self._changed = self._changed, set()
        return changed

    def _scan(self, distrusted: Set[int], remember: bool, recheck: bool = False) -> dict[int, tuple[int, ...]]:
        memory = self._fds if remember else {}
        fds_by_pid: dict[int, dict[str, int]] = {}
        unreadable: set[int] = set()
        for entry in os.listdir(self.proc):
            if not entry.isdigit():
                continue
            pid = int(entry)
            fd_dir = f"{self.proc}/{entry}/fd/"
            known = memory.get(pid)
            try:
                if known is not None and _unchanged(fd_dir, known, distrusted):
                    fds = _not_sockets_read_again(fd_dir, known) if recheck else known
                    if pid in self.unreadable:
                        unreadable.add(pid)
                else:
                    fds = _read_fds(fd_dir, known or {}, distrusted, recheck)
                    if UNREADABLE in fds.values():
                        unreadable.add(pid)
            except FileNotFoundError:  # gone
                continue
            except OSError:  # not ours to read: another user's process, or we lack CAP_SYS_PTRACE
                unreadable.add(pid)
                continue
            fds_by_pid[pid] = fds
        self._fold_in(fds_by_pid)
        self.unreadable = unreadable
        return self._owners

    def _fold_in(self, fds_by_pid: dict[int, dict[str, int]]) -> None:
        """Bring the owners (kept from scan to scan) up to date with the processes whose fds changed
        since the last scan, and only those: on an idle machine nothing is done, however many
        sockets it holds."""
        before, owners, shared = self._fds, self._owners, self._shared
        singles: dict[int, tuple[int, ...]] = {}  # one (pid,) per process, shared by its sockets
        changed = self._changed
        for pid in before.keys() | fds_by_pid.keys():
            old, new = before.get(pid), fds_by_pid.get(pid)
            if old is new or old == new:
                continue
            held_before = {inode for inode in old.values() if inode > 0} if old else set()
            held_now = {inode for inode in new.values() if inode > 0} if new else set()
            for inode in held_before - held_now:  # let go of (or the process is gone)
                rest = tuple(holder for holder in owners.get(inode, ()) if holder != pid)
                if rest:
                    owners[inode] = rest
                else:
                    owners.pop(inode, None)
                if len(rest) < 2:
                    shared.discard(inode)
                changed.add(inode)
            for inode in held_now - held_before:
                holders = owners.get(inode)
                if holders is None:
                    owners[inode] = singles.get(pid) or singles.setdefault(pid, (pid,))
                else:  # in pid order, as a scan from scratch lists them
                    owners[inode] = tuple(sorted((*holders, pid)))
                    shared.add(inode)
                changed.add(inode)
        self._fds = fds_by_pid


def scan_in_child(scanner: OwnerScanner) -> Callable[[], dict[int, tuple[int, ...]]]:
    """Start a full scan in a forked child process; the function returned waits for its owners.

    For a one-shot command: the scan (mostly `readlink` in the kernel) runs on another core while
    this process dumps and parses the sockets (20,000 sockets, an idle 2-core machine: 105 ms
    instead of 155). Only when a core is free: on a machine already busy, the child's copy-on-write
    costs more than it saves (588 ms against 681 at a load of 3.3 on 2 cores), and the scan runs
    here when the result is asked for. The child leaves itself out of the owners
    (it holds copies of this process's fds while it runs). Where fork is missing or fails, or the
    child does, the scan runs here when the result is asked for. The scanner's `unreadable` and
    `last_full` are set as `scan` sets them.
    """
    fork = getattr(os, "fork", None)
    if fork is None or not _a_core_is_free():
        return lambda: scanner.scan(full=True)
    read_end, write_end = os.pipe()
    try:
        child = fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        return lambda: scanner.scan(full=True)
    if child == 0:  # pragma: no cover (the child ends by os._exit)
        try:
            os.close(read_end)
            me = os.getpid()
            found: dict[int, tuple[int, ...]] = {}
            for inode, pids in scanner.scan(full=True).items():
                if me in pids:
                    pids = tuple(pid for pid in pids if pid != me)
                if pids:
                    found[inode] = pids
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(marshal.dumps((found, sorted(scanner.unreadable - {me}))))
        finally:
            os._exit(0)  # no atexit handlers, no buffers of the parent's flushed twice
    os.close(write_end)

    def owners() -> dict[int, tuple[int, ...]]:
        with os.fdopen(read_end, "rb") as pipe:
            data = pipe.read()
        os.waitpid(child, 0)
        try:
            found: dict[int, tuple[int, ...]]
            found, unreadable = marshal.loads(data)
        except (EOFError, ValueError, TypeError):  # the child failed: nothing or a part of it came
            return scanner.scan(full=True)
        scanner.unreadable, scanner.last_full = set(unreadable), True
        return found

    return owners


def _a_core_is_free() -> bool:
    """The last minute's load average leaves a core idle."""
    try:
        return os.getloadavg()[0] < (os.cpu_count() or 1) - 1
    except OSError:
        return False


def _not_sockets_read_again(fd_dir: str, known: dict[str, int]) -> dict[str, int]:
    """The remembered fds, those that were not sockets read again (a socket may have taken a file's number)."""
    again = [name for name, inode in known.items() if inode == 0]
    if not again:
        return known
    fds = dict(known)
    for name in again:
        try:
            target = os.readlink(fd_dir + name)
        except FileNotFoundError:  # closed since: the next scan sees the count change
            del fds[name]
            continue
        fds[name] = int(target[8:-1]) if target.startswith("socket:[") else 0
    return fds


def _unchanged(fd_dir: str, known: dict[str, int], distrusted: Set[int]) -> bool:
    """Whether a process's fd table is as remembered, without listing it.

    Linux 6.2+ reports the number of open fds as the size of /proc/PID/fd (0 before). Same
    count and none of its sockets gone: nothing was closed, so nothing was opened either. A
    file closed and a socket opened in its place is the case this cannot see; the poller's
    search for unplaced sockets catches it with a full scan.
    """
    count = os.stat(fd_dir).st_size
    return count == len(known) and count > 0 and (not distrusted or distrusted.isdisjoint(known.values()))
