"""The socket record, the snapshot it lives in, and the vocabulary around them (kinds, states, modes).

A `Socket` is one kernel socket. Its `key` is its stable identity across polls (the netlink
socket cookie, else the inode, else the tuple itself for sockets without an inode such as
TIME_WAIT); its `four_tuple` is what the user sees and what must be unique.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from operator import attrgetter, countOf, itemgetter
from typing import NamedTuple

TCP_STATES: dict[int, str] = {
    1: "ESTABLISHED",
    2: "SYN_SENT",
    3: "SYN_RECV",
    4: "FIN_WAIT1",
    5: "FIN_WAIT2",
    6: "TIME_WAIT",
    7: "CLOSE",
    8: "CLOSE_WAIT",
    9: "LAST_ACK",
    10: "LISTEN",
    11: "CLOSING",
    12: "SYN_RECV",  # TCP_NEW_SYN_RECV: a request socket, shown as psutil and ss do
}
# A socket no process holds (inode 0: a request socket in SYN_RECV, a TIME_WAIT or orphaned
# FIN_WAIT2 minisocket, a full socket its process closed) has no owner and no user: the kernel
# reports uid 0 for the first three, which is not root's.
# States after the peer's FIN: the kernel's byte count includes the FIN's sequence number.
FIN_RECEIVED_STATES = frozenset({"CLOSE_WAIT", "LAST_ACK", "CLOSING"})
UDP_STATE = "NONE"
_IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
STATE_NAMES: frozenset[str] = frozenset(TCP_STATES.values()) | {UDP_STATE}

# KIND (as psutil spells it) -> the (proto, family) pairs it covers.
KINDS: dict[str, tuple[tuple[str, int], ...]] = {
    "inet": (("tcp", 4), ("tcp", 6), ("udp", 4), ("udp", 6)),
    "tcp": (("tcp", 4), ("tcp", 6)),
    "udp": (("udp", 4), ("udp", 6)),
    "tcp4": (("tcp", 4),),
    "tcp6": (("tcp", 6),),
    "udp4": (("udp", 4),),
    "udp6": (("udp", 6),),
}

# (owner pids, first owner's process name, its user): what the poller resolves per inode.
Owner = tuple[tuple[int, ...], "str | None", "str | None"]
NO_OWNER: Owner = ((), None, None)
# A set of owner pids -> its owner fields (keyed so that a lookup of "none found", None, misses).
OwnerEntries = dict[tuple[int, ...] | None, Owner]

FourTuple = tuple[str, str, int, "str | None", "int | None"]
FOUR_TUPLE_FIELDS = ("proto", "local_ip", "local_port", "remote_ip", "remote_port")


class Socket(NamedTuple):
    """One kernel socket. A NamedTuple, not a dataclass: 100,000 are built per poll."""

    key: object
    proto: str
    family: int
    local_ip: str
    local_port: int
    remote_ip: str | None
    remote_port: int | None
    state: str
    inode: int = 0
    uid: int | None = None
    pids: tuple[int, ...] = ()
    process: str | None = None
    user: str | None = None
    rtt_ms: float | None = None
    rttvar_ms: float | None = None
    retrans: int | None = None
    cwnd: int | None = None
    bytes_sent: int | None = None
    bytes_received: int | None = None

    @property
    def four_tuple(self) -> FourTuple:
        """(proto, local ip, local port, remote ip, remote port): the connection's identity."""
        four_tuple: FourTuple = _FOUR_TUPLE(self)
        return four_tuple

    @property
    def peer_tuple(self) -> FourTuple:
        """The four-tuple the other end of this connection has, if it lives on this machine."""
        return peer_tuple(self.four_tuple)

    @property
    def local(self) -> str:
        return format_endpoint(self.local_ip, self.local_port)

    @property
    def remote(self) -> str:
        if self.remote_ip is None:
            return "*"
        return format_endpoint(self.remote_ip, self.remote_port)


# Socket.four_tuple without a Python call per socket: (proto, local_ip, local_port, remote_ip, remote_port).
_FOUR_TUPLE = itemgetter(*(Socket._fields.index(name) for name in FOUR_TUPLE_FIELDS))


def format_pids(pids: tuple[int, ...], *, every: bool = False) -> str:
    """Owner pids as people read them: the first and how many more (`26682 +1`), or `every` one
    (`26682,26690`, for the event log's owner changes); `-` when no owner is seen."""
    if not pids:
        return "-"
    if every or len(pids) == 1:
        return ",".join(map(str, pids))
    return f"{pids[0]} +{len(pids) - 1}"


def peer_tuple(four_tuple: FourTuple) -> FourTuple:
    """The four-tuple of a connection's other end: the same four values, the ends swapped."""
    proto, local_ip, local_port, remote_ip, remote_port = four_tuple
    return (proto, remote_ip or "", remote_port or 0, local_ip, local_port)


def format_endpoint(ip: str, port: int | None) -> str:
    """`1.2.3.4:80`, `[::1]:80`."""
    host = f"[{ip}]" if ":" in ip else ip
    return f"{host}:{port if port is not None else '*'}"


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """What we show of an owner process."""

    pid: int
    name: str | None
    user: str | None
    cmdline: tuple[str, ...] = ()
    create_time: float | None = None


def listing_order(sock: Socket) -> tuple[str, int, int, str, int]:
    """The order `conntui list` prints sockets in: protocol, family, local port, local address, remote port."""
    return (sock.proto, sock.family, sock.local_port, sock.local_ip, sock.remote_port or 0)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every socket seen by one poll, with the owner processes it found."""

    sockets: tuple[Socket, ...]
    processes: dict[int, ProcessInfo] = field(default_factory=dict)
    taken_at: float = field(default_factory=time.time)
    duration_ms: float = 0.0
    backend: str = ""
    # Sockets a process holds (they have an inode) whose owner we could not see, because some
    # processes' open files were unreadable (another user's, or no CAP_SYS_PTRACE): 0 otherwise.
    hidden_owners: int = 0
    unreadable_processes: int = 0
    unchanged: bool = False  # every socket as in the previous poll, field for field

    def hidden_note(self, *, explain: bool = True) -> str:
        return hidden_owners_note(self.hidden_owners, self.unreadable_processes, explain=explain)

    def tuple_counts(self) -> Counter[FourTuple]:
        """How many live sockets hold each exact four-tuple (1 normally): a `TupleCounts`."""
        return TupleCounts.of(self.sockets)


class TupleCounts(Counter[FourTuple]):
    """Sockets per four-tuple, storing only the four-tuples held by more than one socket: any other
    (of the snapshot it was made from) counts 1. At 100,000 sockets a Counter of every four-tuple
    would keep 13 MB of tuples, for the few that matter."""

    def __missing__(self, key: FourTuple) -> int:
        return 1

    @classmethod
    def of(cls, sockets: Iterable[Socket]) -> TupleCounts:
        sockets = tuple(sockets)
        # Hashes first: no tuple outlives this line. A hash seen twice may be a shared four-tuple.
        hashes = Counter(map(hash, map(_FOUR_TUPLE, sockets)))
        if len(hashes) == len(sockets):
            return cls()
        shared = {value for value, count in hashes.items() if count > 1}
        candidates = Counter(four_tuple for four_tuple in map(_FOUR_TUPLE, sockets) if hash(four_tuple) in shared)
        return cls({four_tuple: count for four_tuple, count in candidates.items() if count > 1})


def hidden_owners_note(hidden_owners: int, unreadable_processes: int, *, explain: bool = True) -> str:
    """One line saying what the missing privilege hides, or "" when nothing is hidden; `explain`:
    with what would show them (the status line leaves it to the README, for room at 80 columns)."""
    if not hidden_owners:
        return ""
    sockets = "socket" if hidden_owners == 1 else "sockets"
    processes = "1 process" if unreadable_processes == 1 else f"{unreadable_processes} processes"
    why = " (no CAP_SYS_PTRACE over them)" if _IS_ROOT else " (run as root)"
    return f"owners of {hidden_owners} {sockets} hidden: {processes} not readable{why if explain else ''}"


def count_hidden_owners(sockets: Collection[Socket]) -> int:
    """Sockets a process holds (they have an inode) with no owner found: hidden, when fds were unreadable.
    Counted in C (100,000 sockets: 4 ms, not 25): every socket, less those with an owner, less
    those no process holds (inode 0, which never have one)."""
    owned = sum(map(bool, map(attrgetter("pids"), sockets)))
    return len(sockets) - owned - countOf(map(attrgetter("inode"), sockets), 0)
