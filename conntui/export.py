"""Saving the dashboard's view to a file: the fields of `conntui list --json` / `--csv`, written atomically.

The text is `conntui.output`'s own, so a saved view reads as `list` prints it. It is written to
a temporary file beside the target and then put in place, so a reader never sees half a file.
An existing entry is replaced (`os.replace`) only when the caller says so; otherwise the
temporary file is hard-linked to the name (`os.link`), which the kernel refuses if anything at
all is there, even a file created a moment before: no check-then-write race. Where hard links
are refused (FAT, some network file systems) the name is created exclusively (`O_EXCL`) and
written in place. The file is readable by its owner only (as `tempfile` makes it): it names
processes and their connections.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path

from conntui import output
from conntui.model import Snapshot, Socket

EXPORT_FORMATS = ("json", "csv")


def render(snapshot: Snapshot, sockets: Sequence[Socket], export_format: str) -> str:
    """The file's text: as `conntui list --json` or `--csv` prints these sockets."""
    if export_format == "json":
        return output.to_json(snapshot, sockets) + "\n"
    if export_format == "csv":
        return output.to_csv(snapshot, sockets)
    raise ValueError(f"unknown export format {export_format!r}: one of {', '.join(EXPORT_FORMATS)}")


Identity = tuple[int, int, int, int]


def entry_identity(path: Path) -> Identity | None:
    """What is at `path` (a symbolic link itself, not what it points to): device, inode, type and
    change time (a file made where one was deleted may get its inode number); None: nothing."""
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino, found.st_mode, found.st_ctime_ns


def write_atomically(path: Path, text: str, *, overwrite: bool, replacing: Identity | None = None) -> Path:
    """Write `text` to `path` through a temporary file; the absolute path written.

    Raises FileExistsError when anything is at `path` (a dangling symbolic link too) and
    `overwrite` is False, or when it is no longer the entry `replacing` (`entry_identity`) that
    the user agreed to replace; and the OSError of a missing directory or permission as it comes.
    """
    path = path.expanduser().absolute()
    # a short name of its own: the file's name may already be as long as a name can be (255 bytes)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".conntui-", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as file:
            file.write(text)
        if overwrite:
            if replacing is not None and entry_identity(path) not in (replacing, None):
                raise FileExistsError(errno.EEXIST, "another file took its place since you agreed to replace it")
            os.replace(temporary, path)
        else:
            linked = _linked(temporary, path)
            os.unlink(temporary)
            if not linked:
                _write_exclusively(path, text)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


_NO_HARD_LINKS = {errno.EPERM, errno.EXDEV, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS}


def _linked(temporary: str, path: Path) -> bool:
    """Hard-link `temporary` to `path`; False where the file system refuses hard links.
    Raises FileExistsError when anything is at `path`."""
    try:
        os.link(temporary, path)
    except OSError as error:
        if error.errno in _NO_HARD_LINKS:
            return False
        raise
    return True


def _write_exclusively(path: Path, text: str) -> None:
    """Create `path` (FileExistsError when anything is there) and write `text` into it."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as file:
            file.write(text)
    except BaseException:
        path.unlink(missing_ok=True)  # ours: O_EXCL created it
        raise


def existing_entry(path: Path) -> str | None:
    """What is at `path` already, its last component not followed: None (nothing), `"directory"`,
    `"symlink"` (dangling or not) or `"file"` (any other entry).

    Raises the OSError of a path that cannot be looked at (too long, a component not a directory,
    a directory not ours to search)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(mode):
        return "directory"
    return "symlink" if stat.S_ISLNK(mode) else "file"


def default_name(export_format: str, stamp: str) -> str:
    """`conntui-20260101-120000.json`: a name for the save dialog to offer."""
    return f"conntui-{stamp}.{export_format}"


def with_format(path: str, export_format: str) -> str:
    """`path` with its extension changed to `export_format`'s when it has one of the formats' extensions."""
    stem, dot, extension = path.rpartition(".")
    if dot and extension in EXPORT_FORMATS:
        return f"{stem}.{export_format}"
    return path
