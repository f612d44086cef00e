"""The chapter's experiments against the real built-in server on loopback: the simulated distance,
the four ways to make N requests, Nagle and delayed ACK, what TCP did per connection.

Directions and counts only, never exact timings: a lower bound that the server's own waits make
certain, or one way compared with another by a wide margin.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from conntui.http.client import probe
from conntui.http.records import SIMULATED_RTT_HEADER
from conntui.http.server import ServerThread
from tests.test_cli import conntui

RTT = 40  # ms of simulated distance: small, so each test stays fast


@pytest.fixture
def distant_server() -> Iterator[ServerThread]:
    """The built-in server, RTT ms away (simulated)."""
    thread = ServerThread("127.0.0.1", 0, rtt_ms=RTT)
    thread.start()
    yield thread
    thread.stop()


def run(url: str, mode: str = "single", count: int = 1, **options):
    return asyncio.run(probe(url, mode, count, **options))


# -- 2. distance, simulated ------------------------------------------------------------------


def test_every_response_waits_one_rtt_and_a_connections_first_one_more(distant_server) -> None:
    result = run(distant_server.url, "keepalive", 3)
    assert result.ok, result.first_error
    first, *later = result.connections[0].responses
    assert first.ttfb_ms is not None and first.ttfb_ms >= 2 * RTT  # the handshake's round trip, then the request's
    assert all(response.ttfb_ms is not None and response.ttfb_ms >= RTT for response in later)


def test_pipelined_requests_wait_one_rtt_together_not_one_after_another(distant_server) -> None:
    keepalive = run(distant_server.url, "keepalive", 4)
    pipeline = run(distant_server.url, "pipeline", 4)
    assert keepalive.ok and pipeline.ok
    # keep-alive pays (N+1) RTT, a pipeline 2 RTT: its last answer comes before keep-alive's.
    last_pipelined = pipeline.connections[0].responses[-1].ttfb_ms
    keepalive_total = sum(r.total_ms for r in keepalive.connections[0].responses)
    assert last_pipelined is not None and 2 * RTT <= last_pipelined < keepalive_total - RTT


def test_the_responses_say_the_rtt_is_simulated(distant_server) -> None:
    with socket.create_connection(("127.0.0.1", distant_server.server.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert f"{SIMULATED_RTT_HEADER}: {RTT}\r\n".encode() in answer


def test_serve_rtt_says_simulated_at_start() -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "conntui", "serve", "--port", "0", "--rtt", "30", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [child.stdout.readline() for _ in range(6)]
    finally:
        os.kill(child.pid, signal.SIGTERM)
        assert child.wait(timeout=10) == 0
    assert lines[-1].startswith("simulated RTT 30 ms: every response waits 30 ms"), lines


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "--rtt", "-5"], "from 0 to 10,000"),
        (["serve", "--rtt", "10001"], "from 0 to 10,000"),
        (["serve", "--rtt", "1.5"], "from 0 to 10,000"),
        (["serve", "--rtt", "9" * 5000], "(5000 characters)"),
    ],
)
def test_bad_arguments_exit_2_in_one_line(args: list[str], message: str) -> None:
    result = conntui(*args)
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr
