"""The terminal driver: Textual's own, made to outlive its terminal.

When the terminal goes away (its window closed, the SSH session dropped), every write to it fails
with EIO. Textual's writer thread dies at the first one; its queue then fills, and the app's exit
waits for that thread for ever: the dashboard hangs instead of ending on the SIGHUP that follows.
Here a write to a terminal that is gone is dropped: there is no one left to show it to.
"""

from __future__ import annotations

import contextlib
from typing import IO, Any

from textual.driver import Driver


class _TerminalFile:
    """The driver's output file, whose writes and flushes to a terminal that is gone do nothing."""

    def __init__(self, file: IO[str]) -> None:
        self._file = file

    def write(self, text: str) -> int:
        try:
            return self._file.write(text)
        except (OSError, ValueError):  # EIO: no terminal; ValueError: the file was closed
            return 0

    def flush(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._file.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


def outliving_its_terminal(driver_class: type[Driver]) -> type[Driver]:
    """`driver_class`, its output file (where it has one) made to drop writes once the terminal is gone."""

    class TerminalDriver(driver_class):  # type: ignore[valid-type,misc]
        def start_application_mode(self) -> None:
            file = getattr(self, "_file", None)
            if file is not None and not isinstance(file, _TerminalFile):
                self._file = _TerminalFile(file)
            super().start_application_mode()

    TerminalDriver.__name__ = TerminalDriver.__qualname__ = f"Terminal{driver_class.__name__}"
    return TerminalDriver
