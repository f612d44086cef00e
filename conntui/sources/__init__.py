"""Socket sources: one module per backend behind the small `SocketSource` protocol.

`open_source("auto")` picks the most truthful backend the platform offers: netlink
`sock_diag` on Linux, `/proc/net` if netlink is refused, psutil elsewhere.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # not at run time: `conntui list` imports the owner scan first and forks it at once
    from conntui.model import Owner, Socket

UserName = Callable[[int], "str | None"]
NO_OWNERS: Mapping[int, Owner] = {}  # for a source called without an owner table

BACKENDS = ("auto", "netlink", "proc", "psutil")


class SourceError(Exception):
    """A backend cannot be used here (wrong platform, refused by the kernel)."""


class SocketSource(Protocol):
    name: str
    includes_owners: bool  # True when rows come with their pids already (psutil)

    def list_sockets(
        self, kinds: Iterable[tuple[str, int]], owners: Mapping[int, Owner] = ..., user_name: UserName | None = None
    ) -> list[Socket]:
        """Every socket of the given (proto, family) kinds, one row per kernel socket.

        Sources without owners of their own fill pids, process and user from `owners` (by
        inode); a socket with no owner gets `user_name(uid)` as its user.
        """
        ...

    def close(self) -> None: ...


def open_source(backend: str = "auto") -> SocketSource:
    """The named backend, ready to use; `auto` falls back from netlink to /proc to psutil."""
    if backend not in BACKENDS:
        raise SourceError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
    if backend == "psutil" or (backend == "auto" and not sys.platform.startswith("linux")):
        from conntui.sources.psutil_source import PsutilSource

        return PsutilSource()
    if backend in ("auto", "netlink"):
        from conntui.sources.netlink import NetlinkSource

        try:
            return NetlinkSource()
        except SourceError:
            if backend == "netlink":
                raise
    from conntui.sources.procfs import ProcfsSource

    return ProcfsSource()
