"""The chapter's experiments against the real built-in server on loopback: the simulated distance,
the four ways to make N requests, Nagle and delayed ACK, what TCP did per connection.

Directions and counts only, never exact timings: a lower bound that the server's own waits make
certain, or one way compared with another by a wide margin.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
from collections.abc import Iterator

import pytest

from conntui.http.client import probe
from conntui.http.comparison_text import format_comparison
from conntui.http.experiments import compare_modes, compare_nagle
from conntui.http.records import SIMULATED_RTT_HEADER
from conntui.http.server import ServerThread
from conntui.http.timeline import format_text, tcp_line
from conntui.sources import netlink
from conntui.sources.tcp_info import FIELDS, read_tcp_info
from tests.conftest import LINUX, find, linux_only
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
        (["probe", "http://127.0.0.1:9/", "--compare", "nagle", "--nodelay"], "leave out --nodelay"),
        (["probe", "http://127.0.0.1:9/", "--compare", "--nodelay"], "leave out --nodelay"),
    ],
)
def test_bad_arguments_exit_2_in_one_line(args: list[str], message: str) -> None:
    result = conntui(*args)
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr


# -- 1. the four ways to make N requests -----------------------------------------------------


def test_compare_counts_connections_and_time_wait_and_orders_the_modes(distant_server) -> None:
    comparison = asyncio.run(compare_modes(distant_server.url, 3))
    assert comparison.ok, comparison.first_error
    runs = {run.label: run for run in comparison.runs}
    assert list(runs) == ["single", "parallel", "keepalive", "pipeline"]
    assert [run.connections for run in comparison.runs] == [3, 3, 1, 1]
    if LINUX:  # the kernel's table: the client closes first, so each connection left one TIME_WAIT here
        assert [run.time_wait_left for run in comparison.runs] == [3, 3, 1, 1]
    assert all(run.bytes == runs["single"].bytes > 0 for run in comparison.runs)
    # At RTT 40 ms: serial ≈ 2N RTT (240 ms), keep-alive ≈ (N+1) RTT (160), parallel and pipeline ≈ 2 RTT (80).
    total = {label: run.total_ms for label, run in runs.items()}
    assert total["single"] > total["keepalive"] > max(total["parallel"], total["pipeline"])
    assert comparison.simulated_rtt_ms == RTT


def test_a_slow_first_response_blocks_the_pipeline_and_not_the_parallel_connections(server) -> None:
    urls = [server.url + "delay?ms=300", server.url, server.url, server.url]
    comparison = asyncio.run(compare_modes(urls, 4))
    assert comparison.ok, comparison.first_error
    runs = {run.label: run for run in comparison.runs}
    pipelined = runs["pipeline"].request_ttfbs[1:]
    parallel = runs["parallel"].request_ttfbs[1:]
    assert all(ttfb is not None and ttfb >= 290 for ttfb in pipelined)  # queued behind the slow one
    assert max(parallel) < min(pipelined)  # each on its own connection: not held up
    assert runs["pipeline"].ttfb_ms_median > runs["parallel"].ttfb_ms_median


def test_probe_compare_json_has_the_documented_shape(server) -> None:
    result = conntui("probe", server.url, "--compare", "-n", "2", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert list(data) == ["url", "count", "modes"] and data["count"] == 2 and data["url"] == server.url
    assert [mode["mode"] for mode in data["modes"]] == ["single", "parallel", "keepalive", "pipeline"]
    keys = ["mode", "ok", "total_ms", "connections", "connect_ms_sum", "ttfb_ms_median", "time_wait_left", "error"]
    assert all(list(mode) == keys and mode["ok"] and mode["error"] is None for mode in data["modes"])
    assert [mode["connections"] for mode in data["modes"]] == [2, 2, 1, 1]


def test_probe_compare_prints_aligned_bars_and_takes_the_urls_before_or_after(server) -> None:
    result = conntui("probe", "--compare", server.url, server.url + "delay?ms=1", "-n", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"compare ×2  {server.url} (+1 more URL, in turn)  ok")
    rows = [line for line in lines if line.split()[0] in ("single", "parallel", "keepalive", "pipeline")]
    assert len(rows) == 4 and all("█" in row for row in rows)
    assert len({row.index("█") for row in rows}) == 1  # the bars start in one column


MODE_NAMES = ("single", "parallel", "keepalive", "pipeline")


@pytest.mark.parametrize("experiment", ["modes", "nagle"])
def test_probe_compare_fits_the_terminals_width(server, experiment: str) -> None:
    """COLUMNS=80 (as in an 80-column terminal): every line fits, the bars shortened and the least
    needed columns left out; a mode's row keeps its total, connections, connect Σ, TTFB, TIME_WAIT."""
    result = subprocess.run(
        [sys.executable, "-m", "conntui", "probe", server.url, "--compare", experiment, "-n", "3"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    assert any("█" in line for line in lines)
    if experiment == "modes":
        assert all(title in lines[1] for title in ("total", "conns", "connect Σ", "median ttfb", "TIME_WAIT"))
        rows = [line.split() for line in lines if line.split()[0] in MODE_NAMES]
        assert len(rows) == 4 and all(len(row) >= 10 and "█" in row[3] for row in rows)  # mode, ms, bar, conns, …


def test_a_comparison_fits_80_and_uses_200_whole(server) -> None:
    comparisons = [asyncio.run(compare_modes(server.url, 3)), asyncio.run(compare_nagle(server.url, 3))]
    for comparison in comparisons:
        assert comparison.ok, comparison.first_error
        for width in (40, 60, 80, 200):
            text = format_comparison(comparison, width)
            assert all(len(line) <= width for line in text.splitlines()), (width, text)
    wide = format_comparison(comparisons[0], 200).splitlines()
    assert wide[1].split()[-1] == "bytes" and any("█" * 30 in line for line in wide)  # the slowest mode's bar
    assert "Nagle on (TCP_NODELAY off)" in format_comparison(comparisons[1], 200)


def test_probe_compare_exits_1_when_a_mode_fails() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/"
    result = conntui("probe", url, "--compare", "-n", "2", "--json", "--timeout", "2")
    assert result.returncode == 1 and "connection refused" in result.stderr
    assert [mode["ok"] for mode in json.loads(result.stdout)["modes"]] == [False] * 4


# -- 3. Nagle and delayed ACK ----------------------------------------------------------------


def test_with_nagle_on_split_requests_after_the_first_wait_for_the_delayed_ack(server) -> None:
    comparison = asyncio.run(compare_nagle(server.url, 4))
    assert comparison.ok, comparison.first_error
    nagle, nodelay = (run.request_ms for run in comparison.runs)
    assert [run.label for run in comparison.runs] == ["nagle", "nodelay"]
    # Linux delays an ACK 40 ms at least; without Nagle nothing waits for it.
    assert statistics.median(nagle[1:]) > statistics.median(nodelay[1:]) + 20
    steps = comparison.runs[0].result.connections[0].steps
    assert any(step.name == "send" and step.call == "send ×2" for step in steps)


def test_probe_nagle_json_and_split_writes_alone(server) -> None:
    result = conntui("probe", server.url, "--compare", "nagle", "-n", "2", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [(run["name"], run["nodelay"], len(run["request_ms"])) for run in data["runs"]] == [
        ("nagle", False, 2),
        ("nodelay", True, 2),
    ]
    single = conntui("probe", server.url, "--mode", "keepalive", "--split-writes", "--nodelay", "-n", "2")
    assert single.returncode == 0 and "send ×2" in single.stdout


# -- 4. what TCP did, per connection ---------------------------------------------------------


@linux_only
def test_each_connection_records_its_sockets_tcp_info(server) -> None:
    result = run(server.url + "bytes?n=1000000", "keepalive", 1)
    (record,) = result.connections
    assert record.tcp is not None and record.tcp_start is not None
    segments = record.tcp.data_segs_in
    assert segments is not None and record.tcp.rcv_mss and segments >= 1_000_000 // record.tcp.rcv_mss
    assert record.tcp.segs_in is not None and record.tcp.segs_in >= segments and record.tcp.total_retrans == 0
    tcp = result.to_json()["connections"][0]["tcp"]
    assert list(tcp) == ["segs_out", "segs_in", "mss", "cwnd", "rtt_ms", "retrans", "delivery_rate"]
    assert tcp["mss"] > 0 and tcp["cwnd"] >= 1 and tcp["rtt_ms"] > 0
    line = tcp_line(record)
    assert line is not None and line.startswith(f"response 1.0 MB in {segments:,} segments (in MSS ")
    assert f"cwnd {record.tcp_start.snd_cwnd} → {record.tcp.snd_cwnd}" in line


def test_each_step_names_its_socket_call(server) -> None:
    result = run(server.url.replace("127.0.0.1", "localhost"), "single", 1)
    calls = [(step.name, step.call) for step in [*result.steps, *result.connections[0].steps]]
    assert calls == [
        ("parse", ""),
        ("dns", "getaddrinfo"),
        ("connect", "socket + connect"),
        ("send", "send"),
        ("ttfb", "recv"),
        ("transfer", "recv"),
        ("close", "close"),
    ]
    assert "socket + connect" in format_text(result)


@linux_only
def test_tcp_info_offsets_agree_with_the_netlink_parser_and_the_kernel(sockets) -> None:
    rtt_offset, cwnd_offset, retrans_offset = (FIELDS[name][0] for name in ("rtt_us", "snd_cwnd", "total_retrans"))
    assert rtt_offset == netlink._TCP_INFO_OFFSET
    assert cwnd_offset == rtt_offset + struct.calcsize("=II4x")
    assert retrans_offset == rtt_offset + struct.calcsize("=II4xI16x")
    listener = sockets.listener()
    client, _server = sockets.connection(listener)
    client.sendall(b"x" * 10_000)
    info = read_tcp_info(client)
    assert info is not None and info.data_segs_out is not None and info.data_segs_out >= 1
    local, remote = client.getsockname(), client.getpeername()
    source = netlink.NetlinkSource()
    try:
        (row,) = find(source.list_sockets([("tcp", 4)]), local, remote)
    finally:
        source.close()
    assert (row.cwnd, row.retrans) == (info.snd_cwnd, info.total_retrans)


# -- the options that do not go together -----------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["probe", "http://127.0.0.1:9/", "http://127.0.0.1:10/"], "share one origin"),
        (["probe", "http://127.0.0.1:9/", "https://127.0.0.1:9/"], "share one origin"),
        (["probe", "http://127.0.0.1:9/", "--compare", "--mode", "single"], "leave out --mode"),
        (["probe", "http://127.0.0.1:9/", "--compare", "--hold", "1"], "leave out --hold"),
        (["probe", "http://127.0.0.1:9/", "--split-writes"], "--mode keepalive"),
        (["probe", "http://127.0.0.1:9/", "--compare", "--split-writes"], "--compare nagle"),
        (["probe", "http://127.0.0.1:9/", "--nodelay"], "goes with --split-writes"),
        (["probe", "http://127.0.0.1:9/", "--compare", "speed"], "invalid choice"),
    ],
)
def test_probe_options_that_do_not_go_together_exit_2(args: list[str], message: str) -> None:
    result = conntui(*args)
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr


@pytest.mark.parametrize("how", [["--compare", "-n", "2", "--json"], ["--json"], []])
def test_probe_into_a_closed_pipe_is_quiet(server, how: list[str]) -> None:
    """`conntui probe … | head -c 100`: the reader went away; no traceback, and the probe's own exit status."""
    child = subprocess.Popen(
        [sys.executable, "-m", "conntui", "probe", server.url, *how], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # before anything is written: every write meets a closed pipe
    assert child.wait(timeout=60) == 0
    assert child.stderr.read() == b""


def test_a_comparison_of_error_responses_is_not_a_success(server) -> None:
    """`/nope` is answered 404 every time: the four modes ran, but there is nothing to compare."""
    result = conntui("probe", server.url + "nope", "--compare", "-n", "2", "--json")
    assert result.returncode == 1
    modes = json.loads(result.stdout)["modes"]
    assert [mode["ok"] for mode in modes] == [False] * 4
    assert all("HTTP 404" in mode["error"] for mode in modes)
