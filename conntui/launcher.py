"""The `conntui` command's entry point: starts `conntui list`'s owner scan before the rest of
conntui is imported.

`list` lists sockets in two pieces of work: the netlink dump, and reading every process's fd
links to find their owners (mostly kernel time). It runs the second in a forked child
(`conntui.sources.owners.scan_in_child`) while it dumps. Forked here, before the command line's
~30 ms of imports, the child's scan and the dump end together at 20,000 sockets. Only for
`conntui list` with no option that could make it something else (help, `--budget`,
`--backend`, their abbreviations); otherwise the command line starts the scan itself, later.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conntui.sources.owners import PendingScan


def main() -> int:
    argv = sys.argv[1:]
    owner_scan: PendingScan | None = None
    try:
        owner_scan = _list_owner_scan(argv)
        from conntui.cli import main as command_line

        return command_line(argv, owner_scan, exit_at_once=True)
    except KeyboardInterrupt:  # ctrl+c during `list`, `probe`, an import: ended, quietly (the dashboard has its own)
        return 130
    finally:
        if owner_scan is not None:  # a usage error, ctrl+c: a child still scanning is ended, not left behind
            owner_scan.cancel()


def _list_owner_scan(argv: list[str]) -> PendingScan | None:
    if not sys.platform.startswith("linux") or argv[:1] != ["list"]:
        return None
    if any(argument.startswith(("-h", "--h", "--b")) for argument in argv[1:]):
        return None
    from conntui.sources.owners import OwnerScanner, scan_in_child

    return scan_in_child(OwnerScanner())
