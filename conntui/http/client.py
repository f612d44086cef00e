"""The instrumented HTTP client: the seven steps of an HTTP exchange, each timed. Pure asyncio.

For `http://host:80/page` a browser (1) extracts the host, (2) resolves it to an IP, (3) takes
the port, (4) opens a TCP connection (then, for https, the TLS handshake), (5) sends the
request, (6) reads the response (first byte, then the rest), (7) closes. `probe()` does the
same in one of four modes — single, keepalive, parallel, pipeline — and records, per
connection, the four-tuple it really used and the time of every step. Every step is bounded by
a timeout; every failure becomes a failed step with a reason, never an exception.

The URL is read as a browser reads it (without a scheme it is http://, as curl reads
`localhost:8080/x`): the host goes through IDNA (in the DNS step, so a name
IDNA rejects is a failed lookup with the reason; an IP literal takes no lookup, as in a
browser), the path and query are percent-encoded as
UTF-8 (existing `%XX` kept). A response is read strictly: a line over 64 KiB, a chunk size or a
Content-Length that is not a plain number is a failed step "malformed response: …".

Several URLs of one origin are used in turn by the requests (request k takes URL k mod their
count), so that one slow response among fast ones shows head-of-line blocking. Each step records
the socket API call it made; each connection, the kernel's tcp_info of its socket once connected
and at the end. `split_writes` writes each request's line and its headers in two writes, and
`nodelay=False` turns TCP_NODELAY off (asyncio turns it on), for Nagle's algorithm to be seen.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from conntui import __version__
from conntui.http.records import (
    CLIENT_CLOSES_HEADER,
    MAX_PROBE_COUNT,
    PROBE_MODES,
    SERVER_CLOSES_HEADER,
    SIMULATED_RTT_HEADER,
    SOCKET_CALLS,
    ConnectionRecord,
    ProbeResult,
    Response,
    Step,
)
from conntui.model import format_endpoint
from conntui.sources.tcp_info import read_tcp_info

MAX_HEADER_BYTES = 64 * 1024
MAX_LINE_BYTES = 64 * 1024  # one status, header or chunk-size line
MAX_LENGTH_DIGITS = 18  # a Content-Length beyond 10**18 bytes is not a real body
CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
LITERAL_DETAIL = "literal, no lookup"
# What a browser percent-encodes besides controls, space and non-ASCII (WHATWG URL standard).
PATH_ESCAPED = frozenset('"<>`{}')
QUERY_ESCAPED = frozenset("\"<>'")


class ProbeError(Exception):
    """A step failed; `step` names it; `server_closed` when the server had closed the connection."""

    def __init__(self, step: str, reason: str, server_closed: bool = False) -> None:
        super().__init__(reason)
        self.step = step
        self.server_closed = server_closed


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str

    @property
    def host_header(self) -> str:
        host = ascii_host(self.host)
        host = f"[{host}]" if ":" in host else host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def with_scheme(url: str) -> str:
    """The URL without its surrounding blanks, and with `http://` in front when it names no scheme."""
    url = url.strip()
    return url if SCHEME.match(url) else f"http://{url}"


def parse_url(url: str) -> Target:
    """Steps 1 and 3: the host and the port, from the URL. Raises ValueError with the reason."""
    try:
        parts = urlsplit(with_scheme(url))
        port = parts.port
    except ValueError as error:
        raise ValueError(f"invalid URL {url!r}: {error}") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"invalid URL {url!r}: only http:// and https:// are supported")
    if not parts.hostname:
        raise ValueError(f"invalid URL {url!r}: no host")
    if port == 0:
        raise ValueError(f"invalid URL {url!r}: port 0 cannot be connected to")
    path = _percent_encode(parts.path or "/", PATH_ESCAPED)
    if parts.query:
        path += "?" + _percent_encode(parts.query, QUERY_ESCAPED)
    return Target(parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path)


def parse_urls(urls: Sequence[str]) -> list[Target]:
    """Each URL's target; they must share one origin (scheme, host, port): the connections are
    opened to it. Raises ValueError with the reason."""
    targets = [parse_url(url) for url in urls]
    if not targets:
        raise ValueError("no URL")
    origins = {(target.scheme, target.host.lower(), target.port) for target in targets}
    if len(origins) > 1:
        raise ValueError(
            "the URLs must share one origin (scheme, host and port): the requests go over the same connections"
        )
    return targets


def ascii_host(host: str) -> str:
    """The host as DNS and the Host header take it: an IP literal as it is, a name through IDNA.
    Raises ValueError with the reason for a name IDNA rejects (an empty or over-long label)."""
    with contextlib.suppress(ValueError):
        return str(ipaddress.ip_address(host))
    try:
        return codecs.lookup("idna").encode(host)[0].decode("ascii")
    except UnicodeError as error:
        raise ValueError(f"invalid host name ({error})") from None


def _percent_encode(text: str, escaped: frozenset[str]) -> str:
    """Controls, space, non-ASCII and `escaped` as %XX of their UTF-8 bytes; the rest (an
    existing %XX included) as it is."""
    return "".join(
        char if " " < char < "\x7f" and char not in escaped else "".join(f"%{byte:02X}" for byte in _utf8(char))
        for char in text
    )


def _utf8(char: str) -> bytes:
    try:
        return char.encode("utf-8", "surrogateescape")  # a byte of a command line that was not UTF-8
    except UnicodeEncodeError:  # a lone surrogate: what a browser sends for it
        return "\N{REPLACEMENT CHARACTER}".encode()


Observer = Callable[[ProbeResult], None]


class Probe:
    """One run of `probe()`; `observer` is called whenever the record changes (for live views)."""

    def __init__(
        self,
        url: str | Sequence[str],
        mode: str = "single",
        count: int = 1,
        *,
        hold: float = 0.0,
        timeout: float = 5.0,
        insecure: bool = False,
        split_writes: bool = False,
        nodelay: bool = True,
        observer: Observer | None = None,
    ) -> None:
        if mode not in PROBE_MODES:
            raise ValueError(f"unknown mode {mode!r} (choose from {', '.join(PROBE_MODES)})")
        if not 1 <= count <= MAX_PROBE_COUNT:
            raise ValueError(f"count must be 1..{MAX_PROBE_COUNT}")
        if hold < 0 or timeout <= 0:
            raise ValueError("hold must be >= 0 and timeout > 0")
        urls = [with_scheme(one) for one in ([url] if isinstance(url, str) else url)]
        if not urls:
            raise ValueError("no URL")
        self.result = ProbeResult(urls[0], mode, count, urls=tuple(urls) if len(urls) > 1 else ())
        self.urls = urls
        self.hold, self.timeout, self.insecure = hold, timeout, insecure
        self.split_writes, self.nodelay = split_writes, nodelay
        self.observer = observer
        self._started = 0.0

    def _now_ms(self) -> float:
        return (time.perf_counter() - self._started) * 1000

    def _changed(self) -> None:
        if self.observer is not None:
            self.observer(self.result)

    async def _timed(self, steps: list[Step], name: str, work, detail: str = "", call: str | None = None):
        """Run one step under the timeout, record it (ok or failed) and return its value; `call`
        names the socket API call when it is not the step's usual one."""
        start = self._now_ms()
        call = SOCKET_CALLS.get(name, "") if call is None else call
        try:
            value = await asyncio.wait_for(work, self.timeout)
        except TimeoutError:
            steps.append(Step(name, start, self._now_ms() - start, False, f"timed out after {self.timeout:g} s", call))
            self._changed()
            raise ProbeError(name, f"{name}: timed out after {self.timeout:g} s") from None
        except ProbeError as error:
            steps.append(Step(name, start, self._now_ms() - start, False, str(error), call))
            self._changed()
            raise ProbeError(name, f"{name}: {error}", error.server_closed) from None
        except Exception as error:  # whatever raised it, a failure is a failed step
            reason = describe_error(error)
            steps.append(Step(name, start, self._now_ms() - start, False, reason, call))
            self._changed()
            raise ProbeError(name, f"{name}: {reason}", server_closed=_server_closed(error)) from None
        steps.append(Step(name, start, self._now_ms() - start, True, detail, call))
        self._changed()
        return value

    async def run(self) -> ProbeResult:
        result = self.result
        self._started = time.perf_counter()
        try:
            start = self._now_ms()
            try:
                targets = parse_urls(self.urls)
                target = targets[0]
            except ValueError as error:
                result.steps.append(Step("parse", start, self._now_ms() - start, False, str(error)))
                raise ProbeError("parse", str(error)) from None
            result.steps.append(
                Step("parse", start, self._now_ms() - start, True, f"host {target.host}, port {target.port}")
            )
            addresses = self._literal_address(target)
            if not addresses:
                addresses = await self._timed(result.steps, "dns", self._resolve(target))
                result.steps[-1].detail = ", ".join(address[0] for address in addresses[:3])
            if result.mode == "parallel":
                await asyncio.gather(*(self._connection(targets, addresses, index, 1) for index in range(result.count)))
            elif result.mode == "single":  # a client without keep-alive: a new connection per request
                for index in range(result.count):
                    if (await self._connection(targets, addresses, index, 1)).error:
                        break
            else:
                await self._connection(targets, addresses, 0, result.count)
        except ProbeError as error:
            result.error = str(error)
        except Exception as error:  # a bug of ours: still a record, never a traceback on a probe thread
            result.error = f"internal error: {describe_error(error)}"
        finally:
            result.done = True
            self._changed()
        return result

    def _literal_address(self, target: Target) -> list[tuple]:
        """Step 2 for an IP-literal host: its address as it is, no lookup and no thread (a
        browser's way); recorded as a DNS step of ~0 ms. [] for a name."""
        start = self._now_ms()
        try:
            ip = ipaddress.ip_address(target.host)
        except ValueError:
            return []
        if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:  # an interface name: the resolver maps it
            return []
        address = (str(ip), target.port) if ip.version == 4 else (str(ip), target.port, 0, 0)
        self.result.steps.append(Step("dns", start, self._now_ms() - start, True, LITERAL_DETAIL, call=""))
        self._changed()
        return [address]

    async def _resolve(self, target: Target) -> list[tuple]:
        """getaddrinfo on a daemon thread of its own: a resolver that hangs past our timeout is
        abandoned, where the loop's default executor would hold up the end of `asyncio.run`."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[list[tuple]] = loop.create_future()

        def deliver(result: list[tuple] | None, error: BaseException | None) -> None:
            if answer.done():  # timed out meanwhile
                return
            if error is not None:
                answer.set_exception(error)
            else:
                answer.set_result(result or [])

        host = ascii_host(target.host)

        def lookup() -> None:
            try:
                infos = socket.getaddrinfo(host, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
                result, error = [info[4] for info in infos], None
            except Exception as failure:  # reported as the failed step: this thread never dies unheard
                result, error = None, failure
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
                loop.call_soon_threadsafe(deliver, result, error)

        threading.Thread(target=lookup, name="conntui-dns", daemon=True).start()
        return await answer

    async def _connection(
        self, targets: list[Target], addresses: list[tuple], index: int, requests: int
    ) -> ConnectionRecord:
        """Connection `index`, making `requests` requests: the first is request number `index`
        (one connection per request) or 0 (all requests on one connection)."""
        record = ConnectionRecord(index)
        self.result.connections.append(record)
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        # Request k takes URL k mod their count.
        own = [targets[(index + number) % len(targets)] for number in range(requests)]
        try:
            reader, writer = await self._open(own[0], addresses, record)
            if self.result.mode == "pipeline":
                await self._pipeline(own, record, reader, writer)
            else:
                keep_alive = self.result.mode == "keepalive"  # the client closes when it is done
                for number, target in enumerate(own):
                    await self._exchange(target, record, reader, writer, keep_alive=keep_alive, first=number == 0)
            if self.hold:
                await self._hold(record)
        except ProbeError as error:
            record.error = (error.server_closed and _closed_early(record)) or str(error)
        finally:
            if reader is not None and any(response.server_closes for response in record.responses):
                await self._server_close(reader)  # it closes first: wait for it, not race it
            if writer is not None:
                record.tcp = read_tcp_info(writer.get_extra_info("socket"))
                with contextlib.suppress(ProbeError):
                    await self._timed(record.steps, "close", self._close(writer))
            self._changed()
        return record

    async def _open(self, target: Target, addresses: list[tuple], record: ConnectionRecord):
        sock = await self._timed(record.steps, "connect", self._connect(addresses))
        try:
            local, remote = sock.getsockname(), sock.getpeername()
            record.local_ip, record.local_port = local[0], local[1]
            record.remote_ip, record.remote_port = remote[0], remote[1]
            record.steps[-1].detail = f"{format_endpoint(*local[:2])} → {format_endpoint(*remote[:2])}"
            record.tcp_start = read_tcp_info(sock)
            self._changed()
            if target.scheme == "https":
                context = ssl.create_default_context()
                if self.insecure:
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                reader, writer = await self._timed(
                    record.steps,
                    "tls",
                    asyncio.open_connection(
                        sock=sock,
                        ssl=context,
                        server_hostname=ascii_host(target.host),
                        ssl_handshake_timeout=self.timeout,
                        limit=MAX_LINE_BYTES,
                    ),
                )
            else:
                reader, writer = await asyncio.open_connection(sock=sock, limit=MAX_LINE_BYTES)
            # asyncio has just turned TCP_NODELAY on; Nagle's algorithm needs it off again.
            writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, int(self.nodelay))
            return reader, writer
        except BaseException:
            sock.close()
            raise

    async def _connect(self, addresses: list[tuple]) -> socket.socket:
        loop = asyncio.get_running_loop()
        last_error: OSError | None = None
        for address in addresses:
            family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, address)
                return sock
            except OSError as error:
                sock.close()
                last_error = error
            except BaseException:
                sock.close()
                raise
        assert last_error is not None
        raise last_error

    def _request(self, target: Target, keep_alive: bool) -> bytes:
        """The request: a request line, headers and the blank line that ends them."""
        lines = [
            f"GET {target.path} HTTP/1.1",
            f"Host: {target.host_header}",
            f"User-Agent: conntui/{__version__}",
            "Accept: */*",
            f"Connection: {'keep-alive' if keep_alive else 'close'}",
        ]
        if not keep_alive:
            lines.append(f"{CLIENT_CLOSES_HEADER}: 1")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")

    async def _exchange(self, target, record, reader, writer, *, keep_alive: bool, first: bool) -> None:
        # Only the first request's steps go into the connection's timeline; later ones are
        # recorded as responses with their own timings (keep-alive reuse is the point).
        steps = record.steps if first else []
        sent_at = self._now_ms()
        request = self._request(target, keep_alive)
        if self.split_writes:  # the request line, then the headers: two small segments
            line_end = request.index(b"\r\n") + 2
            writes = [request[:line_end], request[line_end:]]
            await self._timed(steps, "send", self._send(writer, writes), "line and headers in two writes", "send ×2")
        else:
            await self._timed(steps, "send", self._send(writer, [request]))
        await self._read_response(record, reader, steps, sent_at)

    async def _pipeline(self, targets: list[Target], record, reader, writer) -> None:
        sent_at = self._now_ms()
        last = len(targets) - 1
        # One write, so pipelined requests reach the server together: a server that closes
        # after its first answer then has read them all and closes cleanly, rather than with a
        # reset that would discard the answer already on its way.
        batch = b"".join(self._request(target, keep_alive=number < last) for number, target in enumerate(targets))
        await self._timed(record.steps, "send", self._send(writer, [batch]), f"{len(targets)} requests back-to-back")
        for number in range(len(targets)):
            await self._read_response(record, reader, record.steps if number == 0 else [], sent_at)

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, writes: list[bytes]) -> None:
        """Each of `writes` as a write of its own (a send() call), waiting for the buffer to drain."""
        for data in writes:
            writer.write(data)
            await writer.drain()

    async def _read_response(self, record, reader, steps: list[Step], sent_at: float) -> None:
        response = Response(None, 0, None, None)
        record.responses.append(response)
        try:
            status_line = await self._timed(steps, "ttfb", reader.readuntil(b"\n"))
            first_byte = self._now_ms()
            response.ttfb_ms = round(first_byte - sent_at, 3)
            await self._timed(steps, "transfer", self._read_rest(status_line, reader, response))
            response.total_ms = round(self._now_ms() - sent_at, 3)
            if steps:
                steps[-1].detail = f"HTTP {response.status}, {response.bytes} bytes"
        except ProbeError as error:
            response.error = str(error)
            raise
        finally:
            self._changed()

    async def _read_rest(self, status_line: bytes, reader: asyncio.StreamReader, response: Response) -> None:
        """The rest of the response after its status line: `response` gets its status, size and
        whether the server announced it closes. Interim 1xx responses (100 Continue, 103 Early
        Hints) are read past: the final response follows them."""
        while True:
            version, status, headers = await _read_head(status_line, reader)
            if not (100 <= status < 200) or status == 101:
                break
            status_line = await reader.readuntil(b"\n")
        response.status = status
        response.closing = _closing_notice(version, headers.get("connection", ""))
        response.server_closes = headers.get(SERVER_CLOSES_HEADER.lower()) == "1"
        simulated = headers.get(SIMULATED_RTT_HEADER.lower(), "")
        if _is_decimal(simulated) and len(simulated) <= 6:
            response.simulated_rtt_ms = int(simulated)
        length = headers.get("content-length")
        if status in (204, 304, 101):
            response.bytes = 0
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            response.bytes = await _read_chunked(reader)
        elif length is not None:
            response.bytes = await _discard(reader, int(length))
        else:
            response.closing = "the server ended the response by closing (no Content-Length)"
            response.bytes = await _discard(reader, None)

    async def _hold(self, record: ConnectionRecord) -> None:
        start = self._now_ms()
        await asyncio.sleep(self.hold)
        record.steps.append(Step("hold", start, self._now_ms() - start, True, f"held {self.hold:g} s"))
        self._changed()

    async def _server_close(self, reader: asyncio.StreamReader) -> None:
        """Read until the server's close (its FIN), bounded by the timeout."""
        with contextlib.suppress(Exception):  # whatever ends the wait, the connection is closed next
            await asyncio.wait_for(reader.read(), self.timeout)

    @staticmethod
    async def _close(writer: asyncio.StreamWriter) -> None:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()


async def _read_head(status_line: bytes, reader: asyncio.StreamReader) -> tuple[str, int, dict[str, str]]:
    """(version, status, headers) of one response head whose status line was read already."""
    parts = status_line.decode("latin-1").split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not _is_decimal(parts[1]) or len(parts[1]) != 3:
        raise ProbeError("transfer", f"malformed response: status line {status_line[:60]!r}")
    headers: dict[str, str] = {}
    size = 0
    while True:
        line = await reader.readuntil(b"\n")
        size += len(line)
        if size > MAX_HEADER_BYTES:
            raise ProbeError("transfer", "malformed response: headers too large")
        if line in (b"\r\n", b"\n"):
            break
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon:
            raise ProbeError("transfer", f"malformed response: header line {line[:60]!r}")
        name, value = name.strip().lower(), value.strip()
        if name == "content-length":
            if not _is_decimal(value) or len(value) > MAX_LENGTH_DIGITS:
                raise ProbeError("transfer", f"malformed response: Content-Length {value[:40]!r}")
            if headers.get(name, value) != value:
                raise ProbeError("transfer", "malformed response: two different Content-Length headers")
        headers[name] = value
    return parts[0], int(parts[1]), headers


async def _discard(reader: asyncio.StreamReader, length: int | None) -> int:
    """Read and drop a body of `length` bytes (None: until the server closes); returns its size."""
    size = 0
    while length is None or size < length:
        chunk = await reader.read(65536 if length is None else min(65536, length - size))
        if not chunk:
            if length is None:
                break
            raise ProbeError("transfer", f"connection closed after {size} of {length} body bytes")
        size += len(chunk)
    return size


async def _read_chunked(reader: asyncio.StreamReader) -> int:
    size = 0
    while True:
        line = await reader.readuntil(b"\n")
        digits = line.split(b";")[0].strip(b" \t\r\n")
        if not CHUNK_SIZE.fullmatch(digits):
            raise ProbeError("transfer", f"malformed response: chunk size {line[:40]!r}")
        chunk_size = int(digits, 16)
        if chunk_size == 0:
            while (await reader.readuntil(b"\n")) not in (b"\r\n", b"\n"):
                pass
            return size
        await _discard(reader, chunk_size)  # in pieces: a claimed size of 2**64 is not buffered
        if (await reader.readuntil(b"\n")) not in (b"\r\n", b"\n"):
            raise ProbeError("transfer", "malformed response: a chunk longer than its size")
        size += chunk_size


def _is_decimal(text: str) -> bool:
    """Plain ASCII digits (`str.isdigit` alone also takes '²' and other scripts' digits)."""
    return text.isascii() and text.isdigit()


def _closing_notice(version: str, connection: str) -> str | None:
    """Why the server will close after this response, from its version and Connection header."""
    tokens = {token.strip().lower() for token in connection.split(",")}
    if "close" in tokens:
        return "the server answered Connection: close"
    if version == "HTTP/1.0" and "keep-alive" not in tokens:
        return "the server answered HTTP/1.0 without keep-alive"
    return None


def _closed_early(record: ConnectionRecord) -> str | None:
    """The reason a connection that the server closed after some answers ended early, or None."""
    answered = [response for response in record.responses if response.error is None and response.status is not None]
    if not answered:
        return None
    notice = answered[-1].closing
    return f"closed after response {len(answered)}: {notice}" if notice else None


def _server_closed(error: BaseException) -> bool:
    if isinstance(error, asyncio.IncompleteReadError):
        return not error.partial
    return isinstance(error, ConnectionResetError | BrokenPipeError)


def describe_error(error: BaseException) -> str:
    if isinstance(error, socket.gaierror):
        return f"DNS lookup failed ({error.strerror})"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({error.verify_message}); --insecure skips the check"
    if isinstance(error, ssl.SSLError):
        return f"TLS error ({error.reason or error})"
    if isinstance(error, asyncio.IncompleteReadError):
        return "the server closed the connection" if not error.partial else "malformed response: cut short"
    if isinstance(error, asyncio.LimitOverrunError):
        return f"malformed response: a line longer than {MAX_LINE_BYTES // 1024} KiB"
    if isinstance(error, OSError):
        return error.strerror or str(error)
    if isinstance(error, ValueError):
        return str(error)
    return f"{type(error).__name__}: {error}"


async def probe(url: str, mode: str = "single", count: int = 1, **options) -> ProbeResult:
    """Run the test connections and return their record (never raises for network failures)."""
    return await Probe(url, mode, count, **options).run()
