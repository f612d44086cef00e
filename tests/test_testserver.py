"""The loopback test server, spoken to with raw sockets as any client would."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from conntui.http.server import ENDPOINTS, MAX_BYTES, MAX_DELAY_MS, ServerThread, bind_addresses, is_loopback


def exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes, read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def statuses(raw: bytes) -> list[int]:
    return [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", raw)]


def test_endpoints_and_errors(server: ServerThread) -> None:
    port = server.server.port
    close = b"Connection: close\r\n\r\n"
    page = exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n" + close)
    assert statuses(page) == [200] and b"conntui test server" in page
    assert b"waited 30 ms" in exchange(port, b"GET /delay?ms=30 HTTP/1.1\r\n" + close)
    body = exchange(port, b"GET /bytes?n=200000 HTTP/1.1\r\n" + close).split(b"\r\n\r\n", 1)[1]
    assert len(body) == 200000
    assert statuses(exchange(port, b"GET /nope HTTP/1.1\r\n" + close)) == [404]
    assert statuses(exchange(port, b"POST / HTTP/1.1\r\nContent-Length: 3\r\n" + close[:-2] + b"\r\nabc")) == [405]
    assert statuses(exchange(port, b"GET /delay?ms=-5 HTTP/1.1\r\n" + close)) == [400]
    assert statuses(exchange(port, b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\n\r\n")) == [414]
    assert statuses(exchange(port, b"GET / HTTP/1.1\r\n" + b"X-Big: " + b"b" * 10000 + b"\r\n\r\n")) == [431]
    many = b"".join(b"X-%d: 1\r\n" % n for n in range(200))
    assert statuses(exchange(port, b"GET / HTTP/1.1\r\n" + many + b"\r\n")) == [431]
    assert statuses(exchange(port, b"HEAD / HTTP/1.1\r\n" + close)) == [200]


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00\xff\xfe garbage\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
        b"\r\n\r\nHELLO THERE FRIEND\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        b"GET //[ HTTP/1.1\r\n\r\n",
        b"GET /\x00 HTTP/1.1\r\n\r\n",
        b"GET /a%zz HTTP/1.1\r\n\r\n",
        b"GET /bytes?n=" + b"7" * 5000 + b" HTTP/1.1\r\n\r\n",
        b"GET /delay?ms=" + b"7" * 5000 + b" HTTP/1.1\r\n\r\n",
        b"GET /bytes?n=%d HTTP/1.1\r\n\r\n" % (MAX_BYTES + 1),
        b"GET /delay?ms=%d HTTP/1.1\r\n\r\n" % (MAX_DELAY_MS + 1),
        b"GET / HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: " + b"1" * 5000 + b"\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    ],
    ids=lambda garbage: garbage[:30].decode("latin-1"),
)
def test_garbage_gets_400_and_close_and_the_server_keeps_serving(
    server: ServerThread, garbage: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    port = server.server.port
    with caplog.at_level(logging.WARNING):
        assert statuses(exchange(port, garbage)) == [400]  # exchange() reads until the server closes
        assert statuses(exchange(port, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")) == [200]
    assert caplog.records == []


def test_the_stated_maxima_are_accepted(server: ServerThread) -> None:
    port = server.server.port
    head = exchange(port, b"HEAD /bytes?n=%d HTTP/1.1\r\nConnection: close\r\n\r\n" % MAX_BYTES)
    assert statuses(head) == [200] and b"Content-Length: %d\r\n" % MAX_BYTES in head
    repeated = b"GET / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab"
    assert statuses(exchange(port, repeated)) == [200]  # the same length twice does not conflict


def tcp_state(sock: socket.socket) -> int:
    """The kernel's state of this socket (tcp_info's first byte: 1 ESTABLISHED, 7 CLOSE)."""
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


def test_a_client_that_stops_reading_is_dropped_after_the_write_timeout() -> None:
    thread = ServerThread("127.0.0.1", 0)
    thread.server.write_timeout = 0.2
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", thread.server.port), timeout=5) as sock:
            sock.sendall(b"GET /bytes?n=100000000 HTTP/1.1\r\n\r\n")  # and never read a byte
            deadline = time.monotonic() + 10
            while tcp_state(sock) != 7 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert tcp_state(sock) == 7  # reset by the server, not held for ever
        assert statuses(exchange(thread.server.port, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")) == [200]
    finally:
        thread.stop()


def test_a_client_that_vanishes_mid_request_does_not_hurt(server: ServerThread) -> None:
    port = server.server.port
    for partial in (b"GET / HT", b"GET / HTTP/1.1\r\nHost: x\r\n", b""):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(partial)
    assert statuses(exchange(port, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")) == [200]


def test_keep_alive_and_pipelined_requests_answered_in_order(server: ServerThread) -> None:
    port = server.server.port
    requests = (
        b"GET /bytes?n=1 HTTP/1.1\r\n\r\n"
        b"GET /delay?ms=50 HTTP/1.1\r\n\r\n"
        b"GET /bytes?n=3 HTTP/1.1\r\nConnection: close\r\n\r\n"
    )
    raw = exchange(port, requests)  # all three written before any response is read
    assert statuses(raw) == [200, 200, 200]
    lengths = [int(line.split(b":")[1]) for line in raw.split(b"\r\n") if line.startswith(b"Content-Length")]
    assert lengths == [1, len(b"waited 50 ms\n"), 3]
    assert raw.count(b"Connection: keep-alive") == 2 and raw.count(b"Connection: close") == 1


def test_connection_close_is_honoured_and_close_endpoint_closes_first(server: ServerThread) -> None:
    port = server.server.port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /close HTTP/1.1\r\n\r\n")  # keep-alive asked, but /close closes anyway
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    assert b"Connection: close" in data and data.endswith(b"closing\n")


def test_idle_connections_are_closed() -> None:
    async def scenario() -> float:
        from conntui.http.server import TestServer

        server = TestServer("127.0.0.1", 0, idle_timeout=0.3)
        await server.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            started = time.monotonic()
            assert await asyncio.wait_for(reader.read(), 5) == b""
            writer.close()
            return time.monotonic() - started
        finally:
            await server.stop()

    assert asyncio.run(scenario()) < 2


def test_serve_command_prints_url_and_stops_cleanly_on_sigterm() -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "conntui", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = child.stdout.readline()
        assert line.startswith("conntui test server on http://127.0.0.1:")
        port = int(line.split(":")[2].split("/")[0])
        assert statuses(exchange(port, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")) == [200]
        os.kill(child.pid, signal.SIGTERM)
        assert child.wait(timeout=10) == 0
        assert "Traceback" not in child.stderr.read()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_serve_with_few_fds_turns_extra_connections_away_without_a_traceback() -> None:
    import resource

    def few_fds() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))  # so the server may serve 32 at once

    child = subprocess.Popen(
        [sys.executable, "-m", "conntui", "serve", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=few_fds,
    )  # fmt: skip
    clients: list[socket.socket] = []
    try:
        port = int(child.stdout.readline().split(":")[2].split("/")[0])
        for _ in range(80):  # idle connections: more than the server may hold, more than its fds
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        refused = 0
        for client in clients[40:]:
            client.settimeout(5)
            refused += client.recv(100).startswith(b"HTTP/1.1 503")
        assert refused == 40
        for client in clients:
            client.close()
        clients.clear()
        assert statuses(exchange(port, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")) == [200]
        os.kill(child.pid, signal.SIGTERM)
        assert child.wait(timeout=10) == 0
        assert "Traceback" not in child.stderr.read()
    finally:
        for client in clients:
            client.close()
        if child.poll() is None:
            child.kill()
            child.wait()


def test_serve_reports_a_busy_port(sockets) -> None:
    busy = sockets.listener()
    result = subprocess.run(
        [sys.executable, "-m", "conntui", "serve", "--port", str(busy.getsockname()[1])],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1 and "cannot listen" in result.stderr and "Traceback" not in result.stderr


def test_is_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("127.9.9.9") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.1") and not is_loopback("example.org")


def start_serve(*options: str) -> tuple[subprocess.Popen[str], int]:
    """`conntui serve --port 0` with `options`, its start lines read: (the process, its port)."""
    child = subprocess.Popen(
        [sys.executable, "-m", "conntui", "serve", "--port", "0", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = child.stdout.readline()
    assert first.startswith("conntui test server on http://127.0.0.1:"), first
    endpoints = [child.stdout.readline().split()[0] for _ in ENDPOINTS]
    assert endpoints == [path for path, _ in ENDPOINTS] == ["/", "/delay?ms=N", "/bytes?n=N", "/close"]
    return child, int(first.split(":")[2].split("/")[0])


def stop_serve(child: subprocess.Popen[str]) -> str:
    """SIGTERM, then what it printed after its start lines."""
    try:
        os.kill(child.pid, signal.SIGTERM)
        assert child.wait(timeout=10) == 0
        assert "Traceback" not in child.stderr.read()
        return child.stdout.read()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def request_from(port: int, data: bytes) -> int:
    """Send one request that closes, read the answer; the client's local port."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        while sock.recv(65536):
            pass
        return sock.getsockname()[1]


def test_serve_prints_one_line_per_request_with_its_four_tuple() -> None:
    child, port = start_serve()
    try:
        delayed = request_from(port, b"GET /delay?ms=20 HTTP/1.1\r\nConnection: close\r\n\r\n")
        line = child.stdout.readline()
        pattern = rf"tcp 127\.0\.0\.1:{delayed} → 127\.0\.0\.1:{port}  GET /delay\?ms=20  200  13 B  (\d+\.\d\d) ms\n"
        match = re.fullmatch(pattern, line)
        assert match and float(match.group(1)) >= 15, line  # the time includes the wait asked for
        headed = request_from(port, b"HEAD /bytes?n=5000 HTTP/1.1\r\nConnection: close\r\n\r\n")
        line = child.stdout.readline()
        assert f":{headed} → " in line and "  HEAD /bytes?n=5000  200  0 B  " in line
        bad = request_from(port, b"NOT A REQUEST\r\n\r\n")
        line = child.stdout.readline()
        assert f":{bad} → " in line and "  - -  400  " in line
    finally:
        rest = stop_serve(child)
    assert rest == ""


def test_serve_quiet_prints_no_request_lines() -> None:
    child, port = start_serve("--quiet")
    try:
        request_from(port, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
    finally:
        rest = stop_serve(child)
    assert rest == ""


@pytest.mark.parametrize("host", ["no-such-host.invalid", "a" * 300, "0.0.0.0.0"])
def test_serve_with_a_host_that_does_not_resolve_fails_in_one_line_without_a_warning(host: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "conntui", "serve", "--host", host, "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("conntui serve: error: cannot resolve --host ")
    assert len(result.stderr.splitlines()) == 1
    assert "warning" not in result.stderr and "Traceback" not in result.stderr


def test_bind_addresses_of_names_and_literals() -> None:
    assert bind_addresses("127.0.0.1", 0) == ["127.0.0.1"]
    assert all(is_loopback(address) for address in bind_addresses("localhost", 0))
    assert not all(is_loopback(address) for address in bind_addresses("", 0))  # every interface
