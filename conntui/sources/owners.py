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

import errno
import marshal
import mmap
import os
from collections.abc import Iterable, Iterator, Set
from typing import BinaryIO

from conntui.forked import Forked, run_forked
from conntui.sources.dumped import SharedDump

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
            except OSError as error:  # not ours to read: another user's process, or we lack CAP_SYS_PTRACE
                _unless_out_of_resources(error)
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


class PendingScan:
    """A full owner scan under way (`scan_in_child`), after the child's dump if it does one:
    `replies` gives the dump's replies as they come, `owners()` waits for the scan, `cancel()`
    drops both."""

    def __init__(
        self,
        scanner: OwnerScanner,
        shares: list[Share],
        claims: mmap.mmap,
        child: Forked | None,
        dump: SharedDump | None = None,
    ) -> None:
        self.scanner = scanner
        self._shares, self._claims, self._child = shares, claims, child
        self._dump = dump if child is not None else None

    def replies(self, proto: str, family: int) -> tuple[int, Iterator[memoryview]] | None:
        """The child's dump of this kind (`conntui.sources.dumped`): its sequence number and the
        kernel's replies as they come; None where the child does not dump it."""
        if self._dump is None or self._child is None:
            return None
        return self._dump.replies(self._child.read, proto, family)

    def owners(self) -> dict[int, tuple[int, ...]]:
        """Every socket's owners, in pid order; the scanner's `unreadable` and `last_full` set as
        `scan` sets them. This process reads what the child has not claimed yet, from the other end."""
        if self._child is None:
            return self.scanner.scan(full=True)
        mine, my_unreadable = _scan_claimed(self.scanner.proc, self._shares, self._claims, backwards=True)
        if self._dump is not None:
            self._dump.pass_over_the_rest(self._child.read)
        data = self._child.result()
        if data is None:  # the child failed
            return self.scanner.scan(full=True)
        found: dict[int, tuple[int, ...]]
        found, unreadable = marshal.loads(data)
        for inode, pids in mine.items():
            theirs = found.get(inode)
            found[inode] = pids if theirs is None else tuple(sorted({*theirs, *pids}))
        self.scanner.unreadable, self.scanner.last_full = {*unreadable, *my_unreadable}, True
        return found

    def cancel(self) -> None:
        """Not wanted any more (the command is stopping): the child, if any, is ended and reaped."""
        if self._child is not None:
            self._child.cancel()


def scan_in_child(scanner: OwnerScanner, dump_kind: str | None = None) -> PendingScan:
    """Start a full scan in a forked child process (`conntui.forked`), after a netlink dump of
    `dump_kind` (a `--kind`) into memory shared with this process if one is given
    (`conntui.sources.dumped`).

    For a one-shot command: the dump and the scan (mostly kernel work: `recv` and `readlink`)
    run on another core while this process parses the dump, and this process shares what is left
    of the scan when it asks for the result: the child reads the processes (`_shares`: the big
    ones in pieces) from the one with most fds down, this one from the one with fewest up, each
    claiming a piece in a byte of shared memory first, until they meet (a piece both claimed at
    once is read twice and counted once). The child stops early if this process ends. Where no
    child can be had, or it fails, this process dumps and scans itself.
    """
    shares = _shares(scanner.proc)
    claims = mmap.mmap(-1, max(1, len(shares)))  # shared with the child: 1 = taken
    dump = _shared_dump(dump_kind) if dump_kind else None
    parent = os.getpid()

    def work(pipe: BinaryIO) -> None:
        if dump is not None:
            dump.write(pipe)
        pipe.write(marshal.dumps(_scan_claimed(scanner.proc, shares, claims, parent=parent)))

    return PendingScan(scanner, shares, claims, run_forked(work), dump)


def _shared_dump(kind: str) -> SharedDump | None:
    try:
        return SharedDump(kind)
    except OSError:  # no address space to share (strict overcommit): this process dumps
        return None


# A scanner's piece of work: (pid, its first fd, the fd after its last, or None: every fd from the
# first up).
Share = tuple[int, int, "int | None"]
_SHARE_FDS = 4096  # a big process in pieces of this many fds (~12 ms): the two scanners end close together


def _shares(proc: str) -> list[Share]:
    """The processes under `proc`, the one with most open fds first (Linux 6.2+ gives the count as
    the size of /proc/PID/fd; as listed where it gives 0), a process of more than `_SHARE_FDS` in
    pieces of that many: a scanner that finishes first is never left waiting for the other to read
    a whole big process (one holding 50,000 connections takes ~150 ms)."""
    counts: list[tuple[int, int]] = []
    for entry in os.listdir(proc):
        if entry.isdigit():
            try:
                counts.append((os.stat(f"{proc}/{entry}/fd").st_size, int(entry)))
            except OSError:  # gone, or not ours to read: its scan says which
                counts.append((0, int(entry)))
    counts.sort(key=lambda count: -count[0])
    shares: list[Share] = []
    for count, pid in counts:
        last_first = max(0, count - 1) // _SHARE_FDS * _SHARE_FDS
        shares += [(pid, first, first + _SHARE_FDS) for first in range(0, last_first, _SHARE_FDS)]
        shares.append((pid, last_first, None))
    return shares


def _scan_claimed(
    proc: str, shares: list[Share], claims: mmap.mmap, *, backwards: bool = False, parent: int | None = None
) -> tuple[dict[int, tuple[int, ...]], list[int]]:
    """Owners of the sockets in the fd links of `shares`, read in turn (from the last with
    `backwards`), each claimed in `claims` first; stops at one already claimed (the other scanner
    has the rest), or once `parent` is no longer this process's parent (it ended: nobody waits).
    The pids whose links could not (all) be read come second."""
    owners: dict[int, tuple[int, ...]] = {}
    shared: set[int] = set()
    unreadable: list[int] = []
    for index in range(len(shares) - 1, -1, -1) if backwards else range(len(shares)):
        if claims[index] or (parent is not None and os.getppid() != parent):
            break
        claims[index] = 1
        pid, first, end = shares[index]
        try:
            inodes, all_read = _socket_inodes(f"{proc}/{pid}/fd/", first, end)
        except FileNotFoundError:  # gone
            continue
        except OSError as error:  # not ours to read
            _unless_out_of_resources(error)
            unreadable.append(pid)
            continue
        if not all_read:
            unreadable.append(pid)
        alone = (pid,)
        for inode in inodes:
            holders = owners.setdefault(inode, alone)
            if holders is not alone and holders[-1] != pid:  # held by another process too (one may hold it twice)
                owners[inode] = (*holders, pid)
                shared.add(inode)
    for inode in shared:  # in pid order, as a scan of /proc lists them
        owners[inode] = tuple(sorted(owners[inode]))
    return owners, unreadable


_LISTED_UP_TO = 256  # open fds: a process with no more has its directory listed, not its fds read by number


def _socket_inodes(fd_dir: str, first: int = 0, end: int | None = None) -> tuple[list[int], bool]:
    """The socket inodes in a process's fd links `first` to `end` less one (`end` None: every fd
    from `first` up), and whether every link could be read: for the one-shot scan, which keeps
    nothing else.

    Every fd a process has is below the size of its fd table (`FDSize` in /proc/PID/status), so
    a process with many fds has them read by number up to it, without listing its directory (a
    listing costs the kernel ~0.7 µs per fd, 70 ms for 100,000; a number not open ~3 µs): where
    fewer than a quarter as many numbers as fds are not open (16,000 fds in a table of 16,384).
    Otherwise (a few fds, far apart ones, or no count from the kernel: the size of /proc/PID/fd,
    Linux 6.2+) its directory is listed."""
    directory = os.open(fd_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        inodes: list[int] = []
        names: Iterable[str]
        if end is not None:
            names = map(str, range(first, end))
        else:
            count = os.fstat(directory).st_size
            size = _fd_table_size(fd_dir) if count > _LISTED_UP_TO else 0
            if size and 4 * (size - count) <= count:
                names = map(str, range(first, size))
            else:
                names = [name for name in os.listdir(directory) if int(name) >= first]
        return inodes, _read_links(directory, names, inodes)
    finally:
        os.close(directory)


def _fd_table_size(fd_dir: str) -> int:
    """The size of a process's fd table (its fds are all below it), from /proc/PID/status."""
    with open(fd_dir.removesuffix("/").removesuffix("fd") + "status") as status:
        for line in status:
            if line.startswith("FDSize:"):
                return int(line.split()[1])
    raise FileNotFoundError(fd_dir)  # no such line: a process gone (its status emptied)


def _read_links(directory: int, names: Iterable[str], inodes: list[int]) -> bool:
    """Read the fd links `names` (relative to `directory`: the kernel resolves no path per link),
    appending the inodes of those that are sockets to `inodes`: whether every open one could be
    read."""
    readlink = os.readlink
    all_read = True
    for name in names:
        try:
            target = readlink(name, dir_fd=directory)
        except FileNotFoundError:  # not open, or closed meanwhile
            continue
        except OSError:  # not ours to read (no ptrace right over it)
            all_read = False
        else:
            if target[:8] == "socket:[":
                inodes.append(int(target[8:-1]))
    return all_read


def _unless_out_of_resources(error: OSError) -> None:
    """Raise `error` if it says this process is out of fds or memory: that is not a process whose
    fds may not be read (its sockets would be shown as hidden owners, for the wrong reason)."""
    if error.errno in (errno.EMFILE, errno.ENFILE, errno.ENOMEM):
        raise error


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
