"""The dashboard's actions on the selected connection and on the view: `k` terminates the owner
process, `x` closes the connection, `c` copies the row, `e` saves the view to a file.

What cannot be undone asks first (`ConfirmDialog`, `OwnerDialog`); the decisions and the system
calls are `conntui.acting`'s and `conntui.export`'s, which know nothing of Textual; what happened
is said in a notification. A base class of `DashboardScreen`, which declares the keys.
"""

from __future__ import annotations

import errno
import os
import time
from functools import partial
from pathlib import Path

from textual.screen import Screen

from conntui import acting
from conntui.engine import Engine
from conntui.export import Identity, default_name, entry_identity, existing_entry, render, write_atomically
from conntui.grouping import Group
from conntui.model import ProcessInfo, Snapshot, Socket, format_pids
from conntui.text import printable
from conntui.ui.confirm_dialog import ConfirmDialog
from conntui.ui.export_dialog import ExportDialog
from conntui.ui.owner_dialog import OwnerDialog
from conntui.ui.socket_table import SocketTable
from conntui.view import TableState

_ENTRIES = {"file": "a file", "symlink": "a symbolic link (replacing it replaces the link, not what it points to)"}


class ConnectionActions(Screen[None]):
    """The actions; the screen that inherits them keeps `state` and `engine` up to date."""

    state: TableState
    engine: Engine

    # -- acting on the selected connection ---------------------------------------------------

    def _selected_socket(self) -> Socket | None:
        table = self.query_one(SocketTable)
        row = table.cursor_row
        if isinstance(table.cursor_line, Group):
            self.notify(
                "A group's header: select one of its sockets (space opens or folds the group).", severity="warning"
            )
        elif row is None:
            self.notify("No socket selected.", severity="warning")
        else:
            return row.sock
        return None

    def action_kill(self) -> None:
        sock = self._selected_socket()
        if sock is None or self.state.snapshot is None:
            return
        owners = acting.kill_candidates(sock, self.state.snapshot)
        if not owners:
            why = acting.no_candidates_reason(sock, self.state.snapshot)
            self.notify(f"No process to signal: {why}.", severity="warning")
        elif len(owners) == 1:
            self._confirm_kill(owners[0])
        else:
            by_pid = {info.pid: info for info in owners}
            self.app.push_screen(
                OwnerDialog(owners), callback=lambda pid: self._confirm_kill(by_pid[pid]) if pid else None
            )

    def _confirm_kill(self, target: ProcessInfo) -> None:
        lines = [
            f"pid      {target.pid}",
            f"process  {printable(target.name or '?')}  (user {printable(target.user or '?')})",
            f"command  {acting.describe_command(target)}",
        ]
        if target.pid == os.getpid():
            lines.append("Warning: this is conntui itself: the dashboard will end.")
        choices = [(name, f"{name} (y)" if index == 0 else name) for index, name in enumerate(acting.SIGNALS)]
        dialog = ConfirmDialog("Terminate this process?", lines, choices)
        self.app.push_screen(dialog, callback=partial(self._kill_confirmed, target))

    def _kill_confirmed(self, target: ProcessInfo, signal_name: str | None) -> None:
        if signal_name is None:
            return
        outcome = acting.send_signal(target, signal_name)
        self.notify(outcome.message, severity="information" if outcome.ok else "error", markup=False)
        self.engine.refresh()

    def action_close_connection(self) -> None:
        sock = self._selected_socket()
        if sock is None or self.state.snapshot is None:
            return
        cookie = sock.key if self.state.snapshot.backend == "netlink" and isinstance(sock.key, int) else None
        if sock.pids:
            owner = f"owner {format_pids(sock.pids, every=True)} {printable(sock.process or '?')}"
        else:
            owner = "no owner seen (no process holds it, or another user's does)"
        question, effect = acting.describe_closing(sock)
        dialog = ConfirmDialog(question, [acting.describe_socket(sock), owner, effect], [("close", "Close (y)")])
        self.app.push_screen(dialog, callback=partial(self._close_confirmed, sock, cookie))

    def _close_confirmed(self, sock: Socket, cookie: int | None, choice: str | None) -> None:
        if choice is None:
            return
        outcome = acting.close_connection(sock, cookie)
        self.notify(outcome.message, severity="information" if outcome.ok else "error", markup=False)
        self.engine.refresh()

    def action_copy(self) -> None:
        sock = self._selected_socket()
        if sock is not None:
            text = acting.copy_text(sock)
            self.app.copy_to_clipboard(text)
            self.notify(f"Copied: {text}", markup=False)

    # -- saving the view ---------------------------------------------------------------------

    def action_export(self) -> None:
        if self.state.snapshot is None:
            self.notify("Nothing to save yet: the first poll has not come.", severity="warning")
            return
        self._ask_export(default_name("json", time.strftime("%Y%m%d-%H%M%S")), "json")

    def _ask_export(self, path: str, export_format: str, error: str = "") -> None:
        """The export dialog, offering `path`; `error` says why it is asked again."""
        dialog = ExportDialog(path, len(self._shown_sockets()), export_format, error)
        self.app.push_screen(dialog, callback=self._export_chosen)

    def _shown_sockets(self) -> list[Socket]:
        """The sockets of the filtered view, in its order, without those already closed (shown fading)."""
        return [row.sock for row in self.state.visible if row.mark != "closed"]

    def _export_chosen(self, choice: tuple[str, str] | None) -> None:
        if choice is None or self.state.snapshot is None:
            return
        path, export_format = choice
        ask_again = partial(self._ask_export, path, export_format)
        try:
            target = Path(path).expanduser().absolute()
            entry, identity = existing_entry(target), entry_identity(target)
        except RuntimeError:  # expanduser: ~name of no user
            ask_again(f"Not saved: no such user: {printable(path.partition('/')[0])}")
            return
        except OSError as error:
            ask_again(f"Not saved: {_reason(error)}")
            return
        save = partial(self._save, target, export_format, self.state.snapshot, self._shown_sockets())
        if entry == "directory":
            ask_again("Not saved: that is a directory; name a file in it.")
        elif entry is not None:
            lines = [f"{printable(str(target))} exists: {_ENTRIES[entry]}."]
            dialog = ConfirmDialog("Replace it?", lines, [("replace", "Replace (y)")])
            replace = partial(save, overwrite=True, replacing=identity)  # that entry, not one put there since
            self.app.push_screen(dialog, callback=lambda answer: replace() if answer else ask_again())
        else:
            save(overwrite=False)

    def _save(
        self,
        target: Path,
        export_format: str,
        snapshot: Snapshot,
        sockets: list[Socket],
        *,
        overwrite: bool,
        replacing: Identity | None = None,
    ) -> None:
        """Render and write on a worker thread (100,000 rows take a moment); say how it went: a
        failure asks again, with the name kept."""

        def ask_again(reason: str) -> None:
            self.app.call_from_thread(self._ask_export, str(target), export_format, f"Not saved: {reason}")

        def write() -> None:
            text = render(snapshot, sockets, export_format)
            try:
                written = write_atomically(target, text, overwrite=overwrite, replacing=replacing)
            except FileExistsError as error:
                ask_again(error.strerror if error.filename is None and error.strerror else "it appeared meanwhile")
            except OSError as error:
                ask_again(_reason(error))
            else:
                count = f"{len(sockets)} socket{'' if len(sockets) == 1 else 's'}"
                self.notify(f"Saved {count} to {printable(str(written))}", markup=False)

        self.run_worker(write, thread=True, group="export", exit_on_error=False)


def _reason(error: OSError) -> str:
    """Why a file could not be saved, in a few words (a missing file is its directory: the name is being made)."""
    return "no such directory" if error.errno == errno.ENOENT else error.strerror or str(error)
