"""`conntui` itself, started in a real pseudo-terminal as a user starts it, and ended as users end it."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a Linux pty")

LEAVE_ALTERNATE_SCREEN, SHOW_CURSOR = b"\x1b[?1049l", b"\x1b[?25h"
MOUSE_OFF = (b"\x1b[?1000l", b"\x1b[?1003l", b"\x1b[?1006l")  # click, any-motion and SGR reporting


def read_until(fd: int, wanted: list[bytes], timeout: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(word in seen for word in wanted):
        readable, _, _ = select.select([fd], [], [], 0.2)
        if readable:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                break
    return seen


def read_until_exit(fd: int, child: subprocess.Popen, timeout: float = 10) -> bytes:
    """Everything the child writes until it exits; reading on, so a full pty never blocks its exit."""
    seen = b""
    deadline = time.monotonic() + timeout
    while child.poll() is None and time.monotonic() < deadline:
        seen += read_until(fd, [b"never"], timeout=0.2)
    return seen + read_until(fd, [b"never"], timeout=0.3)


@contextlib.contextmanager
def conntui_in_pty(*args: str, **streams: int) -> Iterator[tuple[subprocess.Popen, int]]:
    """(the child, the pty's controller side); stdin/stdout/stderr are the pty unless given."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))  # 40 rows, 160 columns
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160", "LINES": "40"}
    child = subprocess.Popen(
        [sys.executable, "-m", "conntui", *args],
        **{"stdin": terminal, "stdout": terminal, "stderr": terminal, **streams},  # Textual draws on stderr
        env=env, close_fds=True,
    )  # fmt: skip
    os.close(terminal)
    try:
        yield child, controller
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        os.close(controller)


def assert_terminal_restored(output: bytes) -> None:
    """After the last drawing the terminal is given back: main screen, no mouse reporting, a cursor."""
    assert LEAVE_ALTERNATE_SCREEN in output
    tail = output[max(0, output.rindex(LEAVE_ALTERNATE_SCREEN) - 200) :]
    for sequence in (SHOW_CURSOR, *MOUSE_OFF):
        assert sequence in tail
    assert b"\x1b[?1049h" not in tail and b"Traceback" not in output


def test_conntui_starts_in_a_terminal_shows_sockets_and_quits(sockets) -> None:
    listener = sockets.listener()
    port = listener.getsockname()[1]
    with conntui_in_pty("--port", str(port), "--interval", "0.5") as (child, controller):
        screen = read_until(controller, [b"LISTEN", str(port).encode(), b"sockets"], timeout=20)
        assert b"LISTEN" in screen and str(port).encode() in screen
        os.write(controller, b"q")
        output = read_until_exit(controller, child)
        assert child.poll() == 0
        assert_terminal_restored(screen + output)


@pytest.mark.parametrize(
    ("signum", "status"),
    [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGQUIT, 131), (signal.SIGUSR1, 138)],
)
def test_ending_signals_restore_the_terminal(signum: int, status: int) -> None:
    with conntui_in_pty("--interval", "0.5") as (child, controller):
        screen = read_until(controller, [b"sockets"], timeout=20)
        assert b"sockets" in screen
        child.send_signal(signum)
        output = read_until_exit(controller, child)
        assert child.poll() == status
        assert_terminal_restored(screen + output)


def test_ctrl_c_quits() -> None:
    with conntui_in_pty("--interval", "0.5") as (child, controller):
        screen = read_until(controller, [b"sockets"], timeout=20)
        os.write(controller, b"\x03")  # the raw terminal passes ctrl+c on as a key, not as SIGINT
        output = read_until_exit(controller, child)
        assert child.poll() == 0
        assert_terminal_restored(screen + output)


def test_out_of_file_descriptors_the_dashboard_says_so_in_one_line() -> None:
    import resource

    controller, terminal = pty.openpty()
    child = subprocess.Popen(
        [sys.executable, "-m", "conntui"], stdin=terminal, stdout=terminal, stderr=terminal,
        env={**os.environ, "TERM": "xterm-256color"},
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (9, 9)),
    )  # fmt: skip
    os.close(terminal)
    try:
        output = read_until_exit(controller, child, timeout=30)
    finally:
        os.close(controller)
    assert child.returncode == 1 and output.decode().strip() == "conntui: error: Too many open files", output


@pytest.mark.parametrize("redirected", ["stdout", "stdin"])
def test_without_a_terminal_the_dashboard_says_use_list(redirected: str, tmp_path) -> None:
    """`conntui > file` and `conntui < /dev/null`: one line on stderr, exit 2, no escape codes."""
    path = tmp_path / "out" if redirected == "stdout" else os.devnull
    with (
        open(path, "w" if redirected == "stdout" else "r") as stream,
        conntui_in_pty(**{redirected: stream.fileno()}) as (child, controller),
    ):
        output = read_until_exit(controller, child, timeout=20)
        assert child.poll() == 2
    lines = output.decode().strip().splitlines()
    assert len(lines) == 1 and "conntui list" in lines[0] and b"\x1b" not in output
    if redirected == "stdout":
        assert (tmp_path / "out").read_bytes() == b""


def test_a_closed_terminal_hangs_up_the_dashboard_and_it_exits_129() -> None:
    """The terminal window goes away: the kernel sends SIGHUP, and writes to the dead terminal fail."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))

    def take_the_pty_as_controlling_terminal() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    child = subprocess.Popen(
        [sys.executable, "-m", "conntui", "--interval", "0.5"],
        stdin=terminal, stdout=terminal, stderr=terminal, env={**os.environ, "TERM": "xterm-256color"},
        close_fds=True, preexec_fn=take_the_pty_as_controlling_terminal,
    )  # fmt: skip
    os.close(terminal)
    try:
        assert b"sockets" in read_until(controller, [b"sockets"], timeout=20)
        os.close(controller)
        controller = -1
        # Generous: the exit stops the engine and the test runner (bounded joins) behind a busy CI machine.
        assert child.wait(timeout=45) == 129
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if controller != -1:
            os.close(controller)


def test_conntui_learn_starts_on_the_lessons_in_a_terminal_and_quits() -> None:
    with conntui_in_pty("learn", "--interval", "0.5") as (child, controller):
        screen = read_until(controller, [b"Four values make a connection unique", b"Not run yet"], timeout=20)
        assert b"Head-of-line blocking" in screen and b"Not run yet" in screen
        os.write(controller, b"q")
        output = read_until_exit(controller, child)
        assert child.poll() == 0
        assert_terminal_restored(screen + output)
