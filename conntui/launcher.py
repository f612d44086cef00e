"""The `conntui` command's entry point: starts `conntui list`'s forked child (its dump and owner
scan) before the rest of conntui is imported.

`list` lists sockets in pieces of work: the netlink dump, parsing it, reading every process's fd
links to find their owners, and writing the rows. A forked child does the kernel's part, the
dump and then the fd links (`conntui.sources.owners.scan_in_child`, `conntui.sources.dumped`),
while this process parses and writes. Forked here, before the command line's ~30 ms of imports,
the child has the first replies ready when the parse begins. Only for `conntui list` with no
option that could make it something else (help, `--budget`, `--backend`, their abbreviations);
otherwise the command line starts the child itself, later.
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

    return scan_in_child(OwnerScanner(), _kind_asked(argv[1:]))


def _kind_asked(arguments: list[str]) -> str:
    """The `--kind` given to `list` (or its default), read before the command line's parser is
    imported, for the child to dump that kind (`conntui.sources.dumped`): `--kind K`, `--kind=K`
    and their abbreviations, as argparse takes them. A wrong guess costs time, not rows: a kind
    the child did not dump is dumped by `list` itself."""
    kind = "inet"
    for index, argument in enumerate(arguments):
        if argument == "--":
            break
        name, equals, value = argument.partition("=")
        if len(name) > 2 and "--kind".startswith(name):
            kind = value if equals else next(iter(arguments[index + 1 : index + 2]), "")
    return kind
