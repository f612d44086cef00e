"""Which sockets share which parts of a four-tuple: the detail pane's account of uniqueness.

Four values identify a connection; two connections may share some, never all four. For one
socket, `shared_parts` counts, for each meaningful subset of its tuple, the live sockets that
share it. Pure functions over a snapshot's sockets.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from conntui.model import Socket, format_endpoint


@dataclass(frozen=True, slots=True)
class SharedPart:
    label: str  # e.g. "same remote endpoint 127.0.0.1:8080"
    count: int  # live sockets that have it, this one included while it is alive
    note: str  # who those sockets are: a true sentence for every count

    def sentence(self) -> str:
        noun = "socket" if self.count == 1 else "sockets"
        return f"{self.label}: {self.count} live {noun} — {self.note}"


REUSED = "identical: only SO_REUSEPORT sockets, unconnected UDP or separate network namespaces can share one"


def shared_parts(sock: Socket, sockets: Iterable[Socket]) -> list[SharedPart]:
    """For each meaningful part of the socket's four-tuple, the live sockets that share it."""
    proto, lip, lport, rip, rport = sock.four_tuple
    alive = False
    exact = local = remote = lport_only = ip_pair = 0
    remote_local_ips: set[str] = set()
    for other in sockets:
        if other.proto != proto:
            continue
        alive = alive or other.key == sock.key
        same_local = other.local_ip == lip and other.local_port == lport
        same_remote = other.remote_ip == rip and other.remote_port == rport
        exact += same_local and same_remote
        local += same_local
        if same_remote and rip is not None:
            remote += 1
            remote_local_ips.add(other.local_ip)
        lport_only += other.local_port == lport
        ip_pair += other.local_ip == lip and other.remote_ip == rip and rip is not None
    self_count = 1 if alive else 0

    def others(count: int, how: str) -> str:
        """The sockets other than this one that share a part: how many differ, how many are identical.

        Identical sockets share every part, so `exact` of them are among the `count`.
        """
        if count == 0:
            return "none now"
        differing, identical = count - exact, exact - self_count
        pieces = [f"{differing} {'other ' if differing == 1 else 'others '}differing {how}"] if differing else []
        if identical:
            pieces.append(f"{identical} identical to it")
        return ", ".join(pieces) or "no other"

    if exact == 0:
        exact_note = "none: this socket has closed"
    elif exact == 1:
        exact_note = "unique, as a connection must be" if alive else "held now by another socket (the tuple was reused)"
    else:
        exact_note = REUSED
    parts = [
        SharedPart("same four-tuple", exact, exact_note),
        SharedPart(
            f"same local endpoint {format_endpoint(lip, lport)}", local, others(local, "only in remote endpoint")
        ),
        SharedPart(f"same local port {lport}", lport_only, others(lport_only, "in local address or remote endpoint")),
    ]
    if rip is not None:
        how = "only in local port" if len(remote_local_ips) <= 1 else "in local endpoint"
        parts.insert(2, SharedPart(f"same remote endpoint {format_endpoint(rip, rport)}", remote, others(remote, how)))
        parts.append(SharedPart(f"same address pair {lip} → {rip}", ip_pair, others(ip_pair, "in ports")))
    return parts


def find_peer(sock: Socket, sockets: Iterable[Socket]) -> Socket | None:
    """The socket at the other end of this connection, when both ends live on this machine."""
    if sock.remote_ip is None:
        return None
    wanted = sock.peer_tuple
    for other in sockets:
        if other.four_tuple == wanted and other.key != sock.key:
            return other
    return None
