"""Every socket's end, from the kernel: the `sock_diag` destroy multicast groups, stdlib only.

Linux broadcasts each TCP and UDP socket's destruction on four netlink multicast groups
(`SKNLGRP_INET_TCP_DESTROY` = 1, `SKNLGRP_INET_UDP_DESTROY` = 2, `SKNLGRP_INET6_TCP_DESTROY` = 3,
`SKNLGRP_INET6_UDP_DESTROY` = 4; what `ss -E` listens to). Joining them needs no privilege. Each
message is an `inet_diag_msg`, as in a dump, parsed by the dump's own parser
(`conntui.sources.netlink.DiagParser`); a TCP one carries `tcp_info` (the final bytes, RTT and
retransmits). The socket's cookie is the same as in a netlink poll, so a closed socket is matched
to the poll that saw it by its key.

TIME_WAIT (measured on loopback, Linux 6.18): the kernel announces the *full* socket's destruction
when it hands the connection over to a TIME_WAIT minisocket, with state `CLOSE` and the final
tcp_info; the minisocket itself, when it expires 60 s later, is not announced (minisockets never
are). So a connection closed client-first produces its closed event at once, not a minute later,
and the TIME_WAIT entry a poll still shows afterwards is that minisocket, with a cookie of its
own. An orphaned socket (its file closed before the peer's FIN) becomes a FIN_WAIT2 minisocket
the same way, announced at once. Every TCP socket is announced in state `CLOSE` (listeners too),
UDP ones in `NONE`. The kernel counts a received FIN in `tcpi_bytes_received` and the `CLOSE`
state no longer says whether one came: `bytes_received` may be one more than the data. A socket
closed with SO_LINGER 0 (a reset) is disconnected before it is destroyed: its message has remote
port 0 and local address 0.0.0.0 (its local port and remote address stay).

Where subscribing fails (not Linux, an old kernel, a seccomp filter), `DestroyListener` raises
`DestroyEventsUnavailable` with the reason, for the caller to show; polling is unaffected.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterable

from conntui.model import NO_OWNER, Socket
from conntui.sources.netlink import NETLINK_SOCK_DIAG, DiagParser

SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
# Group number -> (proto, family) of the sockets it announces.
DESTROY_GROUPS = {1: ("tcp", 4), 2: ("udp", 4), 3: ("tcp", 6), 4: ("udp", 6)}
KIND_GROUPS = {kind: group for group, kind in DESTROY_GROUPS.items()}
_RECEIVE_BUFFER_BYTES = 16 << 20  # a burst of closes waits here while the reader is busy
_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
_DATAGRAM_BYTES = 1 << 16


class DestroyEventsUnavailable(Exception):
    """The kernel's destroy events cannot be subscribed to here; the message says why."""


class DestroyEventsLost(Exception):
    """The receive buffer overflowed: some closed sockets were not announced to us."""


class DestroyListener:
    """One netlink socket joined to the destroy groups of the chosen (proto, family) kinds."""

    def __init__(self, kinds: Iterable[tuple[str, int]] = KIND_GROUPS) -> None:
        groups = sorted({KIND_GROUPS[kind] for kind in kinds if kind in KIND_GROUPS})
        try:
            self._netlink = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG)
        except (AttributeError, OSError) as error:
            raise DestroyEventsUnavailable(f"sock_diag destroy events unavailable: {error}") from error
        try:
            self._netlink.bind((0, 0))
            for group in groups:
                self._netlink.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)
            self._netlink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER_BYTES)
            with contextlib.suppress(OSError):  # beyond net.core.rmem_max: only with CAP_NET_ADMIN
                self._netlink.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, _RECEIVE_BUFFER_BYTES)
        except OSError as error:
            self._netlink.close()
            raise DestroyEventsUnavailable(f"cannot join the sock_diag destroy groups: {error}") from error
        self._buffer = bytearray(_DATAGRAM_BYTES)
        self._parser = DiagParser()

    def fileno(self) -> int:
        """For `select`: readable when an event waits."""
        return self._netlink.fileno()

    def close(self) -> None:
        self._netlink.close()

    def receive(self, timeout: float | None = None) -> list[Socket]:
        """The sockets destroyed in the next datagram (waiting up to `timeout` s; [] if none came).

        Each is the socket as it was destroyed: four-tuple, last state, cookie (`key`), uid and
        final TCP figures; no owner (its process may be gone already). Raises
        `DestroyEventsLost` when the kernel had to drop some.
        """
        self._netlink.settimeout(timeout)
        try:
            size, (_pid, group_mask) = self._netlink.recvfrom_into(self._buffer)
        except (TimeoutError, BlockingIOError):  # nothing within the timeout
            return []
        except OSError as error:
            if error.errno == 105:  # ENOBUFS: the receive buffer overflowed
                raise DestroyEventsLost("the kernel dropped destroy events (receive buffer full)") from error
            raise
        kind = DESTROY_GROUPS.get(group_mask.bit_length())  # the mask of the one group it was sent to
        if kind is None:
            return []
        proto, family = kind
        rows: list[Socket] = []
        data = memoryview(self._buffer)[:size]
        self._parser.parse(data, 0, proto, family, proto == "tcp", rows, {}, {None: NO_OWNER}, None)
        return rows
