"""The built-in loopback HTTP/1.1 test server, on asyncio: the default target of test connections.

Endpoints: `/` (a small page), `/delay?ms=N` (waits, then answers; N up to MAX_DELAY_MS),
`/bytes?n=N` (an N-byte body, streamed; N up to MAX_BYTES), `/close` (answers with
`Connection: close` and closes first). Keep-alive by default, pipelined requests answered in
order; other paths 404, other methods 405, malformed requests 400 (a request target outside
RFC 3986's grammar, a number that is not plain decimal or is beyond its maximum, a
Content-Length that is not plain decimal or conflicts with another), an oversize request line
414 and oversize headers 431. A connection idle for `idle_timeout` is closed; one whose client
stops reading is dropped (reset) when a write has made no progress for `write_timeout`.
Nothing a client sends can crash it. Each answered request can be reported to `on_request` as
a `Served` record (`conntui serve` prints one line per request from it).

`Connection: close` is honoured: the server answers and closes. conntui's own probe adds
`Conntui-Client-Closes: 1` to such a request; the server then reads no further request and
waits for the client to close first (bounded by the idle timeout), so a held test connection
stays ESTABLISHED while it is watched and its client side keeps the TIME_WAIT. `/close` always
closes from the server side first.

Distance, simulated (`rtt_ms`): every response waits one round trip from its request's arrival,
and the first response on a connection one more (the handshake's round trip), as if the client
were `rtt_ms` away. The wait counts from when the request's bytes arrived, not from when the
server got to it, so pipelined requests (which arrive together) are not delayed one after the
other. Such responses carry `SIMULATED_RTT_HEADER`, so a client can label its times "simulated".
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import signal
import socket
import ssl
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import NamedTuple
from urllib.parse import parse_qs

from conntui.http.records import CLIENT_CLOSES_HEADER, MAX_RTT_MS, SERVER_CLOSES_HEADER, SIMULATED_RTT_HEADER
from conntui.model import format_endpoint

MAX_REQUEST_LINE = 8 * 1024
MAX_HEADER_BYTES = 32 * 1024
MAX_HEADERS = 100
MAX_REQUEST_BODY = 1024 * 1024
MAX_DELAY_MS = 60_000  # /delay?ms=N beyond this answers 400
MAX_BYTES = 1024 * 1024 * 1024  # /bytes?n=N beyond this (1 GiB) answers 400
IDLE_TIMEOUT = 15.0  # seconds a connection may wait for its next request
WRITE_TIMEOUT = 15.0  # seconds a write may wait for a client that does not read
CHUNK = 64 * 1024
# Connections served at once: beyond this a new one is answered 503 and closed, so the server
# never runs out of file descriptors (half the soft limit, at most 1,000).
MAX_CONNECTIONS = 1000
BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
# RFC 3986's origin-form: an absolute path of pchars and '/', then an optional query.
_PCHAR = r"[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2}"
REQUEST_TARGET = re.compile(rf"/(?:{_PCHAR}|/)*(?:\?(?:{_PCHAR}|[/?])*)?")
# What `conntui serve` lists at start: each path and what it answers.
ENDPOINTS = (
    ("/", "a small page"),
    ("/delay?ms=N", f"answers after N ms (N up to {MAX_DELAY_MS:,})"),
    ("/bytes?n=N", "an N-byte body, streamed (N up to 1 GiB)"),
    ("/close", "answers, then closes the connection from the server's side"),
)
PAGE = b"<!doctype html><title>conntui test server</title><p>Hello from the conntui test server.</p>\n"
REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    503: "Service Unavailable",
}


log = logging.getLogger(__name__)


class BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: dict[str, str]

    @property
    def wants_close(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" not in connection
        return "close" in connection


class Answer(NamedTuple):
    status: int
    body_bytes: int  # as sent: 0 for HEAD
    server_closes: bool  # the server closes the connection itself after this answer


@dataclass(frozen=True)
class Served:
    """One request answered: who asked (the client's four-tuple), what, and how it went."""

    client: tuple[str, int]
    server: tuple[str, int]
    method: str  # "-" when the request line could not be read
    target: str
    status: int
    body_bytes: int
    ms: float  # from the request read to the answer handed to the kernel

    @property
    def line(self) -> str:
        """`tcp 127.0.0.1:51234 → 127.0.0.1:8080  GET /delay?ms=5  200  13 B  5.21 ms`."""
        client, server = format_endpoint(*self.client), format_endpoint(*self.server)
        request = f"{self.method} {self.target}"
        return f"tcp {client} → {server}  {request}  {self.status}  {self.body_bytes} B  {self.ms:.2f} ms"


def simulated_rtt_note(rtt_ms: int) -> str:
    """What `conntui serve --rtt` says at start."""
    return (
        f"simulated RTT {rtt_ms:,} ms: every response waits {rtt_ms:,} ms after its request arrived, "
        f"the first on a connection {2 * rtt_ms:,} ms (its handshake's round trip)"
    )


def bind_addresses(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to for listening. Raises OSError (socket.gaierror) or
    ValueError (a name IDNA refuses) when it does not resolve."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    return sorted({str(info[4][0]) for info in infos})


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ArrivalReader(asyncio.StreamReader):
    """A StreamReader that remembers when its bytes arrived and how many the server has read, so
    a request's arrival is known even when it waited in the buffer behind another (pipelining)."""

    def __init__(self, limit: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=limit, loop=loop)
        self.consumed = 0  # bytes the server has read (as lines or exact counts)
        self._fed = 0
        self._arrivals: deque[tuple[int, float]] = deque()  # (bytes fed in all up to this feed, when)

    def feed_data(self, data: bytes) -> None:  # type: ignore[override]  # the protocol feeds bytes
        if data:
            self._fed += len(data)
            self._arrivals.append((self._fed, time.monotonic()))
        super().feed_data(data)

    async def readuntil(self, separator: bytes = b"\n") -> bytes:  # type: ignore[override]
        line = await super().readuntil(separator)
        self.consumed += len(line)
        return line

    async def readexactly(self, n: int) -> bytes:
        data = await super().readexactly(n)
        self.consumed += len(data)
        return data

    def arrival_of(self, offset: int) -> float:
        """When byte `offset` of the stream arrived (time.monotonic()); the records of earlier bytes go."""
        while len(self._arrivals) > 1 and self._arrivals[0][0] <= offset:
            self._arrivals.popleft()
        return self._arrivals[0][1] if self._arrivals else time.monotonic()


class TestServer:
    """One asyncio server; `start()` binds (port 0 picks a free one) and sets `port` and `url`."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8080,
        idle_timeout: float = IDLE_TIMEOUT,
        tls: ssl.SSLContext | None = None,
        write_timeout: float = WRITE_TIMEOUT,
        max_connections: int | None = None,
        on_request: Callable[[Served], None] | None = None,
        rtt_ms: int = 0,
    ) -> None:
        if not 0 <= rtt_ms <= MAX_RTT_MS:
            raise ValueError(f"the simulated RTT must be 0..{MAX_RTT_MS} ms")
        self.host, self.port, self.idle_timeout, self.tls = host, port, idle_timeout, tls
        self.rtt_ms = rtt_ms
        self.on_request = on_request
        self.write_timeout = write_timeout
        self.max_connections = max_connections if max_connections is not None else _connection_cap()
        self._last_accept_error = 0.0
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task] = set()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{format_endpoint(self.host, self.port)}/"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        default_handler = loop.get_exception_handler()

        def accept_errors_once_a_second(loop: asyncio.AbstractEventLoop, context: dict) -> None:
            """Out of fds, asyncio logs a traceback per pending connection: one line a second instead."""
            if context.get("message") != "socket.accept() out of system resource":
                if default_handler is not None:
                    default_handler(loop, context)
                else:
                    loop.default_exception_handler(context)
            elif loop.time() - self._last_accept_error >= 1:
                self._last_accept_error = loop.time()
                log.warning("test server: cannot accept a connection: %s", context.get("exception"))

        loop.set_exception_handler(accept_errors_once_a_second)

        def protocol() -> asyncio.StreamReaderProtocol:  # asyncio.start_server's, with our reader
            return asyncio.StreamReaderProtocol(ArrivalReader(MAX_REQUEST_LINE, loop), self._serve, loop=loop)

        self._server = await loop.create_server(protocol, self.host, self.port, ssl=self.tls)
        if not self._server.sockets:  # asyncio skips a socket it cannot open (out of fds) as a family it lacks
            self._server.close()
            self._server = None
            socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET).close()  # raises why (EMFILE)
            raise OSError(f"no socket could be opened on {self.host}")
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._handlers):
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None and isinstance(reader, ArrivalReader)  # made by start()'s protocol
        if len(self._handlers) >= self.max_connections:
            with contextlib.suppress(ConnectionError):
                writer.write(BUSY)
            self._served(writer, "-", "-", Answer(503, 0, True), time.perf_counter())
            writer.close()
            return
        self._handlers.add(task)
        try:
            await self._conversation(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        except asyncio.CancelledError:  # stop(): end quietly (asyncio logs a cancelled handler)
            pass
        except Exception:  # a bug of ours: logged, and this connection closed; the server serves on
            log.exception("test server: unexpected error on a connection")
        finally:
            self._handlers.discard(task)
            if writer.transport.get_write_buffer_size():  # unsent data for a client that stopped reading
                _drop(writer)
            else:
                writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _conversation(self, reader: ArrivalReader, writer: asyncio.StreamWriter) -> None:
        first = True
        while True:
            offset = reader.consumed
            try:
                request = await asyncio.wait_for(self._read_request(reader), self.idle_timeout)
            except BadRequest as bad:
                started = time.perf_counter()
                answer = await self._respond(writer, bad.status, f"{bad}\n".encode(), close=True)
                self._served(writer, "-", "-", answer, started)
                return
            if request is None:  # the client closed, or stayed idle too long
                return
            close = request.wants_close
            if self.rtt_ms:
                await self._simulate_distance(reader.arrival_of(offset), first)
            first = False
            started = time.perf_counter()
            answer = await self._answer(request, writer, close)
            self._served(writer, request.method, request.target, answer, started)
            if answer.server_closes:
                return
            if not close:
                continue
            if request.headers.get(CLIENT_CLOSES_HEADER.lower()) == "1":
                with contextlib.suppress(TimeoutError):  # let the client close first, within a bound
                    await asyncio.wait_for(_drain_until_eof(reader), self.idle_timeout)
            return

    async def _simulate_distance(self, arrived: float, first: bool) -> None:
        """Wait until one RTT after the request arrived (two for a connection's first: the handshake's)."""
        due = arrived + self.rtt_ms / 1000 * (2 if first else 1)
        await asyncio.sleep(max(0.0, due - time.monotonic()))

    async def _read_request(self, reader: asyncio.StreamReader) -> Request | None:
        line = await self._read_line(reader, 414, "request line too long")
        while line in (b"\r\n", b"\n"):  # tolerate blank lines between requests
            line = await self._read_line(reader, 414, "request line too long")
        if not line:
            return None
        try:
            method, target, version = line.decode("ascii").split()
        except (UnicodeDecodeError, ValueError):
            raise BadRequest(400, "malformed request line") from None
        if version not in ("HTTP/1.0", "HTTP/1.1") or not method.isalpha():
            raise BadRequest(400, "malformed request line")
        if not REQUEST_TARGET.fullmatch(target):
            raise BadRequest(400, "malformed request target")
        headers: dict[str, str] = {}
        size = 0
        while True:
            line = await self._read_line(reader, 431, "header line too long")
            if not line:
                raise asyncio.IncompleteReadError(b"", None)
            if line in (b"\r\n", b"\n"):
                break
            size += len(line)
            if size > MAX_HEADER_BYTES or len(headers) >= MAX_HEADERS:
                raise BadRequest(431, "request headers too large")
            name, colon, value = line.decode("latin-1").partition(":")
            if not colon or not name.strip() or name != name.strip():
                raise BadRequest(400, "malformed header line")
            name, value = name.lower(), value.strip()
            if name == "content-length" and headers.get(name, value) != value:
                raise BadRequest(400, "conflicting Content-Length")
            headers[name] = value
        await self._skip_body(reader, headers)
        return Request(method, target, version, headers)

    @staticmethod
    async def _read_line(reader: asyncio.StreamReader, status: int, reason: str) -> bytes:
        try:
            return await reader.readuntil(b"\n")
        except asyncio.LimitOverrunError:
            raise BadRequest(status, reason) from None
        except asyncio.IncompleteReadError as partial:
            return partial.partial if partial.partial else b""

    @staticmethod
    async def _skip_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> None:
        if "transfer-encoding" in headers:
            raise BadRequest(501, "request bodies with Transfer-Encoding are not supported")
        length = _bounded_number(headers.get("content-length", "0"), MAX_REQUEST_BODY)
        if length is None:
            raise BadRequest(400, "bad Content-Length")
        if length:
            await reader.readexactly(length)

    async def _answer(self, request: Request, writer: asyncio.StreamWriter, close: bool) -> Answer:
        """Write the response; its `server_closes` when the server closes the connection itself."""
        if request.method not in ("GET", "HEAD"):
            return await self._respond(writer, 405, b"only GET and HEAD\n", close, extra={"Allow": "GET, HEAD"})
        head = request.method == "HEAD"
        path, _, query_text = request.target.partition("?")
        query = parse_qs(query_text)
        if path == "/":
            return await self._respond(writer, 200, PAGE, close, head=head, content_type="text/html")
        if path == "/delay":
            ms = _number(query, "ms", MAX_DELAY_MS)
            if ms is None:
                answer = await self._respond(writer, 400, f"ms must be 0..{MAX_DELAY_MS}\n".encode(), True, head=head)
                return answer._replace(server_closes=True)
            await asyncio.sleep(ms / 1000)
            return await self._respond(writer, 200, f"waited {ms} ms\n".encode(), close, head=head)
        if path == "/bytes":
            size = _number(query, "n", MAX_BYTES)
            if size is None:
                answer = await self._respond(writer, 400, f"n must be 0..{MAX_BYTES}\n".encode(), True, head=head)
                return answer._replace(server_closes=True)
            return await self._stream(writer, size, close, head)
        if path == "/close":
            answer = await self._respond(writer, 200, b"closing\n", True, head=head, extra={SERVER_CLOSES_HEADER: "1"})
            return answer._replace(server_closes=True)
        return await self._respond(writer, 404, b"not found\n", close, head=head)

    async def _respond(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        close: bool,
        *,
        head: bool = False,
        content_type: str = "text/plain",
        extra: dict[str, str] | None = None,
    ) -> Answer:
        """Write one response (`close`: announce Connection: close); the caller says whether
        the server then closes the connection itself."""
        writer.write(self._head(status, len(body), close, content_type, extra))
        if not head:
            writer.write(body)
        await self._drain(writer)
        return Answer(status, 0 if head else len(body), server_closes=False)

    async def _stream(self, writer: asyncio.StreamWriter, size: int, close: bool, head: bool) -> Answer:
        writer.write(self._head(200, size, close, "application/octet-stream"))
        if not head:
            chunk = b"x" * CHUNK
            remaining = size
            while remaining:
                part = chunk[: min(CHUNK, remaining)]
                writer.write(part)
                remaining -= len(part)
                await self._drain(writer)
        await self._drain(writer)
        return Answer(200, 0 if head else size, False)

    def _served(self, writer: asyncio.StreamWriter, method: str, target: str, answer: Answer, started: float) -> None:
        if self.on_request is None:
            return
        client, server = writer.get_extra_info("peername"), writer.get_extra_info("sockname")
        if not client or not server:  # the connection is already gone
            return
        elapsed_ms = (time.perf_counter() - started) * 1000
        self.on_request(Served(client[:2], server[:2], method, target, answer.status, answer.body_bytes, elapsed_ms))

    async def _drain(self, writer: asyncio.StreamWriter) -> None:
        """Wait for the client to take what was written; TimeoutError if it makes no room in time."""
        await asyncio.wait_for(writer.drain(), self.write_timeout)

    def _head(
        self, status: int, length: int, close: bool, content_type: str, extra: dict[str, str] | None = None
    ) -> bytes:
        if self.rtt_ms:
            extra = {**(extra or {}), SIMULATED_RTT_HEADER: str(self.rtt_ms)}
        lines = [
            f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}",
            f"Date: {formatdate(usegmt=True)}",
            "Server: conntui-testserver",
            f"Content-Type: {content_type}",
            f"Content-Length: {length}",
            f"Connection: {'close' if close else 'keep-alive'}",
            *(f"{name}: {value}" for name, value in (extra or {}).items()),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _drop(writer: asyncio.StreamWriter) -> None:
    """Reset the connection, discarding unsent data: a plain close would wait to flush it (in
    asyncio, then in the kernel) for a client that may never read again."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _drain_until_eof(reader: asyncio.StreamReader) -> None:
    while await reader.read(CHUNK):
        pass


def _number(query: dict[str, list[str]], name: str, high: int) -> int | None:
    return _bounded_number(query.get(name, ["0"])[0], high)


def _bounded_number(text: str, high: int) -> int | None:
    """A plain decimal number from 0 to `high`, else None: no sign, no other script's digits, and
    no 5,000-digit number (which `int()` refuses with an exception)."""
    digits = text.lstrip("0") or "0"
    if not (text.isascii() and text.isdigit()) or len(digits) > len(str(high)):
        return None
    value = int(digits)
    return value if value <= high else None


def _connection_cap() -> int:
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError):  # no such limit here (Windows)
        return MAX_CONNECTIONS
    return MAX_CONNECTIONS if soft == resource.RLIM_INFINITY else max(8, min(MAX_CONNECTIONS, soft // 2))


class ServerThread:
    """A test server on its own thread and event loop (the dashboard's embedded instance)."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None, rtt_ms: int = 0
    ) -> None:
        self.server = TestServer(host, port, tls=tls, rtt_ms=rtt_ms)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="conntui-testserver", daemon=True)

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> str:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        return self.url

    def stop(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.server.start())
        except BaseException as error:  # reported to start()
            self._error = error
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()


async def serve_until_stopped(server: TestServer, announce: Callable[[str], None]) -> None:
    """`conntui serve`: run until Ctrl+C or SIGTERM, then stop cleanly."""
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows has no signal handlers
            loop.add_signal_handler(signum, stop.set)
    announce(server.url)  # after the handlers: a SIGTERM sent on reading the URL stops it cleanly
    try:
        await stop.wait()
    finally:
        await server.stop()
