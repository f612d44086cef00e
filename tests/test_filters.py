"""The filter language: what each term matches, what it rejects, and that nothing else escapes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conntui.filters import FilterError, parse_filter
from conntui.model import Socket

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
    ],
)
def test_bad_terms_name_themselves(text: str, term: str, reason: str) -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter(text)
    assert caught.value.term == term
    assert reason in str(caught.value) and term in str(caught.value)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=40))
def test_any_text_parses_or_raises_filter_error(text: str) -> None:
    try:
        parsed = parse_filter(text)
    except FilterError as error:
        assert error.term in text
        return
    for sock in ALL:
        assert parsed.matches(sock) in (True, False)


TERM_PARTS = st.sampled_from(
    ["port:", "lport:", "rport:", "state:", "pid:", "proc:", "ip:", "proto:", "family:", "!", ""]
)
VALUES = st.sampled_from(["80", "https", "1-2", "x", "listen", "127.0.0.1/8", "::1", "tcp", "4", "", ",", "-", "9" * 7])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(TERM_PARTS, VALUES), max_size=4))
def test_structured_terms_parse_or_raise_filter_error(parts: list[tuple[str, str]]) -> None:
    text = " ".join(prefix + value for prefix, value in parts)
    try:
        parsed = parse_filter(text)
    except FilterError:
        return
    for sock in ALL:
        parsed.matches(sock)
