"""Saving the dashboard's view to a file: the fields of `conntui list --json` / `--csv`, written atomically.

The text is `conntui.output`'s own, so a saved view reads as `list` prints it. It is written to
a temporary file beside the target and renamed over it (`os.replace`), so a reader never sees
half a file; an existing file is replaced only when the caller says so. The file is readable
by its owner only (as `tempfile` makes it): it names processes and their connections.
"""

from __future__ import annotations

import os
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
        return output.to_csv(output.records(snapshot, sockets))
    raise ValueError(f"unknown export format {export_format!r}: one of {', '.join(EXPORT_FORMATS)}")


def write_atomically(path: Path, text: str, *, overwrite: bool) -> Path:
    """Write `text` to `path` through a temporary file and a rename; the absolute path written.

    Raises FileExistsError when `path` exists and `overwrite` is False, and the OSError of a
    missing directory or a missing permission as it comes.
    """
    path = path.expanduser().absolute()
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists")
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def default_name(export_format: str, stamp: str) -> str:
    """`conntui-20260101-120000.json`: a name for the save dialog to offer."""
    return f"conntui-{stamp}.{export_format}"


def with_format(path: str, export_format: str) -> str:
    """`path` with its extension changed to `export_format`'s when it has one of the formats' extensions."""
    stem, dot, extension = path.rpartition(".")
    if dot and extension in EXPORT_FORMATS:
        return f"{stem}.{export_format}"
    return path
