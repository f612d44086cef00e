"""The filter language: what each term matches, what it rejects, and that nothing else escapes."""

from __future__ import annotations

import contextlib
import os
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conntui.filters import FILTER_KEYS, Filter, FilterError, FilterTyping, parse_filter
from conntui.model import Socket
from conntui.poller import Poller
from conntui.sources import open_source

WEB = Socket(1, "tcp", 4, "10.0.0.5", 43512, "93.184.216.34", 443, "ESTABLISHED", pids=(120,), process="firefox")
LISTENER = Socket(2, "tcp", 6, "::", 8080, None, None, "LISTEN", pids=(77, 78), process="nginx")
WAITING = Socket(3, "tcp", 4, "127.0.0.1", 51000, "127.0.0.1", 8080, "TIME_WAIT")
DNS = Socket(4, "udp", 4, "127.0.0.53", 53, None, None, "NONE", pids=(9,), process="systemd-resolve")
MAPPED = Socket(5, "tcp", 6, "::ffff:127.0.0.1", 8080, "::ffff:127.0.0.1", 51001, "ESTABLISHED")
ALL = (WEB, LISTENER, WAITING, DNS, MAPPED)


def matching(text: str, mine=()) -> set[int]:
    parsed = parse_filter(text)
    return {sock.key for sock in ALL if parsed.matches(sock, mine)}


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("", {1, 2, 3, 4, 5}),
        ("port:8080", {2, 3, 5}),
        ("8080", {2, 3, 5}),
        ("lport:8080", {2, 5}),
        ("sport:8080", {2, 5}),
        ("rport:8080", {3}),
        ("dport:https", {1}),
        ("port:https,53", {1, 4}),
        ("port:8000-8100", {2, 3, 5}),
        ("port:50000-52000", {3, 5}),
        ("state:listen", {2}),
        ("state:time-wait,ESTABLISHED", {1, 3, 5}),
        ("state:Time_Wait", {3}),
        ("pid:78", {2}),
        ("pid:9,120", {1, 4}),
        ("proc:NGI", {2}),
        ("ip:127.0.0.0/8", {3, 4, 5}),
        ("rip:93.184.216.34", {1}),
        ("lip:10.0.0.0/24", {1}),
        ("proto:udp", {4}),
        ("family:6", {2, 5}),
        ("fox", {1}),
        ("wait", {3}),
        ("127.0.0", {3, 4, 5}),
        ("!proto:tcp", {4}),
        ("-state:listen port:8080", {3, 5}),
        ("proto:tcp family:4 port:443", {1}),
        ("::", {2}),
        ("ip:127.0.0.1", {3, 5}),
        ("ip:::/0", {2, 5}),  # a v4-mapped address is IPv6 as shown, and IPv4 in its meaning
        ("ip:::ffff:127.0.0.1", {5}),
        ("lip:::ffff:0:0/96", {5}),
        ("ip:[::]", {2}),  # bracketed, as the table shows IPv6
    ],
)
def test_terms_match(text: str, keys: set[int]) -> None:
    assert matching(text) == keys


def test_mine_matches_recorded_tuples() -> None:
    assert matching("mine", mine={WAITING.four_tuple}) == {3}
    assert matching("!mine", mine={WAITING.four_tuple}) == {1, 2, 4, 5}


@pytest.mark.parametrize(
    ("text", "term", "reason"),
    [
        ("port:70000", "port:70000", "out of range"),
        ("port:99999999999999999999", "port:99999999999999999999", "out of range"),
        ("state:LISTEN foo:1", "foo:1", "unknown key"),
        ("state:open", "state:open", "unknown state"),
        ("ip:300.1.1.1", "ip:300.1.1.1", "not an IP address"),
        ("port:", "port:", "needs a value"),
        ("port:90-80", "port:90-80", "backwards"),
        ("port:nosuchservice", "port:nosuchservice", "unknown port or service"),
        ("pid:abc", "pid:abc", "whole numbers"),
        ("proto:icmp", "proto:icmp", "tcp or udp"),
        ("family:5", "family:5", "4 or 6"),
        ("!port:-1", "!port:-1", "unknown port"),
        ("port:80 -", "-", "negates nothing"),
        ("!", "!", "negates nothing"),
    ],
)
def test_bad_terms_name_themselves(text: str, term: str, reason: str) -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter(text)
    assert caught.value.term == term
    assert reason in str(caught.value) and term in str(caught.value)


# The filter fuzz: CONNTUI_FUZZ_EXAMPLES=10000 for the README's run; a few hundred in the suite.
FUZZ_EXAMPLES = int(os.environ.get("CONNTUI_FUZZ_EXAMPLES", "300"))
HUGE_NUMBERS = st.integers(4290, 4400).map(lambda digits: "9" * digits)  # around int()'s 4,300-digit limit
NUMBERS = st.one_of(
    st.integers(-70_000, 70_000).map(str),
    st.text("0123456789", min_size=1, max_size=25),
    HUGE_NUMBERS,
    st.sampled_from(["٣", "²", "1_000", "0x50", "1e3", "-0", "+80", " 80"]),
)
WORDS = st.one_of(
    st.sampled_from(["listen", "time-wait", "TIME_WAIT", "https", "tcp", "udp", "4", "6", "::", "::1", "mine",
                     "127.0.0.0/8", "::ffff:127.0.0.1", "fe80::1%lo", "1.2.3.4/99", "nginx", "ß", "İ"]),
    st.text(max_size=10),
    st.text(st.characters(exclude_categories=()), max_size=6),  # every code point: controls, surrogates, …
)  # fmt: skip
PUNCTUATION = st.text(":,-!/.[]%\\ \x00\x1b\x7f\x85\x9b\t\n\u2028", max_size=4)
VALUES = st.lists(st.one_of(NUMBERS, WORDS, PUNCTUATION), max_size=4).map("".join)
KEYS = st.sampled_from([*FILTER_KEYS, "PORT", "Lport", "mine", "foo", ""]).map(lambda key: key + ":")
TERMS = st.tuples(st.sampled_from(["", "!", "-", "!-", "--"]), st.one_of(st.just(""), KEYS), VALUES).map("".join)
FILTER_TEXTS = st.one_of(st.lists(TERMS, max_size=5).map(" ".join), st.text(max_size=40))


@pytest.fixture(scope="module")
def real_rows() -> tuple[Socket, ...]:
    """The machine's sockets as a poll sees them, with loopback ones of every kind open, and the rows above."""
    opened = [socket.create_server(("127.0.0.1", 0)), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)]
    opened[1].bind(("127.0.0.1", 0))
    opened.append(socket.create_connection(opened[0].getsockname()))
    if socket.has_ipv6:
        with contextlib.suppress(OSError):
            opened.append(socket.create_server(("::1", 0), family=socket.AF_INET6))
    poller = Poller(open_source(), "inet")
    try:
        snapshot, _ = poller.poll()
    finally:
        poller.close()
        for sock in opened:
            sock.close()
    return (*snapshot.sockets, *ALL)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=FILTER_TEXTS)
def test_any_filter_text_is_a_filter_or_a_filter_error_and_the_filter_applies(text: str, real_rows) -> None:
    try:
        parsed = parse_filter(text)
    except FilterError as error:
        assert error.term in text.split()  # it names one of the terms
        assert str(error).isprintable()  # and says so without a control character
        return
    assert isinstance(parsed, Filter)
    mine = {real_rows[0].four_tuple, WAITING.four_tuple}
    for sock in real_rows:
        assert parsed.matches(sock, mine) in (True, False)


def test_the_readme_documents_every_filter_term() -> None:
    from pathlib import Path

    from conntui.filters import BARE_TERMS, FILTER_TERMS

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    table = readme[readme.index("## Filter syntax") :]
    for filter_term in FILTER_TERMS:
        for key in filter_term.keys:
            assert f"`{key}:" in table, key
    for typed, _meaning in BARE_TERMS[2:]:  # mine, negation (N and WORD are shown by example)
        assert f"`{typed.split()[0]}`" in table, typed


def test_typing_keeps_the_filter_from_before_the_wrong_term_was_begun() -> None:
    def typed_one_key_at_a_time(typing: FilterTyping, text: str) -> FilterError | None:
        error = None
        for end in range(1, len(text) + 1):
            error = typing.typed(text[:end])
        return error

    typing = FilterTyping()
    error = typed_one_key_at_a_time(typing, "port:80 foo:1")  # passes through `port:80 foo`, a bare word
    assert error is not None and error.term == "foo:1" and typing.shown.text == "port:80"
    assert typing.typed("port:80 foo:12") and typing.shown.text == "port:80"  # still, however long it gets
    assert typing.typed("bogus:1") and typing.shown.text == "port:80"  # a wrong text pasted over: what was shown

    typing = FilterTyping("state:listen")
    assert typed_one_key_at_a_time(typing, "port:99999") and typing.shown.text == "state:listen"  # not `port:9999`
    assert typing.typed("port:80 state:listen") is None and typing.shown.text == "port:80 state:listen"
    assert typing.typed("port:80 stat:listen") and typing.shown.text == "port:80 state:listen"  # an edit within
    assert typing.typed("port:80") is None and typing.shown.text == "port:80"


def test_typing_a_long_wrong_term_still_keeps_the_filter_from_before_it() -> None:
    typing = FilterTyping()
    for text in ("port:80", "port:80 ", *(f"port:80 {'a' * n}" for n in range(1, 200)), f"port:80 {'a' * 199}:"):
        error = typing.typed(text)
    assert error is not None and typing.shown.text == "port:80"
    assert len(error.shown_term) < 40  # the status line's first row still has room for what is shown


@pytest.mark.parametrize(
    ("text", "reads"),
    [("port:80 state:listen", False), ("proc:nginx", True), ("!pid:1", True), ("nginx", True), ("443", False),
     ("self", True), ("mine ssh", False), ("ip:::1 family:6", False), ("::1", False), ("-Curl port:80", True)],
)  # fmt: skip
def test_a_filter_says_whether_it_reads_owners(text: str, reads: bool) -> None:
    """`list` counts hidden owners among the rows shown only for a filter that does not read owners
    (one that does may have missed a socket whose owner is hidden)."""
    assert parse_filter(text).reads_owners is reads
