"""One socket's `struct tcp_info` from the kernel (Linux `getsockopt(IPPROTO_TCP, TCP_INFO)`, no
privilege needed): segments, MSS, congestion window, RTT, retransmits, delivery rate.

The offsets are those of include/uapi/linux/tcp.h, the layout `conntui.sources.netlink` reads
from sock_diag's INET_DIAG_INFO (rtt at 68, snd_cwnd at 80, total_retrans at 100: the tests
check the two agree). A field the running kernel's struct does not reach yet is None.
"""

from __future__ import annotations

import socket
import struct
import sys
from dataclasses import dataclass
from typing import Protocol

# name: (offset, struct format) in struct tcp_info.
FIELDS = {
    "snd_mss": (16, "I"),
    "rcv_mss": (20, "I"),
    "rtt_us": (68, "I"),
    "snd_cwnd": (80, "I"),
    "total_retrans": (100, "I"),
    "segs_out": (136, "I"),
    "segs_in": (140, "I"),
    "data_segs_in": (152, "I"),
    "data_segs_out": (156, "I"),
    "delivery_rate": (160, "Q"),  # bytes per second (Linux 4.9+)
}
BUFFER_LENGTH = 256  # more than any kernel's struct so far; the kernel returns what it has


@dataclass(frozen=True)
class TcpInfo:
    snd_mss: int | None
    rcv_mss: int | None
    rtt_us: int | None
    snd_cwnd: int | None
    total_retrans: int | None
    segs_out: int | None
    segs_in: int | None
    data_segs_in: int | None
    data_segs_out: int | None
    delivery_rate: int | None


class HasSockopt(Protocol):
    """A socket, or asyncio's TransportSocket wrapper of one."""

    def getsockopt(self, level: int, option: int, buflen: int) -> bytes: ...


def parse_tcp_info(raw: bytes) -> TcpInfo:
    """The fields from the kernel's bytes (native byte order), None past their end."""
    values: dict[str, int | None] = {}
    for name, (offset, kind) in FIELDS.items():
        end = offset + struct.calcsize(kind)
        values[name] = struct.unpack_from(f"={kind}", raw, offset)[0] if len(raw) >= end else None
    return TcpInfo(**values)


def read_tcp_info(sock: HasSockopt) -> TcpInfo | None:
    """The socket's tcp_info now, or None (not Linux, or the socket is gone)."""
    option = getattr(socket, "TCP_INFO", None)
    if option is None or not sys.platform.startswith("linux"):
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, option, BUFFER_LENGTH)
    except OSError:
        return None
    return parse_tcp_info(raw)
