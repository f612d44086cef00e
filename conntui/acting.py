"""Acting on a connection: signal its owner process, or close the socket itself. No Textual here.

Each act returns an `Outcome`, a sentence for the user, never an exception: a process that
vanished, a pid now held by another process, a missing permission, a kernel without the feature
are all things to say.

Signalling is safe against pid reuse: the pid is opened as a pidfd (Linux 5.3+) and its create
time compared with the one the dashboard saw; the signal then goes through the pidfd, which can
only ever reach the process that was opened. Elsewhere psutil checks the create time just before
sending.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass

import psutil

from conntui.model import ProcessInfo, Snapshot, Socket, format_pids
from conntui.sources.netlink import destroy_socket, socket_state
from conntui.text import printable

SIGNALS: dict[str, signal.Signals] = {"SIGTERM": signal.SIGTERM}
if hasattr(signal, "SIGKILL"):  # not on Windows
    SIGNALS["SIGKILL"] = signal.SIGKILL

_DESTROY_ERRORS = {
    errno.EOPNOTSUPP: "the kernel cannot close sockets: it lacks CONFIG_INET_DIAG_DESTROY",
    errno.EPERM: "permission denied: closing a socket needs CAP_NET_ADMIN (run as root)",
    errno.EACCES: "permission denied: closing a socket needs CAP_NET_ADMIN (run as root)",
    errno.ENOENT: "the socket is already gone",
    errno.ESTALE: "the socket is already gone (another socket now has its four values)",
}
# States a TCP socket reaches once its owner has closed it (TIME_WAIT: the kernel's leftover).
_CLOSED_BY_OWNER = frozenset({"FIN_WAIT1", "FIN_WAIT2", "CLOSING", "LAST_ACK", "TIME_WAIT"})
COMMAND_LIMIT = 300  # characters of a command line shown in a dialog


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an act did, as one sentence; `ok` False when it did not happen."""

    ok: bool
    message: str


def describe_socket(sock: Socket) -> str:
    """`tcp 127.0.0.1:5000 → 127.0.0.1:41234 ESTABLISHED`: the four-tuple and state, as text."""
    return f"{sock.proto}{sock.family} {sock.local} → {sock.remote} {sock.state}"


def describe_process(info: ProcessInfo) -> str:
    """`1234 python3: python3 -m http.server` with every system string escaped."""
    return f"{info.pid} {printable(info.name or '?')}: {describe_command(info)}"


def describe_command(info: ProcessInfo) -> str:
    """The command line, escaped, cut at `COMMAND_LIMIT` characters (then ending in `…`)."""
    command = " ".join(info.cmdline)
    if len(command) > COMMAND_LIMIT:
        return printable(command[: COMMAND_LIMIT - 1]) + "…"
    return printable(command) or "(command line not readable)"


def describe_closing(sock: Socket) -> tuple[str, str]:
    """(the question, what closing does) for `sock`, by its kind: SOCK_DESTROY aborts a TCP
    connection, stops a listener, and only disconnects a UDP socket."""
    if sock.proto == "udp":
        return (
            "Disconnect this UDP socket (SOCK_DESTROY, as ss -K)?",
            "the kernel only disconnects a UDP socket: it stays open, unconnected; "
            "its owner's next receive fails (ECONNABORTED)",
        )
    if sock.state == "LISTEN":
        return (
            "Stop this listener (SOCK_DESTROY, as ss -K)?",
            "it stops listening: new connections are refused; its owner's next accept fails (EINVAL)",
        )
    return "Close this connection (SOCK_DESTROY, as ss -K)?", "its owner's next read or write fails (ECONNABORTED)"


def copy_text(sock: Socket) -> str:
    """What `c` copies: the four-tuple, the state and the owners (pid and name)."""
    if not sock.pids:
        return f"{describe_socket(sock)} no owner seen"
    return f"{describe_socket(sock)} pid {','.join(map(str, sock.pids))} {printable(sock.process or '?')}"


def kill_candidates(sock: Socket, snapshot: Snapshot) -> list[ProcessInfo]:
    """The owners of `sock` that can be signalled safely: those whose create time is known."""
    found = (snapshot.processes.get(pid) for pid in sock.pids)
    return [info for info in found if info is not None and info.create_time is not None]


def no_candidates_reason(sock: Socket, snapshot: Snapshot) -> str:
    """Why `kill_candidates` found no owner of `sock` to signal, in words. The table's row may name
    an owner that this snapshot has not described yet (the row is the newer: the next poll's
    snapshot is on its way to the UI): the process exists, its details are still to come."""
    if not sock.pids:
        return "its owner is hidden (another user's process)" if sock.inode else "no process holds it"
    if any(pid not in snapshot.processes and psutil.pid_exists(pid) for pid in sock.pids):
        return "its owner's details are still being read: press k again"
    return f"{format_pids(sock.pids, every=True)} could not be read (ended, or not ours to read)"


def send_signal(target: ProcessInfo, signal_name: str) -> Outcome:
    """Send `signal_name` to `target` if, and only if, its pid still belongs to the same process."""
    signum = SIGNALS[signal_name]
    who = f"{target.pid} ({printable(target.name or '?')})"
    try:
        with _pinned(target) as pidfd:
            if pidfd is None:
                psutil.Process(target.pid).send_signal(signum)  # psutil re-checks the create time first
            else:
                signal.pidfd_send_signal(pidfd, signum)
    except _PidReused:
        return Outcome(False, f"Not sent: pid {target.pid} now belongs to another process ({who} has ended).")
    except _Zombie as zombie:
        reaper = f"not yet reaped by its parent {zombie.parent}"
        return Outcome(False, f"Not sent: process {who} has already ended (a zombie, {reaper}).")
    except (psutil.NoSuchProcess, ProcessLookupError):
        return Outcome(False, f"Not sent: process {who} has already ended.")
    except (psutil.AccessDenied, PermissionError):
        return Outcome(False, f"Permission denied: {who} is another user's process (run as root).")
    except OSError as error:
        return Outcome(False, f"{signal_name} to {who} failed: {error.strerror or error}")
    return Outcome(True, f"{signal_name} sent to {who}.")


class _PidReused(Exception):
    """The pid is held by a process other than the one the dashboard saw."""


class _Zombie(Exception):
    """The process has ended; its parent has not yet collected its exit status."""

    def __init__(self, parent: str) -> None:
        super().__init__(parent)
        self.parent = parent  # "1234 (bash)"


@contextlib.contextmanager
def _pinned(target: ProcessInfo) -> Iterator[int | None]:
    """A pidfd for `target`'s pid once its create time is checked (None where pidfds do not exist).
    Raises _PidReused when the pid now names another process, _Zombie when the process has ended
    but is not yet reaped (a signal to it would be "sent" and do nothing)."""
    pidfd: int | None = None
    if hasattr(os, "pidfd_open") and hasattr(signal, "pidfd_send_signal"):
        try:
            pidfd = os.pidfd_open(target.pid)
        except OSError as error:
            if error.errno == errno.ESRCH:
                raise ProcessLookupError(error.errno, error.strerror) from error
            pidfd = None  # no pidfd support (ENOSYS, seccomp): fall back to psutil's own check
    try:
        process = psutil.Process(target.pid)
        if process.create_time() != target.create_time:
            raise _PidReused
        if process.status() == psutil.STATUS_ZOMBIE:
            raise _Zombie(_name_of(process.ppid()))
        yield pidfd
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _name_of(pid: int) -> str:
    """`1234 (bash)`, or the pid alone when its name cannot be read."""
    try:
        return f"{pid} ({printable(psutil.Process(pid).name())})"
    except psutil.Error:
        return str(pid)


def close_connection(sock: Socket, cookie: int | None) -> Outcome:
    """Close `sock` with the kernel's SOCK_DESTROY (its owner sees ECONNABORTED), as `ss -K` does.

    A TCP socket is looked up first: one that is no longer in the state the user confirmed
    (closed by its owner meanwhile, its TIME_WAIT left: same four values, same cookie) is not touched."""
    try:
        if sock.proto == "tcp" and (refusal := _changed_since_confirmed(sock, cookie)):
            return Outcome(False, refusal)
        destroy_socket(sock, cookie)
    except AttributeError:  # no AF_NETLINK on this platform
        return Outcome(False, "Closing a connection needs Linux (netlink sock_diag).")
    except OSError as error:
        reason = _DESTROY_ERRORS.get(error.errno or 0, error.strerror or str(error))
        return Outcome(False, f"Not closed: {reason}.")
    if sock.proto == "udp":
        return Outcome(True, f"Disconnected udp {sock.local} → {sock.remote}: still open, unconnected.")
    if sock.state == "LISTEN":
        return Outcome(True, f"Stopped the listener tcp {sock.local}: it no longer listens.")
    return Outcome(True, f"Closed {sock.proto} {sock.local} → {sock.remote}.")


def _changed_since_confirmed(sock: Socket, cookie: int | None) -> str | None:
    """Why `sock` must not be closed now, or None when it is still as confirmed."""
    now = socket_state(sock, cookie)
    if now is None:
        return f"Not closed: {_DESTROY_ERRORS[errno.ENOENT]}."
    if now == sock.state and now != "TIME_WAIT":
        return None
    if now in _CLOSED_BY_OWNER:
        return f"Not closed: already closed by its owner (now {now}): not touched."
    return f"Not closed: it is {now} now, no longer {sock.state}: not touched."
