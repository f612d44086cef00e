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
    count: int  # live sockets sharing it, this one included
    note: str  # how those sockets differ


def shared_parts(sock: Socket, sockets: Iterable[Socket]) -> list[SharedPart]:
    proto, lip, lport, rip, rport = sock.four_tuple
    exact = local = remote = lport_only = ip_pair = 0
    remote_local_ips: set[str] = set()
    for other in sockets:
        if other.proto != proto:
            continue
        same_local = other.local_ip == lip and other.local_port == lport
        same_remote = other.remote_ip == rip and other.remote_port == rport
        exact += same_local and same_remote
        local += same_local
        if same_remote and rip is not None:
            remote += 1
            remote_local_ips.add(other.local_ip)
        lport_only += other.local_port == lport
        ip_pair += other.local_ip == lip and other.remote_ip == rip and rip is not None
    parts = [
        SharedPart(
            "same four-tuple",
            exact,
            "unique, as a connection must be" if exact == 1 else "held by several sockets (SO_REUSEPORT, namespaces)",
        ),
        SharedPart(f"same local endpoint {format_endpoint(lip, lport)}", local, "differing only in remote endpoint"),
        SharedPart(f"same local port {lport}", lport_only, "differing in local address or remote endpoint"),
    ]
    if rip is not None:
        differ = "differing only in local port" if len(remote_local_ips) == 1 else "differing in local endpoint"
        parts.insert(2, SharedPart(f"same remote endpoint {format_endpoint(rip, rport)}", remote, differ))
        parts.append(SharedPart(f"same address pair {lip} → {rip}", ip_pair, "differing in ports"))
    return [
        part if part.count > 1 or part.label == "same four-tuple" else SharedPart(part.label, 1, "no other")
        for part in parts
    ]


def find_peer(sock: Socket, sockets: Iterable[Socket]) -> Socket | None:
    """The socket at the other end of this connection, when both ends live on this machine."""
    if sock.remote_ip is None:
        return None
    wanted = sock.peer_tuple
    for other in sockets:
        if other.four_tuple == wanted and other.key != sock.key:
            return other
    return None
