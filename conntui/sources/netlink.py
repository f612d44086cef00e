"""Linux `sock_diag` netlink dumps (TCP and UDP, IPv4 and IPv6, all states), stdlib only.

One `SOCK_DIAG_BY_FAMILY` dump request per (proto, family); each reply row is an
`inet_diag_msg` (72 bytes) optionally followed by an `INET_DIAG_INFO` attribute holding the
kernel's `struct tcp_info`, from which the TCP metrics come (no root needed, as for `ss -ti`).
`destroy_socket` closes one socket with a `SOCK_DESTROY` request, as `ss -K` does (needs
CAP_NET_ADMIN and a kernel built with CONFIG_INET_DIAG_DESTROY); `socket_state` looks one
socket up by its exact four-tuple and cookie.
"""

from __future__ import annotations

import errno
import mmap
import os
import socket
import struct
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping

from conntui.model import FIN_RECEIVED_STATES, NO_OWNER, TCP_STATES, UDP_STATE, Owner, Socket
from conntui.sources import NO_OWNERS, SourceError, UserName

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
INET_DIAG_INFO = 2
ALL_STATES = 0xFFFFFFFF
# A dump's states: all but TCP_BOUND_INACTIVE (13, Linux 6.5+): sockets bound to a port and
# neither listening nor connected, which `ss -a`, /proc/net/tcp and psutil do not list either.
DUMPED_STATES = ALL_STATES & ~(1 << 13)

_NLMSG_HEADER = struct.Struct("=IHHII")
# inet_diag_req_v2: family, protocol, ext, pad, states, then inet_diag_sockid (all zero: dump).
_DIAG_REQUEST = struct.Struct("=BBBxI48x")
# inet_diag_msg: family, state, timer, retrans, sport, dport (big-endian, swapped below),
# src[16], dst[16], if, cookie, expires, rqueue, wqueue, uid, inode.
_DIAG_MSG = struct.Struct("=BBBBHH16s16sIQIIIII")
# A dump's row as one unpack: the netlink header (length, type, sequence) and the inet_diag_msg
# fields a Socket needs: state, sport, dport, src, dst, cookie, uid, inode.
_ROW = struct.Struct("=IH2xI4xxB2xHH16s16s4xQ12xII")
_RTATTR = struct.Struct("=HH")
# struct tcp_info from tcpi_rtt (offset 68) to tcpi_bytes_retrans (ends at offset 216, Linux 4.19+):
# rtt, rttvar, [snd_ssthresh], snd_cwnd, [advmss reordering rcv_rtt rcv_space], total_retrans,
# [pacing_rate max_pacing_rate bytes_acked], bytes_received, [segs_out ... delivered_ce],
# bytes_sent, bytes_retrans. Sent = bytes_sent - bytes_retrans: the data the application sent,
# once (bytes_acked would count the SYN and the FIN too).
_TCP_INFO_OFFSET = 68
_TCP_INFO = struct.Struct("=II4xI16xI24xQ64xQQ")
_TCP_INFO_END = _TCP_INFO_OFFSET + _TCP_INFO.size
# The INET_DIAG_INFO attribute as one unpack: its length and type, then those fields.
_INFO_ATTRIBUTE = struct.Struct(f"=HH{_TCP_INFO_OFFSET}x" + _TCP_INFO.format.lstrip("="))
# States whose rows have no metrics: a listener has tcp_info but no connection to measure (its
# metrics are null); TIME_WAIT (6) and NEW_SYN_RECV (12) rows are minisockets, without tcp_info
# (a TIME_WAIT row still carries an attribute: without this, every one would be searched for it).
_NO_INFO_STATES = frozenset({6, 10, 12})

_PROTOCOLS = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP}
_FAMILIES = {4: socket.AF_INET, 6: socket.AF_INET6}
_RECV_BUFFER = 1 << 16
# (proto, family) -> a dump of that kind done elsewhere: (its sequence number, the kernel's replies), or None.
DumpedReplies = Callable[[str, int], "tuple[int, Iterable[memoryview]] | None"]
_TCP_STATE_NAMES = [TCP_STATES.get(number, "UNKNOWN") for number in range(256)]
_UDP_STATE_NAMES = [UDP_STATE] * 256
_FIN_SEEN = [int(name in FIN_RECEIVED_STATES) for name in _TCP_STATE_NAMES]  # 1 byte of FIN to take off

_PORT = [(port & 255) << 8 | port >> 8 for port in range(65536)] if sys.byteorder == "little" else list(range(65536))


class NetlinkSource:
    """Dumps sockets through one NETLINK_SOCK_DIAG socket, kept open between polls."""

    name = "netlink"
    includes_owners = False

    def __init__(self, tcp_info: bool = True) -> None:
        self.tcp_info = tcp_info
        try:
            self._netlink = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG)
        except (AttributeError, OSError) as error:
            raise SourceError(f"netlink sock_diag unavailable: {error}") from error
        self._buffer = bytearray(_RECV_BUFFER)
        self._sequence = 0
        self._parser = DiagParser()

    def close(self) -> None:
        self._netlink.close()

    def list_sockets(
        self,
        kinds: Iterable[tuple[str, int]],
        owners: Mapping[int, Owner] = NO_OWNERS,
        user_name: UserName | None = None,
        dumped: DumpedReplies | None = None,
    ) -> list[Socket]:
        """`dumped`: the kernel's replies to a dump another process asked for (`list`'s forked child,
        `conntui.sources.dumped`), (its sequence number, its datagrams) by kind, or None for a kind
        it did not dump; a dump that ends before the kernel said it was done is done again here."""
        rows: list[Socket] = []
        users: dict[int | None, Owner] = {None: NO_OWNER}
        for proto, family in kinds:
            replies = dumped(proto, family) if dumped is not None else None
            if replies is not None:
                first = len(rows)
                if self._parse(proto, family, *replies, rows, owners, users, user_name):
                    continue
                del rows[first:]
            self._parse(proto, family, self._ask(proto, family), self._replies(), rows, owners, users, user_name)
        return rows

    def _ask(self, proto: str, family: int) -> int:
        """Ask for a dump of this kind: its sequence number."""
        self._sequence += 1
        want_info = self.tcp_info and proto == "tcp"
        request = _DIAG_REQUEST.pack(
            _FAMILIES[family], _PROTOCOLS[proto], 1 << (INET_DIAG_INFO - 1) if want_info else 0, DUMPED_STATES
        )
        header = _NLMSG_HEADER.pack(
            _NLMSG_HEADER.size + len(request), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, self._sequence, 0
        )
        self._netlink.sendto(header + request, (0, 0))
        return self._sequence

    def _replies(self) -> Iterator[memoryview]:
        """The kernel's replies as they come, each valid until the next is taken."""
        while True:
            size = self._netlink.recv_into(self._buffer)
            yield memoryview(self._buffer)[:size]

    def _parse(
        self,
        proto: str,
        family: int,
        sequence: int,
        replies: Iterable[memoryview],
        rows: list[Socket],
        owners: Mapping[int, Owner],
        users: dict[int | None, Owner],
        user_name: UserName | None,
    ) -> bool:
        """Parse a dump's replies into `rows`: whether the kernel said it was done."""
        want_info = self.tcp_info and proto == "tcp"
        parse = self._parser.parse
        return any(parse(data, sequence, proto, family, want_info, rows, owners, users, user_name) for data in replies)

    def dump_into(self, kinds: Iterable[tuple[str, int]], memory: mmap.mmap, tell: Callable[[int], None]) -> None:
        """Dump each kind into `memory`, the kernel's replies one after the other from its start, for
        another process to parse (`conntui.sources.dumped`): `tell` is told each kind's sequence
        number, then each reply's size as soon as it is there, then 0 at the kind's end.

        Replies are taken without waiting (MSG_DONTWAIT): the kernel queues a dump's first reply
        before the request returns, and each next one as the last is taken, so an empty queue
        means the dump is done. (Were it not, the reader sees no end of dump in the replies and
        dumps that kind itself.) Raises OSError, or MemoryError once `memory` is full."""
        view, recv_into = memoryview(memory), self._netlink.recv_into
        offset = 0
        for proto, family in kinds:
            tell(self._ask(proto, family))
            while True:
                if offset + _RECV_BUFFER > len(view):
                    raise MemoryError("the dump does not fit in the memory it was given")
                try:
                    size = recv_into(view[offset : offset + _RECV_BUFFER], _RECV_BUFFER, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    break
                tell(size)
                offset += size
            tell(0)


class DiagParser:
    """Turns `inet_diag_msg` datagrams into `Socket` rows: for dumps, and for the destroy events
    (`conntui.sources.destroy_events`), which the kernel sends in the same format."""

    def __init__(self) -> None:
        # Address bytes -> text per family, shared across polls: a busy host has few distinct
        # addresses. Per family: 16 zero bytes are 0.0.0.0 in an IPv4 row and :: in an IPv6 one.
        self._addresses: dict[int, dict[bytes, str]] = {4: {}, 6: {}}
        self._info_offset = 0
        self._milliseconds = _Milliseconds()

    def parse(
        self,
        data: memoryview,
        expected_sequence: int,
        proto: str,
        family: int,
        want_info: bool,
        rows: list[Socket],
        owners: Mapping[int, Owner],
        users: dict[int | None, Owner],
        user_name: UserName | None,
    ) -> bool:
        """Append the rows of one datagram (its messages numbered `expected_sequence`); True once
        the dump is done. The hot loop of a poll."""
        addresses = self._addresses[family]
        address_length = 4 if family == 4 else 16
        address_family = _FAMILIES[family]
        state_names = _TCP_STATE_NAMES if proto == "tcp" else _UDP_STATE_NAMES
        new = tuple.__new__  # Socket._make without its Python-level wrapper: this runs 100,000 times
        unpack_header = _NLMSG_HEADER.unpack_from
        unpack_row = _ROW.unpack_from
        unpack_info = _INFO_ATTRIBUTE.unpack_from
        port = _PORT
        fin_seen = _FIN_SEEN
        info_at = self._info_offset  # where INET_DIAG_INFO usually sits after the message
        if len(self._milliseconds) > _MILLISECONDS_KEPT:
            self._milliseconds = _Milliseconds()
        milliseconds = self._milliseconds
        offset, end = 0, len(data)
        while offset + 16 <= end:
            whole_row = offset + _ROW.size <= end
            if whole_row:
                length, kind, sequence, state, sport, dport, src, dst, cookie, uid, inode = unpack_row(data, offset)
            else:  # too short for a socket's row: the dump's end, an error
                length, kind, _flags, sequence, _pid = unpack_header(data, offset)
            if not whole_row or kind != SOCK_DIAG_BY_FAMILY or sequence != expected_sequence or length < _ROW.size:
                if length < _NLMSG_HEADER.size or (
                    sequence == expected_sequence and _control_message(data, offset, proto, family)
                ):
                    return True
                offset += (length + 3) & ~3
                continue
            local_ip = addresses.get(src)
            if local_ip is None:
                local_ip = addresses[src] = socket.inet_ntop(address_family, src[:address_length])
            remote_ip = addresses.get(dst)
            if remote_ip is None:
                remote_ip = addresses[dst] = socket.inet_ntop(address_family, dst[:address_length])
            remote_port: int | None = port[dport]
            if remote_port == 0 and (remote_ip == "0.0.0.0" or remote_ip == "::"):
                remote_ip = remote_port = None
            if not inode:
                uid = None  # no process holds it: the kernel's uid 0 is nobody's (see model.py)
            owner = owners.get(inode) if inode else None
            if owner is None:  # nobody we can see holds it: show whose socket it is, at least
                owner = users.get(uid)
                if owner is None:
                    owner = users[uid] = ((), None, user_name(uid) if user_name else None)
            metrics: tuple[float | int | None, ...] = _NO_METRICS
            if want_info and length > _ROW.size and state not in _NO_INFO_STATES:
                row_end = offset + length
                attr = offset + _ROW.size + info_at
                info = unpack_info(data, attr) if attr + _INFO_LENGTH <= row_end else _NO_INFO
                if info[1] != INET_DIAG_INFO:  # not where it usually is: looked for, and the place kept
                    info_at = self._info_offset = _find_info(data, offset + _ROW.size, row_end, info_at)
                    attr = offset + _ROW.size + info_at
                    info = unpack_info(data, attr) if attr + _INFO_LENGTH <= row_end else _NO_INFO
                info_length, info_type, rtt, rttvar, cwnd, retrans, received, sent, resent = info
                if info_type == INET_DIAG_INFO and info_length >= _INFO_LENGTH:  # older kernels: shorter
                    if rtt:
                        metrics = (
                            milliseconds[rtt],
                            milliseconds[rttvar],
                            retrans,
                            cwnd,
                            sent - resent,
                            received - fin_seen[state],
                        )
                    else:  # no RTT sample yet (SYN_SENT): unknown, not 0
                        metrics = (None, None, retrans, cwnd, sent - resent, received - fin_seen[state])
            rows.append(
                new(
                    Socket,
                    (
                        cookie,
                        proto,
                        family,
                        local_ip,
                        port[sport],
                        remote_ip,
                        remote_port,
                        state_names[state],
                        inode,
                        uid,
                        *owner,
                        *metrics,
                    ),
                )
            )
            offset += (length + 3) & ~3
        return False


_NO_METRICS: tuple[None, ...] = (None, None, None, None, None, None)
_MILLISECONDS_KEPT = 100_000


class _Milliseconds(dict[int, float]):
    """Microseconds -> milliseconds, one float per distinct value: sockets with the same RTT share it
    (100,000 loopback sockets have a few dozen RTTs: 4.8 MB of floats saved)."""

    def __missing__(self, microseconds: int) -> float:
        value = self[microseconds] = microseconds / 1000
        return value


_INFO_LENGTH = _RTATTR.size + _TCP_INFO_END  # the smallest INET_DIAG_INFO attribute with our fields
_NO_INFO = (0,) * 9  # an `_INFO_ATTRIBUTE` of no type: no room for one


def _control_message(data: memoryview, offset: int, proto: str, family: int) -> bool:
    """Whether this message of the dump, not a socket's row, ends it: its end (NLMSG_DONE), or the
    kernel's acknowledgement; raises OSError for the kernel's error."""
    _length, kind, _flags, _sequence, _pid = _NLMSG_HEADER.unpack_from(data, offset)
    if kind == NLMSG_DONE:
        return True
    if kind == NLMSG_ERROR:
        (error,) = struct.unpack_from("=i", data, offset + _NLMSG_HEADER.size)
        if error:
            raise OSError(-error, f"sock_diag dump of {proto}{family} failed")
        return True
    return False


def _find_info(data: memoryview, offset: int, end: int, usual: int) -> int:
    """Where INET_DIAG_INFO sits after the message in this row (the usual place if absent)."""
    start = offset
    while offset + _RTATTR.size <= end:
        length, kind = _RTATTR.unpack_from(data, offset)
        if length < _RTATTR.size:
            break
        if kind == INET_DIAG_INFO:
            return offset - start
        offset += (length + 3) & ~3
    return usual


SOCK_DESTROY = 21
NLM_F_ACK = 0x4
INET_DIAG_NOCOOKIE = 0xFFFFFFFFFFFFFFFF
# inet_diag_req_v2 with its inet_diag_sockid filled in (SOCK_DESTROY, or the lookup of one
# socket): family, protocol, ext, pad, states, then sport and dport (network order), src[16],
# dst[16], if, cookie (two u32 halves, native order).
_DESTROY_REQUEST = struct.Struct("=BBBxI2s2s16s16sIQ")


def destroy_socket(sock: Socket, cookie: int | None) -> None:
    """Ask the kernel to close `sock` (`SOCK_DESTROY`, as `ss -K` does): its owner sees ECONNABORTED.

    The socket is named by its exact four-tuple and, when known, its cookie (a socket that has
    since been replaced by another with the same four values is then not touched). Raises
    OSError with the kernel's errno: EOPNOTSUPP without CONFIG_INET_DIAG_DESTROY, EPERM without
    CAP_NET_ADMIN, ENOENT when no such socket is left, ESTALE when the cookie no longer matches.
    """
    _exact_request(SOCK_DESTROY, sock, cookie)


def socket_state(sock: Socket, cookie: int | None) -> str | None:
    """The state `sock` is in now (as a dump names it), looked up by its exact four-tuple and,
    when known, its cookie; None when no such socket is left. Needs no privilege."""
    try:
        reply = _exact_request(SOCK_DIAG_BY_FAMILY, sock, cookie)
    except OSError as error:
        if error.errno in (errno.ENOENT, errno.ESTALE):
            return None
        raise
    state: int = _DIAG_MSG.unpack_from(reply, _NLMSG_HEADER.size)[1]
    return (_TCP_STATE_NAMES if sock.proto == "tcp" else _UDP_STATE_NAMES)[state]


def _exact_request(kind: int, sock: Socket, cookie: int | None) -> bytes:
    """Send one request of `kind` naming `sock` exactly; the kernel's reply (an answer, or an
    acknowledgement). Raises OSError with the kernel's errno when it refuses."""
    family = _FAMILIES[sock.family]

    def packed(ip: str | None) -> bytes:
        return socket.inet_pton(family, ip).ljust(16, b"\0") if ip else bytes(16)

    request = _DESTROY_REQUEST.pack(
        family,
        _PROTOCOLS[sock.proto],
        0,
        ALL_STATES,
        struct.pack("!H", sock.local_port),
        struct.pack("!H", sock.remote_port or 0),
        packed(sock.local_ip),
        packed(sock.remote_ip),
        0,
        INET_DIAG_NOCOOKIE if cookie is None else cookie,
    )
    header = _NLMSG_HEADER.pack(_NLMSG_HEADER.size + len(request), kind, NLM_F_REQUEST | NLM_F_ACK, 1, 0)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as netlink:
        netlink.settimeout(5)
        netlink.sendto(header + request, (0, 0))
        reply = netlink.recv(_RECV_BUFFER)
    _length, answer, _flags, _sequence, _pid = _NLMSG_HEADER.unpack_from(reply)
    if answer == NLMSG_ERROR:
        (error,) = struct.unpack_from("=i", reply, _NLMSG_HEADER.size)
        if error:
            raise OSError(-error, os.strerror(-error))
    return reply
