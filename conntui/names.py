"""Names for numbers, each shown only when the user switches it on: service names for ports (the
system's services database, as `ss` without `-n`) and host names for remote addresses (reverse DNS).

`Names` is read by the UI thread (drawing) and the engine thread (filtering) and filled by its own
lookup threads. Reverse lookups are asynchronous, cached, at most `in_flight` at a time, each given
up after `timeout` seconds (its number stays); a failed lookup keeps the number. Reading a name
never waits: an address not yet known reads as None and is queued. Names come from the system and
from DNS, so they are untrusted: whoever shows one passes it through `conntui.text.printable`.
Knows nothing of Textual.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from functools import lru_cache

from conntui.model import Socket
from conntui.text import printable

FALLBACK_SERVICES = {  # used when the system has no services database (/etc/services)
    21: "ftp", 22: "ssh", 25: "smtp", 53: "domain", 80: "http", 110: "pop3", 143: "imap", 443: "https",
    993: "imaps", 3306: "mysql", 5432: "postgresql", 6379: "redis", 8080: "http-alt",
}  # fmt: skip
SERVICE_WIDTH = 16  # room a port column gains for its service name when they are shown
SERVICE_MARK = "\u00a0"  # between an endpoint and its service name: drawn as a space, cut first
HOST_CACHE = 10_000  # names kept; the oldest go first
QUEUE_LIMIT = 1_024  # addresses waiting for a lookup; more are asked again later


@lru_cache(maxsize=8192)
def service_name(port: int, proto: str) -> str | None:
    """The well-known service on this port (`443` → `https`), or None."""
    try:
        return socket.getservbyport(port, proto)
    except (OSError, OverflowError):
        return FALLBACK_SERVICES.get(port)


def reverse_lookup(ip: str) -> str | None:
    """The address's name by reverse DNS (and /etc/hosts), or None."""
    try:
        return socket.gethostbyaddr(ip)[0] or None
    except (OSError, UnicodeError):
        return None


def _worth_naming(ip: str | None) -> bool:
    """A specific address: not the wildcard of a listener or an unconnected socket."""
    if not ip:
        return False
    try:
        return not ipaddress.ip_address(ip).is_unspecified
    except ValueError:
        return False


class Names:
    """What the dashboard shows for numbers: toggles, the host-name cache, its lookups."""

    def __init__(
        self,
        *,
        resolve: Callable[[str], str | None] = reverse_lookup,
        in_flight: int = 4,
        timeout: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.services_shown = False
        self.hosts_shown = False
        self.version = 0  # moves on with every toggle and every answer: what is drawn may change
        self.resolve, self.in_flight, self.timeout, self.clock = resolve, in_flight, timeout, clock
        self._hosts: dict[str, str | None] = {}  # address -> its name, or None: none (the number stays)
        self._asked: dict[str, float] = {}  # address -> when its lookup started
        self._waiting: deque[str] = deque()
        self._queued: set[str] = set()
        self._running = 0
        self._lock = threading.Lock()

    def toggle_services(self) -> bool:
        with self._lock:
            self.services_shown = not self.services_shown
            self.version += 1
        return self.services_shown

    def toggle_hosts(self) -> bool:
        with self._lock:
            self.hosts_shown = not self.hosts_shown
            self.version += 1
        return self.hosts_shown

    # -- reading (never waits) ---------------------------------------------------------------

    def service(self, port: int | None, proto: str) -> str | None:
        """The port's service name when service names are shown."""
        if not self.services_shown or port is None:
            return None
        return service_name(port, proto)

    def host(self, ip: str | None) -> str | None:
        """The address's name when host names are shown and it is known; otherwise None, and the
        lookup is started (or, when it took too long, given up)."""
        if not self.hosts_shown or not _worth_naming(ip):
            return None
        assert ip is not None
        if ip in self._hosts:
            return self._hosts[ip]
        self.look_up([ip])
        return None

    def known_host(self, ip: str | None) -> str | None:
        """The address's name when shown and already known: no lookup (for filtering every row)."""
        return self._hosts.get(ip) if self.hosts_shown and ip else None

    # -- looking up --------------------------------------------------------------------------

    def look_up(self, ips: Iterable[str | None]) -> None:
        """Queue these addresses' lookups (those not known, not already asked)."""
        if not self.hosts_shown:
            return
        with self._lock:
            self._give_up_late()
            for ip in ips:
                if len(self._waiting) >= QUEUE_LIMIT:
                    break
                if ip and ip not in self._hosts and ip not in self._queued and _worth_naming(ip):
                    self._waiting.append(ip)
                    self._queued.add(ip)
            self._start_lookups()

    def _give_up_late(self) -> None:
        """Under the lock: a lookup older than the timeout leaves its address as a number."""
        now = self.clock()
        late = [ip for ip, started in self._asked.items() if now - started > self.timeout]
        for ip in late:
            del self._asked[ip]
            self._remember(ip, None)

    def _start_lookups(self) -> None:
        """Under the lock: start lookups while fewer than `in_flight` are running (a lookup that
        was given up still holds its place until it returns: the bound is real)."""
        while self._waiting and self._running < self.in_flight:
            ip = self._waiting.popleft()
            self._asked[ip] = self.clock()
            self._running += 1
            threading.Thread(target=self._look_up_one, args=(ip,), name="conntui-dns", daemon=True).start()

    def _look_up_one(self, ip: str) -> None:
        try:
            name = self.resolve(ip)
        except Exception:  # a resolver must not end the thread without giving its place back
            name = None
        with self._lock:
            self._running -= 1
            if self._asked.pop(ip, None) is not None:  # not given up meanwhile
                self._remember(ip, name)
            self._start_lookups()

    def _remember(self, ip: str, name: str | None) -> None:
        self._queued.discard(ip)
        if len(self._hosts) >= HOST_CACHE:
            del self._hosts[next(iter(self._hosts))]
        self._hosts[ip] = name
        self.version += 1

    # -- drawing -----------------------------------------------------------------------------

    def decorate(self, texts: dict[str, str], sock: Socket) -> None:
        """Replace the table's address and port texts (`COLUMNS` names) with the names shown. A port
        column gets `  443 https` (numbers padded to line up); a joined `ip:port` one gets
        `host:443` + SERVICE_MARK + `https`, so that a narrow column cuts the name, not the port."""
        if not (self.services_shown or self.hosts_shown):
            return
        for end, ip, port in (("local", sock.local_ip, sock.local_port), ("remote", sock.remote_ip, sock.remote_port)):
            host = self.host(ip) if end == "remote" else None
            service = self.service(port, sock.proto)
            service_text = printable(service) if service else ""
            if host and f"{end}_ip" in texts:
                texts[f"{end}_ip"] = printable(host)
            if self.services_shown and f"{end}_port" in texts:
                number = f"{texts[f'{end}_port']:>5}"
                texts[f"{end}_port"] = f"{number} {service_text}" if service_text else number
            if (host or service_text) and end in texts:
                address, _, number = texts[end].rpartition(":")
                joined = f"{printable(host) if host else address}:{number}"
                texts[end] = f"{joined}{SERVICE_MARK}{service_text}" if service_text else joined


NO_NAMES = Names()  # nothing shown: numbers only
