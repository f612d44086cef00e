"""Linux `/proc/net/{tcp,tcp6,udp,udp6}` parsing: the fallback when netlink is refused."""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping

from conntui.model import TCP_STATES, UDP_STATE, Owner, Socket
from conntui.sources import NO_OWNERS, UserName


class ProcfsSource:
    """Reads the kernel's text socket tables; the inode (or the tuple for TIME_WAIT) is the key."""

    name = "proc"
    includes_owners = False

    def __init__(self, root: str = "/proc/net") -> None:
        self.root = root
        self._addresses: dict[str, str] = {}

    def close(self) -> None:
        pass

    def list_sockets(
        self,
        kinds: Iterable[tuple[str, int]],
        owners: Mapping[int, Owner] = NO_OWNERS,
        user_name: UserName | None = None,
    ) -> list[Socket]:
        rows: list[Socket] = []
        for proto, family in kinds:
            path = f"{self.root}/{proto}{'6' if family == 6 else ''}"
            try:
                with open(path) as table:
                    lines = table.readlines()[1:]
            except FileNotFoundError:  # no IPv6 in this kernel
                continue
            for line in lines:
                sock = self._parse_line(line, proto, family)
                owner = owners.get(sock.inode) if sock.inode else None
                if owner is not None:
                    sock = sock._replace(pids=owner[0], process=owner[1], user=owner[2])
                elif sock.uid is not None and user_name is not None:
                    sock = sock._replace(user=user_name(sock.uid))
                rows.append(sock)
        return rows

    def _parse_line(self, line: str, proto: str, family: int) -> Socket:
        fields = line.split()
        local_ip, local_port = self._endpoint(fields[1], family)
        remote_ip, remote_port = self._endpoint(fields[2], family)
        state_number = int(fields[3], 16)
        uid, inode = int(fields[7]), int(fields[9])
        remote: tuple[str | None, int | None] = (remote_ip, remote_port)
        if remote_port == 0 and remote_ip in ("0.0.0.0", "::"):
            remote = (None, None)
        state = TCP_STATES.get(state_number, "UNKNOWN") if proto == "tcp" else UDP_STATE
        key: object = inode or (proto, family, local_ip, local_port, *remote, state)
        # No inode: no process holds it, and its uid (0) is not an owner's (see model.py).
        return Socket(key, proto, family, local_ip, local_port, *remote, state, inode, uid if inode else None)

    def _endpoint(self, text: str, family: int) -> tuple[str, int]:
        address_hex, port_hex = text.split(":")
        address = self._addresses.get(address_hex)
        if address is None:
            raw = bytes.fromhex(address_hex)
            # The kernel prints each 32-bit word in host (little-endian) order.
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            address = socket.inet_ntop(socket.AF_INET if family == 4 else socket.AF_INET6, words)
            self._addresses[address_hex] = address
        return address, int(port_hex, 16)
