"""The instrumented client against the real test server (and a few misbehaving peers), on loopback."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conntui.http.client import ascii_host, parse_url, probe
from conntui.http.records import PHASES
from conntui.http.server import ServerThread
from conntui.poller import Poller
from conntui.sources import open_source
from tests.conftest import HAS_IPV6, find, poll_until


def run(url: str, mode: str = "single", count: int = 1, **options):
    return asyncio.run(probe(url, mode, count, **options))


@pytest.mark.parametrize(
    ("mode", "count", "connections", "responses"),
    [
        ("single", 1, 1, [1]),
        ("single", 3, 3, [1, 1, 1]),
        ("keepalive", 5, 1, [5]),
        ("parallel", 4, 4, [1, 1, 1, 1]),
        ("pipeline", 6, 1, [6]),
    ],
)
def test_modes_yield_the_expected_connections(server, mode, count, connections, responses) -> None:
    result = run(server.url, mode, count)
    assert result.ok, result.first_error
    assert len(result.connections) == connections
    assert sorted(len(c.responses) for c in result.connections) == responses
    assert all(r.status == 200 and r.bytes > 0 for c in result.connections for r in c.responses)
    ports = {c.local_port for c in result.connections}
    assert len(ports) == connections  # distinct four-tuples: same remote end, different local ports
    for record in result.connections:
        assert (record.remote_ip, record.remote_port) == ("127.0.0.1", server.server.port)
        names = [step.name for step in record.steps]
        assert names == ["connect", "send", "ttfb", "transfer", "close"]
    assert [step.name for step in result.steps] == ["parse", "dns"]


def test_single_with_a_count_opens_its_connections_one_after_another(server) -> None:
    result = run(server.url, "single", 3)
    assert result.ok, result.first_error
    first, second, third = result.connections
    for before, after in ((first, second), (second, third)):
        closed = before.steps[-1]
        assert closed.name == "close" and after.steps[0].start_ms >= closed.start_ms + closed.duration_ms
    data = result.to_json()
    assert [len(c["responses"]) for c in data["connections"]] == [1, 1, 1]


def test_single_with_a_count_stops_at_the_first_connection_that_fails() -> None:
    peer = MisbehavingServer(b"")
    try:
        result = run(f"http://127.0.0.1:{peer.port}/", "single", 3, timeout=2)
    finally:
        peer.close()
    assert not result.ok and len(result.connections) == 1
    assert result.first_error == "ttfb: the server closed the connection"


def test_pipelined_responses_come_back_in_order_with_their_own_timings(server) -> None:
    result = run(server.url + "delay?ms=40", "pipeline", 3)
    (record,) = result.connections
    ttfbs = [r.ttfb_ms for r in record.responses]
    # One connection, requests queued behind each other: each answer waits for the one before.
    assert ttfbs == sorted(ttfbs) and ttfbs[2] >= ttfbs[0] + 60


def test_json_record_has_the_documented_shape(server) -> None:
    data = run(server.url + "bytes?n=5000", "keepalive", 2).to_json()
    assert list(data) == ["url", "mode", "ok", "error", "connections"]
    (connection,) = data["connections"]
    assert list(connection) == [
        "local_ip",
        "local_port",
        "remote_ip",
        "remote_port",
        "phases",
        "responses",
        "error",
        "tcp",
    ]
    assert list(connection["phases"]) == [f"{name}_ms" for name in PHASES]
    assert connection["phases"]["tls_ms"] is None and connection["phases"]["connect_ms"] >= 0
    assert connection["phases"]["dns_ms"] is not None
    assert [list(r) for r in connection["responses"]] == [["status", "bytes", "ttfb_ms", "total_ms"]] * 2
    assert [r["bytes"] for r in connection["responses"]] == [5000, 5000]


def test_close_path_leaves_the_time_wait_on_the_server_side_every_time(server) -> None:
    """`/close`: the server closes first, and the client waits for that close instead of racing it
    (it used to win about half the time, and keep the TIME_WAIT itself)."""
    poller = Poller(open_source(), "tcp4")
    try:
        for _ in range(5):
            result = run(server.url + "close", "single", 1)
            record = result.connections[0]
            assert result.ok and result.connections[0].responses[0].server_closes
            client = ((record.local_ip, record.local_port), (record.remote_ip, record.remote_port))
            server_side = poll_until(poller, lambda socks: [s for s in find(socks, client[1], client[0])])  # noqa: B023
            assert [s.state for s in server_side] == ["TIME_WAIT"]
            assert not find(poller.poll()[0].sockets, *client)  # the client's side is gone at once
    finally:
        poller.close()


def test_held_connection_is_seen_established_then_client_side_in_time_wait(server) -> None:
    records = []

    def client() -> None:
        records.append(run(server.url, "single", 1, hold=1.5))

    thread = threading.Thread(target=client)
    thread.start()
    poller = Poller(open_source(), "tcp4")
    try:
        port = server.server.port
        established = poll_until(
            poller,
            lambda socks: [s for s in socks if s.remote_port == port and s.state == "ESTABLISHED" and s.local_port],
        )
        thread.join(10)
        (result,) = records
        record = result.connections[0]
        assert result.ok and any(s.local_port == record.local_port for s in established)
        assert [s.name for s in record.steps][-2:] == ["hold", "close"]
        local, remote = (record.local_ip, record.local_port), (record.remote_ip, record.remote_port)
        rows = poll_until(poller, lambda socks: [s for s in find(socks, local, remote) if s.state == "TIME_WAIT"])
        assert rows
    finally:
        poller.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MisbehavingServer:
    """A loopback listener that answers every connection with fixed bytes, or with silence;
    `received` keeps what each connection sent first."""

    def __init__(self, reply: bytes | None) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.reply = reply
        self.received: list[bytes] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            with conn:
                self.received.append(conn.recv(65536))
                if self.reply is not None:
                    conn.sendall(self.reply)
                else:
                    self.stop.wait(5)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.listener.close()


def within(timeout: float) -> float:
    """A generous wall-clock bound for a probe whose every step is bounded by `timeout`: on a busy
    machine a step may run late, but never by a multiple of its bound."""
    return 2 * timeout + 1


@pytest.mark.parametrize(
    ("url_of", "options", "step", "reason"),
    [
        (lambda s: f"http://127.0.0.1:{free_port()}/", {}, "connect", "connection refused"),
        (lambda s: "http://[::1/", {}, "parse", "invalid URL"),
        (lambda s: "gopher://127.0.0.1/", {}, "parse", "only http:// and https://"),
        (lambda s: "http://127.0.0.1:99999/", {}, "parse", "invalid URL"),
        (lambda s: s.url + "delay?ms=5000", {"timeout": 0.5}, "ttfb", "timed out after 0.5 s"),
        (lambda s: s.url.replace("http:", "https:"), {"timeout": 2}, "tls", "TLS error"),
    ],
)
def test_failures_are_failed_steps_with_reasons_within_their_bound(server, url_of, options, step, reason) -> None:
    started = time.monotonic()
    result = run(url_of(server), **options)
    assert time.monotonic() - started < within(options.get("timeout", 5))
    assert not result.ok and result.done
    assert result.first_error.startswith(step if step != "parse" else "invalid URL") and reason in result.first_error
    steps = result.steps + [s for c in result.connections for s in c.steps]
    assert any(s.name == step and not s.ok and reason in s.detail for s in steps)


def test_dns_failure_is_a_failed_step() -> None:
    started = time.monotonic()
    result = run("http://no-such-host.invalid/", timeout=2)
    assert time.monotonic() - started < within(2)
    assert not result.ok and result.first_error.startswith("dns:")
    assert result.connections == []


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (b"SSH-2.0-OpenSSH_9.0\r\n", "malformed response"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", "connection closed after 5 of 100"),
        (b"HTTP/1.1 OK\r\n\r\n", "malformed response"),
        (b"", "the server closed the connection"),
        (b"HTTP/1.1 200 " + b"x" * 70_000 + b"\r\n\r\n", "malformed response: a line longer than 64 KiB"),
        (b"HTTP/1.1 200 OK\r\nX-Big: " + b"x" * 70_000 + b"\r\n\r\n", "malformed response: a line longer"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", "chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1_0\r\n" + b"x" * 16, "chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", "chunk size"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\nab", "malformed response: Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello", "malformed response: Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n", "malformed response: Content-Length"),
        (b"HTTP/1.1 \xb2\xb2\xb2 OK\r\n\r\n", "malformed response: status line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 500\r\n\r\nhello", "two different Content-Length"),
    ],
    ids=lambda value: value[:40].decode("latin-1") if isinstance(value, bytes) else None,
)
def test_malformed_responses_are_failed_steps(reply: bytes, reason: str) -> None:
    peer = MisbehavingServer(reply)
    try:
        result = run(f"http://127.0.0.1:{peer.port}/", timeout=2)
    finally:
        peer.close()
    assert not result.ok and reason in result.first_error


def test_a_chunk_claiming_2_to_the_64_bytes_is_read_in_pieces_not_buffered() -> None:
    import tracemalloc

    body = b"x" * (64 << 20)
    peer = MisbehavingServer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n" + body)
    tracemalloc.start()
    try:
        result = run(f"http://127.0.0.1:{peer.port}/", timeout=10)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        peer.close()
    assert not result.ok and "connection closed after 67108864 of 18446744073709551615" in result.first_error
    assert peak < 16 << 20  # the 64 MiB that arrived were counted and dropped, not kept


def test_interim_1xx_responses_are_read_past_to_the_final_one() -> None:
    peer = MisbehavingServer(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    )
    try:
        result = run(f"http://127.0.0.1:{peer.port}/", timeout=2)
    finally:
        peer.close()
    assert result.ok, result.first_error
    ((response,),) = [connection.responses for connection in result.connections]
    assert (response.status, response.bytes) == (200, 2)


def test_non_ascii_path_and_query_are_percent_encoded_as_utf8_like_a_browser() -> None:
    target = parse_url("http://127.0.0.1/ü/%41 b?q=日本&x=%7e'")
    assert target.path == "/%C3%BC/%41%20b?q=%E6%97%A5%E6%9C%AC&x=%7e%27"
    peer = MisbehavingServer(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    try:
        result = run(f"http://127.0.0.1:{peer.port}/ü?q=日本", timeout=2)
    finally:
        peer.close()
    assert result.ok, result.first_error
    assert peer.received[0].startswith(b"GET /%C3%BC?q=%E6%97%A5%E6%9C%AC HTTP/1.1\r\n")


def test_non_ascii_host_goes_through_idna() -> None:
    assert ascii_host("Bücher.example") == "xn--bcher-kva.example"
    assert ascii_host("::1") == "::1" and ascii_host("127.0.0.1") == "127.0.0.1"


@pytest.mark.parametrize("host", ["a..b", "a" * 300, "." + "b" * 70 + ".example"])
def test_hosts_idna_rejects_fail_the_dns_step_with_the_reason(host: str) -> None:
    result = run(f"http://{host}/", timeout=2)
    assert result.done and not result.ok
    assert result.first_error.startswith("dns: invalid host name (label")
    (parse, dns) = result.steps
    assert parse.ok and dns.name == "dns" and not dns.ok and "label" in dns.detail


def test_probe_output_shows_a_hostile_url_escaped() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "conntui", "probe", f"http://127.0.0.1:{free_port()}/\x1b]0;X\x07", "--timeout", "2"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1
    assert "\x1b" not in result.stdout + result.stderr and "\x07" not in result.stdout
    assert "/\\x1b]0;X\\x07" in result.stdout


def test_port_zero_is_an_invalid_url() -> None:
    with pytest.raises(ValueError, match="port 0"):
        parse_url("http://127.0.0.1:0/")
    result = run("http://127.0.0.1:0/")
    assert result.first_error.startswith("invalid URL") and result.connections == []


class HTTP10Handler(BaseHTTPRequestHandler):
    """Python's http.server as it comes: HTTP/1.0, one request per connection."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, format: str, *args) -> None:  # keep the test output clean
        pass


@pytest.fixture
def http10_server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), HTTP10Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.mark.parametrize("mode", ["keepalive", "pipeline"])
def test_an_http10_server_closing_is_explained_and_its_answer_kept(http10_server: str, mode: str) -> None:
    result = run(http10_server, mode, 3, timeout=2)
    assert not result.ok
    assert result.first_error == "closed after response 1: the server answered HTTP/1.0 without keep-alive"
    (record,) = result.connections
    assert (record.responses[0].status, record.responses[0].bytes) == (200, 5)
    (connection,) = result.to_json()["connections"]
    assert connection["responses"][0]["status"] == 200 and connection["error"] == result.first_error
    assert run(http10_server, "single", 2).ok  # one request per connection is what it does well


def test_silent_server_times_out_instead_of_hanging() -> None:
    peer = MisbehavingServer(None)
    try:
        started = time.monotonic()
        result = run(f"http://127.0.0.1:{peer.port}/", timeout=0.5)
    finally:
        peer.close()
    assert time.monotonic() - started < within(0.5)  # the peer stays silent for 5 s
    assert result.first_error == "ttfb: timed out after 0.5 s"


def test_probe_command_json_and_exit_codes(server) -> None:
    def conntui(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "conntui", "probe", *args], capture_output=True, text=True, timeout=60
        )

    ok = conntui(server.url, "--mode", "parallel", "-n", "3", "--json")
    assert ok.returncode == 0, ok.stderr
    data = json.loads(ok.stdout)
    assert data["ok"] is True and data["mode"] == "parallel" and len(data["connections"]) == 3
    human = conntui(server.url, "--mode", "keepalive", "-n", "2")
    assert human.returncode == 0 and "4   connect" in human.stdout and "request 2: HTTP 200" in human.stdout
    refused = conntui(f"http://127.0.0.1:{free_port()}/", "--json")
    assert refused.returncode == 1 and json.loads(refused.stdout)["error"] == "connect: connection refused"
    assert "connection refused" in refused.stderr
    single = conntui(server.url, "--mode", "single", "-n", "3", "--json")
    assert single.returncode == 0 and len(json.loads(single.stdout)["connections"]) == 3
    bad_arguments = (
        ["-n", "0", server.url],
        ["ftp://127.0.0.1/"],
        ["--mode", "carrier", server.url],
        ["-n", "101", "x"],
        ["http://127.0.0.1:0/"],
    )
    for bad in bad_arguments:
        result = conntui(*bad)
        assert result.returncode == 2 and "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
        assert result.stderr.startswith("conntui probe: "), result.stderr
    assert refused.stderr.startswith("conntui probe: ")


def test_probe_help_shows_every_default() -> None:
    help_text = subprocess.run(
        [sys.executable, "-m", "conntui", "probe", "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    assert "1..100 (default 1)" in help_text and "(default: single)" in help_text and "(default 5 s)" in help_text


@pytest.mark.parametrize("prefix", ["", "  "])
def test_a_url_without_a_scheme_is_http_as_in_curl(server, prefix: str) -> None:
    bare = prefix + server.url.removeprefix("http://") + "delay?ms=1"
    assert parse_url(bare) == parse_url(server.url + "delay?ms=1")
    result = run(bare)
    assert result.ok, result.first_error
    assert result.url == server.url + "delay?ms=1"
    command = subprocess.run(
        [sys.executable, "-m", "conntui", "probe", f"localhost:{server.server.port}/x", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    data = json.loads(command.stdout)
    assert data["url"] == f"http://localhost:{server.server.port}/x"
    assert data["connections"][0]["responses"][0]["status"] == 404  # reached the server: /x is not one of its pages


def test_an_ip_literal_takes_no_lookup_and_a_name_does(server) -> None:
    literal = run(server.url)
    _parse, dns = literal.steps
    assert dns.name == "dns" and dns.ok and dns.detail == "literal, no lookup"
    named = run(server.url.replace("127.0.0.1", "localhost"))
    assert named.ok, named.first_error
    assert named.steps[1].detail != "literal, no lookup" and "127.0.0.1" in named.steps[1].detail


@pytest.mark.skipif(not HAS_IPV6, reason="no IPv6 loopback here")
def test_an_ipv6_literal_takes_no_lookup() -> None:
    server = ServerThread("::1", 0)
    server.start()
    try:
        result = run(server.url)
    finally:
        server.stop()
    assert result.ok, result.first_error
    assert result.steps[1].detail == "literal, no lookup"
    (record,) = result.connections
    assert record.remote_ip == "::1" and record.steps[0].detail.endswith(f"[::1]:{server.server.port}")


@pytest.fixture
def tls_server(tmp_path) -> Iterator[ServerThread]:
    """The test server behind TLS, with a throw-away self-signed certificate for 127.0.0.1."""
    import shutil
    import ssl

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    thread = ServerThread("127.0.0.1", 0, tls=context)
    thread.start()
    yield thread
    thread.stop()


def test_https_times_the_tls_handshake_as_its_own_step(tls_server) -> None:
    assert tls_server.url.startswith("https://")
    untrusted = run(tls_server.url, timeout=3)
    assert not untrusted.ok and "TLS certificate not trusted" in untrusted.first_error
    assert "--insecure" in untrusted.first_error
    result = run(tls_server.url, "keepalive", 2, insecure=True)
    assert result.ok, result.first_error
    (record,) = result.connections
    assert [step.name for step in record.steps] == ["connect", "tls", "send", "ttfb", "transfer", "close"]
    phases = result.to_json()["connections"][0]["phases"]
    assert phases["tls_ms"] is not None and phases["tls_ms"] > 0


def test_a_hanging_resolver_is_abandoned_at_the_timeout(monkeypatch) -> None:
    import conntui.http.client as probe_module

    real = socket.getaddrinfo

    def hanging(host, *args, **kwargs):  # a DNS server that never answers: not producible here for real
        if host == "hangs.example":
            time.sleep(3)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(probe_module.socket, "getaddrinfo", hanging)
    started = time.monotonic()
    result = run("http://hangs.example/", timeout=0.3)  # asyncio.run must not wait for the lookup
    assert time.monotonic() - started < within(0.3) + 1  # the lookup hangs for 3 s
    assert result.first_error == "dns: timed out after 0.3 s"
