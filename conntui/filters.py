"""The filter language shared by the dashboard and `conntui list`: parse text -> predicate.

The language is `FILTER_TERMS` below: each key with its parser and help line; the parser,
`FILTER_HELP`, `--help` and the dashboard's `?` screen are made from it. A term that cannot be
understood raises `FilterError`, which names it.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import lru_cache

from conntui.model import STATE_NAMES, FourTuple, Socket
from conntui.names import NO_NAMES, Names

Test = Callable[[Socket, Collection[FourTuple], Names], bool]  # (socket, my tuples, names shown)
MAX_PID = 2**32 - 1  # a pid is at most a 32-bit number on every system

Parser = Callable[[str, str], Test]  # (the whole term, its value) -> the test; FilterError if bad

FILTER_INTRO = "Whitespace-separated terms, all of which must match:"


@dataclass(frozen=True)
class FilterTerm:
    """One `key:VALUE` term of the language: its keys (aliases), its value's syntax, help and parser."""

    keys: tuple[str, ...]
    value: str
    help: str
    parse: Parser

    @property
    def syntax(self) -> str:
        return " ".join(f"{key}:{self.value}" for key in self.keys)


class FilterError(ValueError):
    """A filter term that cannot be understood; `term` is the offending text (shortened in the message)."""

    def __init__(self, term: str, reason: str) -> None:
        super().__init__(f"bad filter term {_shortened(term)!r}: {reason}")
        self.term = term
        self.shown_term = _shortened(term, 24)  # short, for a status line: a pasted number may be 5,000 digits
        self.reason = reason


def _shortened(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else f"{text[: limit - 10]}… ({len(text)} characters)"


@dataclass(frozen=True)
class Filter:
    text: str
    tests: tuple[Test, ...]
    # Some term looks at owners (pid:, proc:, self, a word): a socket whose owner is hidden may be missed.
    reads_owners: bool = False

    def matches(self, sock: Socket, mine: Collection[FourTuple] = (), names: Names = NO_NAMES) -> bool:
        return all(test(sock, mine, names) for test in self.tests)

    def __bool__(self) -> bool:
        return bool(self.tests)


MATCH_ALL = Filter("", ())


def parse_filter(text: str) -> Filter:
    terms = text.split()
    return Filter(text.strip(), tuple(map(_parse_term, terms)), any(map(_reads_owners, terms)))


def _reads_owners(term: str) -> bool:
    """Whether a term (one that parses) tests a socket's owner: `pid:`, `proc:`, `self`, or a word
    (it matches process names too)."""
    body = term[1:] if term[0] in "!-" else term
    key, colon, _value = body.partition(":")
    if colon:
        return key.lower() in ("pid", "proc")
    return not _is_number(body) and body.lower() not in ("mine", "ssh")


class FilterTyping:
    """The filter to show while one is typed, keystroke by keystroke (`typed`): a text that parses
    is shown; one that does not keeps the filter shown, unless that was only passed through while
    typing the wrong term itself: on the way to the wrong `port:80 foo:1`, `port:80 foo` (a bare
    word that matches nothing) parsed and was shown; `port:80` is what stays shown."""

    KEPT = 1024  # filters shown, remembered (their texts as typed): a keystroke each

    def __init__(self, text: str = "") -> None:
        self.shown = parse_filter(text)
        self._shown: deque[str] = deque([text], maxlen=self.KEPT)

    def typed(self, text: str) -> FilterError | None:
        """Take the box's new text: `shown` is then the filter to show; the text's error, if any."""
        try:
            self.shown = parse_filter(text)
        except FilterError as error:
            text = self._kept(text, error.term)
            self.shown = parse_filter(text)
            if text != self._shown[-1]:
                self._shown.append(text)
            return error
        self._shown.append(text)
        return None

    def _kept(self, text: str, wrong: str) -> str:
        term = next((match for match in re.finditer(r"\S+", text) if match.group() == wrong), None)
        if term is None:
            return self._shown[-1]
        before, after = text[: term.start()], text[term.end() :]
        for shown in reversed(self._shown):
            half_typed = len(shown) > len(before) + len(after) and shown.startswith(before) and shown.endswith(after)
            if not (half_typed and wrong.startswith(shown[len(before) : len(shown) - len(after)])):
                return shown
        return ""


def _parse_term(term: str) -> Test:
    if term in ("!", "-"):
        raise FilterError(term, "a lone ! or - negates nothing (write !term)")
    negated = term[0] in "!-"
    body = term[1:] if negated else term
    test = _parse_positive(term, body)
    if negated:
        return lambda sock, mine, names: not test(sock, mine, names)
    return test


def _parse_positive(term: str, body: str) -> Test:
    key, colon, value = body.partition(":")
    filter_term = TERMS_BY_KEY.get(key.lower()) if colon else None
    if filter_term is None:
        if colon and _is_address(body):
            return _ip_test(term, body, "either")
        if colon:
            raise FilterError(term, f"unknown key {key!r} (keys: {', '.join(FILTER_KEYS)})")
        return _bare_test(term, body)
    if not value:
        raise FilterError(term, f"{key.lower()}: needs a value")
    return filter_term.parse(term, value)


def _port_test(end: str) -> Parser:
    def parse(term: str, value: str) -> Test:
        ports = _parse_ports(term, value)
        if end == "local":
            return lambda sock, mine, names: sock.local_port in ports
        if end == "remote":
            return lambda sock, mine, names: sock.remote_port in ports
        return lambda sock, mine, names: sock.local_port in ports or sock.remote_port in ports

    return parse


def _state_test(term: str, value: str) -> Test:
    states = {_parse_state(term, name) for name in value.split(",")}
    return lambda sock, mine, names: sock.state in states


def _pid_test(term: str, value: str) -> Test:
    pids = {_whole_number(term, pid, "pid", MAX_PID) for pid in value.split(",")}
    return lambda sock, mine, names: not pids.isdisjoint(sock.pids)


def _process_test(term: str, value: str) -> Test:
    needle = value.lower()
    return lambda sock, mine, names: sock.process is not None and needle in sock.process.lower()


def _host_test(term: str, value: str) -> Test:
    needle = value.lower()

    def matches_host(sock: Socket, mine: Collection[FourTuple], names: Names) -> bool:
        name = names.known_host(sock.remote_ip)
        return name is not None and needle in name.lower()

    return matches_host


def _address_test(end: str) -> Parser:
    return lambda term, value: _ip_test(term, value, end)


def _proto_test(term: str, value: str) -> Test:
    proto = value.lower()
    if proto not in ("tcp", "udp"):
        raise FilterError(term, "proto: is tcp or udp")
    return lambda sock, mine, names: sock.proto == proto


def _family_test(term: str, value: str) -> Test:
    if value not in ("4", "6"):
        raise FilterError(term, "family: is 4 or 6")
    family = int(value)
    return lambda sock, mine, names: sock.family == family


FILTER_TERMS = (
    FilterTerm(("port",), "SPEC", "a port at either end: 80,https,8000-8100",
               _port_test("either")),
    FilterTerm(("lport", "sport"), "SPEC", "the local (source) port", _port_test("local")),
    FilterTerm(("rport", "dport"), "SPEC", "the remote (destination) port", _port_test("remote")),
    FilterTerm(("state",), "NAMES", "TCP states: LISTEN,time-wait,… (NONE for UDP)", _state_test),
    FilterTerm(("pid",), "N[,N]", "any owner pid", _pid_test),
    FilterTerm(("proc",), "TEXT", "part of the process name, any case", _process_test),
    FilterTerm(("ip",), "ADDR|CIDR", "either end's address: ip:127.0.0.0/8, ip:::1", _address_test("either")),
    FilterTerm(("lip",), "ADDR|CIDR", "the local address", _address_test("local")),
    FilterTerm(("rip",), "ADDR|CIDR", "the remote address", _address_test("remote")),
    FilterTerm(("host",), "TEXT", "part of the remote host's name (reverse DNS on: d)", _host_test),
    FilterTerm(("proto",), "tcp|udp", "the protocol", _proto_test),
    FilterTerm(("family",), "4|6", "the address family", _family_test),
)  # fmt: skip
TERMS_BY_KEY = {key: filter_term for filter_term in FILTER_TERMS for key in filter_term.keys}
FILTER_KEYS = tuple(TERMS_BY_KEY)
# The forms without a key, for the help: (what is typed, what it matches).
BARE_TERMS = (
    ("N", "a bare number means port:N"),
    ("WORD", "part of a process name, an address or a state"),
    ("mine", "sockets of tests launched from the dashboard"),
    ("self", "sockets of conntui itself: !self hides them"),
    ("ssh", "the SSH connection you are logged in through ($SSH_CONNECTION): !ssh hides it"),
    ("!term -term", "negates the term"),
)


def filter_help_rows() -> list[tuple[str, str]]:
    """The filter language as (syntax, meaning) rows: every keyed term, then the bare forms."""
    rows = [(filter_term.syntax, filter_term.help) for filter_term in FILTER_TERMS]
    return rows + list(BARE_TERMS)


def _help_text() -> str:
    width = max(len(syntax) for syntax, _ in filter_help_rows())
    lines = [f"  {syntax:<{width}}  {meaning}" for syntax, meaning in filter_help_rows()]
    return "\n".join([FILTER_INTRO, *lines])


def _bare_test(term: str, word: str) -> Test:
    if _is_number(word):
        ports = _parse_ports(term, word)
        return lambda sock, mine, names: sock.local_port in ports or sock.remote_port in ports
    if word.lower() == "mine":
        return lambda sock, mine, names: sock.four_tuple in mine
    if word.lower() == "self":
        own_pid = os.getpid()
        return lambda sock, mine, names: own_pid in sock.pids
    if word.lower() == "ssh":
        session = ssh_session()
        return lambda sock, mine, names: session is not None and _same_connection(sock, session)
    needle = word.lower()

    def matches_text(sock: Socket, mine: Collection[FourTuple], names: Names) -> bool:
        return (
            (sock.process is not None and needle in sock.process.lower())
            or needle in sock.local_ip
            or (sock.remote_ip is not None and needle in sock.remote_ip)
            or needle in sock.state.lower()
            or _names_match(needle, sock, names)
        )

    return matches_text


def _names_match(needle: str, sock: Socket, names: Names) -> bool:
    """The names shown for the socket (remote host, services of both ports) contain the text."""
    if not (names.services_shown or names.hosts_shown):
        return False
    shown = (
        names.known_host(sock.remote_ip),
        names.service(sock.local_port, sock.proto),
        names.service(sock.remote_port, sock.proto),
    )
    return any(name is not None and needle in name.lower() for name in shown)


Endpoint = tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]


def ssh_session(environ: dict[str, str] | None = None) -> tuple[Endpoint, Endpoint] | None:
    """The SSH connection this process runs in, as ((client address, port), (server address, port)),
    from `$SSH_CONNECTION` ("client_ip client_port server_ip server_port"); None outside SSH."""
    fields = (os.environ if environ is None else environ).get("SSH_CONNECTION", "").split()
    if len(fields) != 4:
        return None
    client_port, server_port = fields[1], fields[3]
    if not all(port.isascii() and port.isdigit() and len(port) <= 5 for port in (client_port, server_port)):
        return None
    try:
        client_ip, server_ip = _plain_address(fields[0]), _plain_address(fields[2])
    except ValueError:
        return None
    return (client_ip, int(client_port)), (server_ip, int(server_port))


def _plain_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address, a v4-mapped IPv6 one as its IPv4 form (sshd and the kernel may write either)."""
    address = ipaddress.ip_address(text.partition("%")[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _same_connection(sock: Socket, session: tuple[Endpoint, Endpoint]) -> bool:
    """The socket is the server end of the SSH session (sshd's side of the user's connection)."""
    if sock.proto != "tcp" or sock.remote_ip is None or sock.remote_port is None:
        return False
    client, server = session
    try:
        local = (_plain_address(sock.local_ip), sock.local_port)
        remote = (_plain_address(sock.remote_ip), sock.remote_port)
    except ValueError:
        return False
    return local == server and remote == client


def _parse_ports(term: str, spec: str) -> frozenset[int] | range:
    ports: set[int] = set()
    for part in spec.split(","):
        low_text, dash, high_text = part.partition("-")
        if dash and _is_number(low_text) and _is_number(high_text):
            low, high = _whole_number(term, low_text, "port", 65535), _whole_number(term, high_text, "port", 65535)
            if low > high:
                raise FilterError(term, f"port range {part!r} runs backwards")
            if len(spec.split(",")) == 1:
                return range(low, high + 1)
            ports.update(range(low, high + 1))
        elif _is_number(part):
            ports.add(_whole_number(term, part, "port", 65535))
        elif part:
            ports.add(_service_port(term, part))
        else:
            raise FilterError(term, "empty port in the list")
    return frozenset(ports)


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _whole_number(term: str, text: str, what: str, maximum: int) -> int:
    """`text` as a number from 0 to `maximum`; any length of digits is an error, never a crash."""
    digits = text.lstrip("0") or "0"
    if not _is_number(text):
        raise FilterError(term, f"{what}: takes whole numbers, e.g. {what}:1234")
    if len(digits) > len(str(maximum)) or int(digits) > maximum:  # int() refuses over 4,300 digits
        raise FilterError(term, f"{what} {_shortened(digits, 20)} is out of range 0-{maximum}")
    return int(digits)


# Used when the system has no services database (/etc/services).
WELL_KNOWN_PORTS = {
    "ftp": 21,
    "ssh": 22,
    "smtp": 25,
    "dns": 53,
    "domain": 53,
    "http": 80,
    "pop3": 110,
    "imap": 143,
    "https": 443,
    "imaps": 993,
    "mysql": 3306,
    "postgresql": 5432,
    "redis": 6379,
    "http-alt": 8080,
}


def _service_port(term: str, name: str) -> int:
    for proto in ("tcp", "udp"):
        try:
            return socket.getservbyname(name.lower(), proto)
        except (OSError, ValueError):  # ValueError: a NUL, or an unencodable character
            continue
    if name.lower() in WELL_KNOWN_PORTS:
        return WELL_KNOWN_PORTS[name.lower()]
    raise FilterError(term, f"unknown port or service name {name!r}")


def _parse_state(term: str, name: str) -> str:
    state = name.upper().replace("-", "_")
    if state not in STATE_NAMES:
        raise FilterError(term, f"unknown state {name!r} (states: {', '.join(sorted(STATE_NAMES))})")
    return state


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


@lru_cache(maxsize=4096)
def _addresses(text: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...]:
    """The address, and for a v4-mapped IPv6 one (`::ffff:127.0.0.1`) its IPv4 form too: either matches."""
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return (address, address.ipv4_mapped)
    return (address,)


def _ip_test(term: str, value: str, end: str) -> Test:
    if value.startswith("[") and value.endswith("]"):  # as the table writes IPv6: [::1]
        value = value[1:-1]
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise FilterError(term, f"{value!r} is not an IP address or CIDR network") from None

    def within(ip: str | None) -> bool:
        return ip is not None and any(address in network for address in _addresses(ip))

    if end == "local":
        return lambda sock, mine, names: within(sock.local_ip)
    if end == "remote":
        return lambda sock, mine, names: within(sock.remote_ip)
    return lambda sock, mine, names: within(sock.local_ip) or within(sock.remote_ip)


FILTER_HELP = _help_text()
