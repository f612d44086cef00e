"""The built-in loopback HTTP/1.1 test server, on asyncio: the default target of test connections.

Endpoints: `/` (a small page), `/delay?ms=N` (waits, then answers), `/bytes?n=N` (an N-byte
body, streamed), `/close` (answers with `Connection: close` and closes first). Keep-alive by
default, pipelined requests answered in order; other paths 404, other methods 405, malformed
requests 400, an oversize request line 414 and oversize headers 431; idle connections are
closed after a timeout. Nothing a client sends can crash it.

`Connection: close` is honoured: the server answers and closes. conntui's own probe adds
`Conntui-Client-Closes: 1` to such a request; the server then reads no further request and
waits for the client to close first (bounded by the idle timeout), so a held test connection
stays ESTABLISHED while it is watched and its client side keeps the TIME_WAIT. `/close` always
closes from the server side first.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import signal
import ssl
import threading
from dataclasses import dataclass
from email.utils import formatdate
from urllib.parse import parse_qs, urlsplit

CLIENT_CLOSES_HEADER = "Conntui-Client-Closes"
MAX_REQUEST_LINE = 8 * 1024
MAX_HEADER_BYTES = 32 * 1024
MAX_HEADERS = 100
MAX_REQUEST_BODY = 1024 * 1024
MAX_DELAY_MS = 60_000
MAX_BYTES = 1024 * 1024 * 1024
CHUNK = 64 * 1024
PAGE = b"<!doctype html><title>conntui test server</title><p>Hello from the conntui test server.</p>\n"
REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
}


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


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class TestServer:
    """One asyncio server; `start()` binds (port 0 picks a free one) and sets `port` and `url`."""

    __test__ = False  # not a pytest test class

    def __init__(
        self, host: str = "127.0.0.1", port: int = 8080, idle_timeout: float = 15.0, tls: ssl.SSLContext | None = None
    ) -> None:
        self.host, self.port, self.idle_timeout, self.tls = host, port, idle_timeout, tls
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task] = set()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}/"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, limit=MAX_REQUEST_LINE, ssl=self.tls
        )
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
        assert task is not None
        self._handlers.add(task)
        try:
            await self._conversation(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        except asyncio.CancelledError:  # stop(): end quietly (asyncio logs a cancelled handler)
            pass
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _conversation(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                request = await asyncio.wait_for(self._read_request(reader), self.idle_timeout)
            except BadRequest as bad:
                await self._respond(writer, bad.status, f"{bad}\n".encode(), close=True)
                return
            if request is None:  # the client closed, or stayed idle too long
                return
            close = request.wants_close
            server_closes = await self._answer(request, writer, close)
            if server_closes:
                return
            if not close:
                continue
            if request.headers.get(CLIENT_CLOSES_HEADER.lower()) == "1":
                with contextlib.suppress(TimeoutError):  # let the client close first, within a bound
                    await asyncio.wait_for(_drain_until_eof(reader), self.idle_timeout)
            return

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
        if version not in ("HTTP/1.0", "HTTP/1.1") or not method.isalpha() or not target.startswith("/"):
            raise BadRequest(400, "malformed request line")
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
            headers[name.lower()] = value.strip()
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
        length_text = headers.get("content-length", "0")
        if not length_text.isdigit() or int(length_text) > MAX_REQUEST_BODY:
            raise BadRequest(400, "bad Content-Length")
        if int(length_text):
            await reader.readexactly(int(length_text))

    async def _answer(self, request: Request, writer: asyncio.StreamWriter, close: bool) -> bool:
        """Write the response; True when the server closes the connection itself."""
        if request.method not in ("GET", "HEAD"):
            await self._respond(writer, 405, b"only GET and HEAD\n", close, extra={"Allow": "GET, HEAD"})
            return False
        head = request.method == "HEAD"
        url = urlsplit(request.target)
        query = parse_qs(url.query)
        if url.path == "/":
            await self._respond(writer, 200, PAGE, close, head=head, content_type="text/html")
        elif url.path == "/delay":
            ms = _number(query, "ms", 0, MAX_DELAY_MS)
            if ms is None:
                await self._respond(writer, 400, f"ms must be 0..{MAX_DELAY_MS}\n".encode(), close, head=head)
                return False
            await asyncio.sleep(ms / 1000)
            await self._respond(writer, 200, f"waited {ms} ms\n".encode(), close, head=head)
        elif url.path == "/bytes":
            size = _number(query, "n", 0, MAX_BYTES)
            if size is None:
                await self._respond(writer, 400, f"n must be 0..{MAX_BYTES}\n".encode(), close, head=head)
                return False
            await self._stream(writer, size, close, head)
        elif url.path == "/close":
            await self._respond(writer, 200, b"closing\n", True, head=head)
            return True
        else:
            await self._respond(writer, 404, b"not found\n", close, head=head)
        return False

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
    ) -> None:
        writer.write(self._head(status, len(body), close, content_type, extra))
        if not head:
            writer.write(body)
        await writer.drain()

    async def _stream(self, writer: asyncio.StreamWriter, size: int, close: bool, head: bool) -> None:
        writer.write(self._head(200, size, close, "application/octet-stream"))
        if not head:
            chunk = b"x" * CHUNK
            remaining = size
            while remaining:
                part = chunk[: min(CHUNK, remaining)]
                writer.write(part)
                remaining -= len(part)
                await writer.drain()
        await writer.drain()

    @staticmethod
    def _head(status: int, length: int, close: bool, content_type: str, extra: dict[str, str] | None = None) -> bytes:
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


async def _drain_until_eof(reader: asyncio.StreamReader) -> None:
    while await reader.read(CHUNK):
        pass


def _number(query: dict[str, list[str]], name: str, low: int, high: int) -> int | None:
    values = query.get(name, ["0"])
    text = values[0]
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        return None
    return int(text)


class ServerThread:
    """A test server on its own thread and event loop (the dashboard's embedded instance)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        self.server = TestServer(host, port, tls=tls)
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


async def serve_until_stopped(server: TestServer, announce) -> None:
    """`conntui serve`: run until Ctrl+C or SIGTERM, then stop cleanly."""
    await server.start()
    announce(server.url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows has no signal handlers
            loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()
