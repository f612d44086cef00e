"""Socket inode -> every pid holding it, from the `/proc/*/fd` links (Linux).

Every pid is kept: a socket inherited across fork has two owners, as `ss -p` shows. Processes
that vanish, or whose fds we may not read (other users' when not root), are skipped.
"""

from __future__ import annotations

import os


def owners_by_inode(proc: str = "/proc") -> dict[int, tuple[int, ...]]:
    owners: dict[int, list[int]] = {}
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        pid = int(entry)
        fd_dir = f"{proc}/{entry}/fd/"
        try:
            fds = os.listdir(fd_dir)
        except OSError:  # gone, or not ours to read
            continue
        readlink = os.readlink
        for fd in fds:
            try:
                target = readlink(fd_dir + fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inode = int(target[8:-1])
                holders = owners.get(inode)
                if holders is None:
                    owners[inode] = [pid]
                elif holders[-1] != pid:  # one process may hold a socket on several fds
                    holders.append(pid)
    return {inode: tuple(pids) for inode, pids in owners.items()}
