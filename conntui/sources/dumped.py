"""`conntui list`'s sockets, dumped by its forked child into memory shared with this process.

`list`'s child (`conntui.sources.owners.scan_in_child`) does the kernel's part of a listing on
the other core: first the netlink dump (~130 ms of kernel time at 100,000 sockets), straight
into a shared mapping, then the owner scan. Through the pipe to this process it tells each
reply's size as soon as the reply is there, so this process parses the replies as they come,
without a copy, while the child goes on to the scan.

On the pipe, for each kind in turn: the dump's sequence number, each reply's size, then 0.
`GAVE_UP` where the child stopped dumping (no netlink, the memory full, an error): this process
dumps that kind and the rest itself, as it does a kind whose replies never said the dump was done.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Callable, Iterator
from typing import BinaryIO

MOST_BYTES = 512 << 20  # address space: pages are taken as the dump fills them (40 MB at 100,000 TCP sockets)
ROW_BYTES = 512  # a dumped row with its TCP info takes ~400
GAVE_UP = 0xFFFFFFFF
_NUMBER = struct.Struct("=I")

Read = Callable[[int], bytes]  # the child's next bytes, as soon as written (fewer: it ended)


class SharedDump:
    """Made before the fork: the shared memory, and the kind (`--kind`) the child dumps. `write` is
    the child's side; `replies` and `pass_over_the_rest` this process's."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.memory = mmap.mmap(-1, room_for_a_dump())  # anonymous, shared with the child
        self._read_kinds = 0  # how many of the kinds this process has begun to read
        self._offset = 0  # where the next reply starts in the memory
        self._reading: Iterator[memoryview] | None = None  # the replies of the kind being read
        self._stopped = False

    def kinds(self) -> tuple[tuple[str, int], ...]:
        from conntui.model import KINDS

        return KINDS.get(self.kind, ())

    def write(self, pipe: BinaryIO) -> None:
        """In the child: dump the kinds into the memory (`NetlinkSource.dump_into`), telling `pipe`
        as it goes, or `GAVE_UP` where it cannot go on."""

        def tell(number: int) -> None:
            pipe.write(_NUMBER.pack(number))
            pipe.flush()

        from conntui.sources import SourceError
        from conntui.sources.netlink import NetlinkSource

        try:
            source = NetlinkSource()
            try:
                source.dump_into(self.kinds(), self.memory, tell)
            finally:
                source.close()
        except (OSError, MemoryError, SourceError):
            tell(GAVE_UP)

    def replies(self, read: Read, proto: str, family: int) -> tuple[int, Iterator[memoryview]] | None:
        """The child's dump of this kind: its sequence number, and the replies as the child tells of
        them; None if the child does not dump it (or stopped before). The kinds come in the child's
        order: any before this one are passed over."""
        kinds = self.kinds()
        if self._stopped or (proto, family) not in kinds[self._read_kinds :]:
            return None
        self._finish_reading()
        while kinds[self._read_kinds] != (proto, family):
            self._read_kinds += 1
            if self._number(read) is not None:
                self._reading = self._replies(read)
                self._finish_reading()
        self._read_kinds += 1
        sequence = self._number(read)
        if sequence is None:
            return None
        self._reading = self._replies(read)
        return sequence, self._reading

    def pass_over_the_rest(self, read: Read) -> None:
        """Read past whatever the child dumped that was not asked for: what it writes next follows."""
        for _kind in self.kinds()[self._read_kinds :]:
            self.replies(read, *_kind)
        self._finish_reading()

    def _replies(self, read: Read) -> Iterator[memoryview]:
        view = memoryview(self.memory)
        while (size := self._number(read)) is not None and size:
            yield view[self._offset : self._offset + size]
            self._offset += size

    def _finish_reading(self) -> None:
        """Take what is left of the kind being read (the parser stops at the end of the dump, before 0)."""
        if self._reading is not None:
            for _reply in self._reading:
                pass
            self._reading = None

    def _number(self, read: Read) -> int | None:
        """The child's next number; None (and no more from it) where it gave up or ended."""
        data = b"" if self._stopped else read(_NUMBER.size)
        number: int = _NUMBER.unpack(data)[0] if len(data) == _NUMBER.size else GAVE_UP
        if number == GAVE_UP:
            self._stopped = True
            return None
        return number


def room_for_a_dump() -> int:
    """Bytes for a dump of every socket there is, twice over (sockets open while it runs), at
    `ROW_BYTES` each: the sockets the kernel counts (/proc/net/sockstat: in use, and TIME_WAIT),
    at most `MOST_BYTES` (also where it cannot tell): no more address space is taken than the
    dump may need (a process limited by `ulimit -v` keeps it for its rows)."""
    try:
        with open("/proc/net/sockstat") as counts:
            text = counts.read()
        sockets = int(text.split("sockets: used ", 1)[1].split()[0]) + int(text.split(" tw ", 1)[1].split()[0])
    except (OSError, IndexError, ValueError):
        return MOST_BYTES
    return min(MOST_BYTES, 2 * sockets * ROW_BYTES + (1 << 20))
