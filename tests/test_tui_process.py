"""`conntui` itself, started in a real pseudo-terminal as a user starts it, and quit with `q`."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time

import pytest


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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a Linux pty")
def test_conntui_starts_in_a_terminal_shows_sockets_and_quits(sockets) -> None:
    listener = sockets.listener()
    port = listener.getsockname()[1]
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))  # 40 rows, 160 columns
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160", "LINES": "40"}
    child = subprocess.Popen(
        [sys.executable, "-m", "conntui", "--port", str(port), "--interval", "0.5"],
        stdin=terminal, stdout=terminal, stderr=terminal, env=env, close_fds=True,  # Textual draws on stderr
    )  # fmt: skip
    os.close(terminal)
    try:
        screen = read_until(controller, [b"LISTEN", str(port).encode(), b"sockets"], timeout=20)
        assert b"LISTEN" in screen and str(port).encode() in screen
        os.write(controller, b"q")
        assert child.wait(timeout=10) == 0
        assert b"Traceback" not in screen + read_until(controller, [b"never"], timeout=0.5)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        os.close(controller)
