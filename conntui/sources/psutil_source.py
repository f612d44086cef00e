"""`psutil.net_connections()`: the socket source on macOS, Windows and the BSDs.

Less truthful than netlink on Linux (a socket shared by two processes is one row with one pid;
identical rows with unknown owners are merged), so it is used there only when asked for.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping

import psutil

from conntui.model import UDP_STATE, Owner, Socket
from conntui.sources import UserName

_KIND_NAMES = {("tcp", 4): "tcp4", ("tcp", 6): "tcp6", ("udp", 4): "udp4", ("udp", 6): "udp6"}


class PsutilSource:
    name = "psutil"
    includes_owners = True

    def close(self) -> None:
        pass

    def list_sockets(
        self,
        kinds: Iterable[tuple[str, int]],
        owners: Mapping[int, Owner] | None = None,
        user_name: UserName | None = None,
    ) -> list[Socket]:
        """Rows with psutil's own pids (`owners` and `user_name` are not needed here)."""
        rows: list[Socket] = []
        for proto, family in kinds:
            for conn in psutil.net_connections(_KIND_NAMES[(proto, family)]):
                local_ip, local_port = _endpoint(conn.laddr)
                remote_ip, remote_port = _endpoint(conn.raddr)
                state = UDP_STATE if conn.type == socket.SOCK_DGRAM else conn.status
                pids = (conn.pid,) if conn.pid else ()
                four = (proto, family, local_ip or "", local_port or 0, remote_ip, remote_port)
                key = (*four, conn.pid, conn.fd) if conn.pid else (*four, state)
                rows.append(Socket(key, *four, state, pids=pids))
        return rows


def _endpoint(address: object) -> tuple[str | None, int | None]:
    """psutil's (ip, port) pair, or (None, None) for its () when there is no such end."""
    if isinstance(address, tuple) and len(address) == 2:
        return str(address[0]), int(address[1])
    return None, None
