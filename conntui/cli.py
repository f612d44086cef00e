"""The command line: `conntui` (the dashboard), `learn` (the dashboard on its lessons), `list`, `watch`,
`probe`, `serve`. Arguments only.

`list`, `watch`, `probe` and `serve` never import Textual: they are the fast, scriptable paths.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from itertools import chain
from typing import TYPE_CHECKING

from conntui import __version__
from conntui.collector import collector_paused
from conntui.filters import FILTER_HELP, Filter, FilterError, parse_filter
from conntui.http.records import EXPERIMENTS, MAX_PROBE_COUNT, MAX_RTT_MS, PROBE_MODES
from conntui.model import KINDS, TupleCounts, count_hidden_owners, hidden_owners_note
from conntui.sources import BACKENDS, SocketSource, SourceError, open_source
from conntui.text import printable

if TYPE_CHECKING:  # the dashboard's commands import Textual when they run, never before
    from conntui.poller import OneShotPoll
    from conntui.sources.owners import PendingScan
    from conntui.ui.app import ConntuiApp


class ArgumentParser(argparse.ArgumentParser):
    """Bad arguments are one line on stderr and exit status 2, never a usage dump or traceback.

    The line quotes what was typed: made printable (no escape code reaches the terminal) and
    shortened (a 5,000-digit number is named, not repeated).
    """

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {shortened(message)}\n")


LONG_WORD = re.compile(r"[^\s'\"]{80,}")
DEFAULT_WIDTH = 100  # cells: `probe --compare`'s table when the output is not a terminal and COLUMNS is unset


def shortened(text: str) -> str:
    """`text` made printable, each word of 80 characters or more named by its start and length."""
    return printable(LONG_WORD.sub(lambda word: f"{word.group()[:40]}… ({len(word.group())} characters)", text))


MIN_INTERVAL, MAX_INTERVAL = 0.1, 3600.0  # seconds between the dashboard's polls


def _number(text: str) -> float:
    try:
        if not text.isascii() or "_" in text:  # float() also takes '1_0' and other scripts' digits
            raise ValueError(text)
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _count(text: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= 6) or not 1 <= int(text) <= MAX_PROBE_COUNT:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number from 1 to {MAX_PROBE_COUNT}")
    return int(text)


def _seconds_from(low: float, high: float) -> Callable[[str], float]:
    """An argparse type: a number of seconds in [low, high] (nan and inf refused)."""

    def seconds(text: str) -> float:
        value = _number(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text!r} is outside the allowed range {low:g}–{high:g} s")
        return value

    return seconds


def _rtt(text: str) -> int:
    """Milliseconds of simulated round trip: a whole number from 0 to MAX_RTT_MS."""
    if not (text.isascii() and text.isdigit() and len(text) <= 6) or int(text) > MAX_RTT_MS:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number of milliseconds from 0 to {MAX_RTT_MS:,}")
    return int(text)


def _history_bound(text: str) -> int:
    """The closed connections the dashboard keeps: a whole number from 1 to MAX_BOUND."""
    from conntui.history import MAX_BOUND

    if not (text.isascii() and text.isdigit() and len(text) <= 7) or not 1 <= int(text) <= MAX_BOUND:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number from 1 to {MAX_BOUND:,}")
    return int(text)


def _port(text: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= 6) or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return int(text)


def _port_spec(text: str) -> str:
    """What `port:SPEC` takes: numbers, service names, ranges."""
    try:
        parse_filter(f"port:{text}")
    except FilterError as error:
        raise argparse.ArgumentTypeError(error.reason) from None
    return text


def _add_selection(parser: argparse.ArgumentParser, *, inherited: bool = False) -> None:
    """The selection options; a subcommand's `inherited` ones keep values given before its name."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if inherited else value

    parser.add_argument(
        "--port",
        type=_port_spec,
        action="append",
        default=default(None),
        metavar="SPEC",
        help="only sockets with this port at either end (80, https, 8000-8100, or a comma list)",
    )
    parser.add_argument("--filter", default=default(""), metavar="EXPR", help="filter expression (syntax below)")
    parser.add_argument("--kind", choices=sorted(KINDS), default=default("inet"), help="socket kinds (default: inet)")
    parser.add_argument("--backend", choices=BACKENDS, default=default("auto"), help="socket source (default: auto)")


FILTER_EPILOG = f"Filter syntax (--filter, and / in the dashboard):\n{FILTER_HELP}"


def build_parser() -> ArgumentParser:
    """The parser; each one (the top's and each subcommand's) is `args.parser`, so errors name the command."""
    parser = ArgumentParser(
        prog="conntui",
        description="Live dashboard of the machine's connections.",
        epilog=FILTER_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(parser=parser)
    parser.add_argument("--version", action="version", version=f"conntui {__version__}")
    interval_help = f"seconds between polls, {MIN_INTERVAL:g}–{MAX_INTERVAL:g} (default 1)"
    parser.add_argument("--interval", type=_seconds_from(MIN_INTERVAL, MAX_INTERVAL), default=1.0, help=interval_help)
    history_help = "closed connections the dashboard keeps (key h), newest first (default 10,000)"
    parser.add_argument("--history", type=_history_bound, default=None, metavar="N", help=history_help)
    _add_selection(parser)
    commands = parser.add_subparsers(dest="command", parser_class=ArgumentParser)

    listing = commands.add_parser(
        "list",
        help="print one snapshot and exit",
        description="Print one snapshot of the machine's sockets and exit.",
        epilog=FILTER_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    listing.set_defaults(parser=listing)
    formats = listing.add_mutually_exclusive_group()
    formats.add_argument("--json", action="store_true", help="a JSON array of sockets")
    formats.add_argument("--csv", action="store_true", help="CSV with a header row")
    listing.add_argument(
        "--budget",
        action="store_true",
        help="the four-tuple budget: ephemeral ports used per destination of the outgoing sockets (with --json too)",
    )
    _add_selection(listing, inherited=True)

    watching = commands.add_parser(
        "watch",
        help="print one line per event (opened, closed, state, owners) until interrupted",
        description="Print one line per socket event until interrupted: opened, closed, state, owners. "
        "Closed events come from the kernel as they happen, also for connections shorter than a poll.",
        epilog=FILTER_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    watching.set_defaults(parser=watching)
    watching.add_argument("--json", action="store_true", help="NDJSON: one object per event, flushed per line")
    watching.add_argument(
        "--interval", type=_seconds_from(MIN_INTERVAL, MAX_INTERVAL), default=argparse.SUPPRESS, help=interval_help
    )
    _add_selection(watching, inherited=True)

    learning = commands.add_parser(
        "learn",
        help="the dashboard, opened on its lessons: the chapter's points, each with an experiment to run",
        description="Open the dashboard on its lessons screen (L in the dashboard): the chapter's points on "
        "TCP connections, each with a 'run it' that runs its experiment on the built-in test server and says "
        "the measured outcome.",
        epilog=FILTER_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    learning.set_defaults(parser=learning)
    learning.add_argument(
        "--interval", type=_seconds_from(MIN_INTERVAL, MAX_INTERVAL), default=argparse.SUPPRESS, help=interval_help
    )
    learning.add_argument("--history", type=_history_bound, default=argparse.SUPPRESS, metavar="N", help=history_help)
    _add_selection(learning, inherited=True)

    probing = commands.add_parser("probe", help="open test HTTP connections and time their seven steps")
    probing.set_defaults(parser=probing)
    probing.add_argument(
        "url",
        nargs="+",
        help="http:// or https:// URL; without a scheme, http:// (as curl). Several URLs of one origin "
        "are used in turn by the requests",
    )
    probing.add_argument("--mode", choices=PROBE_MODES, help="connection pattern (default: single)")
    probing.add_argument(
        "-n", "--count", type=_count, default=1, help=f"requests or connections, 1..{MAX_PROBE_COUNT} (default 1)"
    )
    probing.add_argument(
        "--hold", type=_seconds_from(0, 3600), default=0.0, help="keep each connection open S seconds (default 0)"
    )
    probing.add_argument(
        "--timeout", type=_seconds_from(0.01, 3600), default=5.0, help="bound on every step, 0.01–3600 (default 5 s)"
    )
    probing.add_argument("--insecure", action="store_true", help="do not verify TLS certificates")
    probing.add_argument("--json", action="store_true", help="print the record as JSON")
    probing.add_argument(
        "--compare",
        nargs="?",
        const="modes",
        choices=EXPERIMENTS,
        help="an experiment: `modes` (the default) makes the N requests in each mode, one after another, "
        "side by side; `nagle` makes them keep-alive with split writes, TCP_NODELAY off then on",
    )
    probing.add_argument(
        "--split-writes",
        action="store_true",
        help="with --mode keepalive: write each request's line and headers in two writes (Nagle's algorithm "
        "then holds the second until the first is ACKed); turns TCP_NODELAY off unless --nodelay",
    )
    probing.add_argument("--nodelay", action="store_true", help="with --split-writes: keep TCP_NODELAY on")

    serving = commands.add_parser(
        "serve", help="run the loopback HTTP/1.1 test server; it prints one line per request it answers"
    )
    serving.set_defaults(parser=serving)
    serving.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serving.add_argument("--port", type=_port, default=8080, help="port (default 8080; 0 picks a free one)")
    serving.add_argument(
        "--quiet", action="store_true", help="no line per request (the endpoints still print at start)"
    )
    serving.add_argument(
        "--rtt",
        type=_rtt,
        default=0,
        metavar="MS",
        help=f"simulated distance: every response waits MS, the first on a connection 2×MS (0..{MAX_RTT_MS:,})",
    )
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """argparse reads `--filter -state:listen` as a missing value and an unknown option: attach it."""
    attached: list[str] = []
    for argument in argv:
        if attached and attached[-1] == "--filter" and argument.startswith("-") and not argument.startswith("--"):
            attached[-1] = f"--filter={argument}"
        elif attached and attached[-1] == "--compare" and argument not in EXPERIMENTS and _looks_like_url(argument):
            attached[-1] = "--compare=modes"  # `probe --compare URL`: the URL is not the experiment's name
            attached.append(argument)
        else:
            attached.append(argument)
    args, unknown = parser.parse_known_args(attached)
    if unknown:  # said by the command they were given to: `conntui list: error: …`
        getattr(args, "parser", parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def _looks_like_url(argument: str) -> bool:
    return not argument.startswith("-") and any(mark in argument for mark in "/:.")


def selection_filter(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Filter:
    """--filter and --port combined into one filter; a bad term is a usage error."""
    text = args.filter
    if args.port:
        text = f"port:{','.join(args.port)} {text}"
    try:
        return parse_filter(text)
    except FilterError as error:
        parser.error(str(error))
        raise  # unreachable: error() exits


def main(argv: Sequence[str] | None = None, owner_scan: PendingScan | None = None, exit_at_once: bool = False) -> int:
    """The command line. From `conntui.launcher` (the `conntui` command): `owner_scan`, `list`'s
    owner scan, already started; `exit_at_once`: `list` ends the process when it has written."""
    parser = build_parser()
    args = parse_args(parser, sys.argv[1:] if argv is None else argv)
    command_parser = args.parser  # its errors start with the command: `conntui list: error: …`
    if args.command == "probe":
        return run_probe(command_parser, args)
    if args.command == "serve":
        return run_serve(args)
    selection = selection_filter(command_parser, args)
    if args.command in (None, "learn") and not _on_a_terminal():
        message = "the dashboard needs a terminal; for a snapshot into a file or pipe use `conntui list`"
        print(f"conntui: error: {message}", file=sys.stderr)
        return 2
    try:
        source = open_source(args.backend)
    except SourceError as error:
        command_parser.error(str(error))
    if args.command == "list":
        try:
            with collector_paused():  # one pass over rows that form no cycle: the collector would only walk them
                return run_list(args, selection, source, owner_scan or _owner_scan_started(args), exit_at_once)
        except OSError as error:  # out of fds or memory (`ulimit -n 6`): said in one line
            print(f"conntui list: error: {error.strerror or error}", file=sys.stderr)
            return 1
        except MemoryError:  # `ulimit -v` below what the rows need
            print("conntui list: error: out of memory", file=sys.stderr)
            return 1
    if args.command == "watch":
        return run_watch(args, selection, source)
    try:
        app = dashboard_app(args, selection, source)
        app.run()
    except OSError as error:  # out of fds (`ulimit -n 8`): the event loop, an import cannot start
        _quiet_teardown()
        print(f"conntui: error: {error.strerror or error}", file=sys.stderr)
        return 1
    return app.return_code or 0  # 128 + n after signal n


def dashboard_app(args: argparse.Namespace, selection: Filter, source: SocketSource) -> ConntuiApp:
    """The dashboard of `conntui` and of `conntui learn` (which opens it on its lessons)."""
    from conntui.history import DEFAULT_BOUND
    from conntui.poller import Poller
    from conntui.ui.app import ConntuiApp

    poller = Poller(source, args.kind)
    history = DEFAULT_BOUND if args.history is None else args.history
    return ConntuiApp(
        poller,
        interval=args.interval,
        filter_text=selection.text,
        history=history,
        lessons=args.command == "learn",
    )


def _on_a_terminal() -> bool:
    """stdin, stdout and stderr (Textual draws there) are all a terminal: without one the dashboard is blind."""
    return all(stream is not None and stream.isatty() for stream in (sys.stdin, sys.stdout, sys.stderr))


def _owner_scan_started(args: argparse.Namespace) -> PendingScan | None:
    """`list`'s owner scan, started in a forked child before the rest of `list` is imported: the
    scan (mostly `readlink` in the kernel) then runs on the other core while this process imports
    and dumps the sockets. Linux only, where the sockets come without owners."""
    if args.budget or args.backend == "psutil" or not sys.platform.startswith("linux"):
        return None
    from conntui.sources.owners import OwnerScanner, scan_in_child

    return scan_in_child(OwnerScanner(), args.kind if args.backend in ("auto", "netlink") else None)


def run_list(
    args: argparse.Namespace,
    selection: Filter,
    source: SocketSource,
    owner_scan: PendingScan | None,
    exit_at_once: bool = False,
) -> int:
    """`conntui list`; `exit_at_once` (`main`'s): the process ends once the output is written."""
    from conntui import output

    if args.budget:
        return run_budget(args, selection, source)
    poll = _one_shot(source, args.kind, owner_scan)
    if args.json and not selection:  # every row: all but its owner encoded while the owner scan still runs
        rows = output.JsonRows(poll.sockets, TupleCounts.of(poll.sockets))
        found, entries = poll.owner_pids()
        _note_hidden_owners(*poll.hidden_owners())
        return _ended(_write_out(chain(rows.pieces(found, entries), "\n")), exit_at_once)
    snapshot = poll.snapshot()
    shown = [sock for sock in snapshot.sockets if selection.matches(sock)] if selection else list(snapshot.sockets)
    hidden = snapshot.hidden_owners  # of every socket: of those shown when the filter does not read owners
    if selection and snapshot.unreadable_processes and not selection.reads_owners:  # (`proc:nginx` may miss any)
        hidden = count_hidden_owners(shown)
    _note_hidden_owners(hidden, snapshot.unreadable_processes)
    if args.json:
        text: str | Iterable[str] = chain(output.json_pieces(snapshot, shown), "\n")
    else:
        text = output.to_csv(snapshot, shown) if args.csv else output.to_table(snapshot, shown)
    return _ended(_write_out(text), exit_at_once)


def _ended(status: int, exit_at_once: bool) -> int:
    """`status`; with `exit_at_once` the process ends here, its output flushed, its memory left to
    the kernel (as mypy's `--fast-exit`): freed object by object, 100,000 rows take 30 ms more."""
    if exit_at_once:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a stream closed or gone: nothing left to flush
                stream.flush()
        os._exit(status)
    return status


def _note_hidden_owners(hidden: int, unreadable_processes: int) -> None:
    if hidden:
        print(f"conntui list: {hidden_owners_note(hidden, unreadable_processes)}", file=sys.stderr)


def _one_shot(source: SocketSource, kind: str, owner_scan: PendingScan | None = None) -> OneShotPoll:
    """One poll (`Poller.one_shot`): its sockets dumped, their owners still being scanned."""
    from conntui.poller import Poller

    poller = Poller(source, kind, owners=owner_scan.scanner if owner_scan else None)
    try:
        return poller.one_shot(owner_scan)
    finally:
        poller.close()  # the dump is done: the owners need no socket


def _write_out(text: str | Iterable[str], command: str = "list") -> int:
    """Write the text, or its pieces as they come, to stdout: 0, or 1 with one line on stderr when
    it cannot be written (a full disk, no stdout at all). A reader that stopped reading is not an
    error (`conntui list | head`)."""
    failure = "no standard output to write to"  # started with stdout closed
    if sys.stdout is not None:
        try:
            for piece in (text,) if isinstance(text, str) else text:
                sys.stdout.write(piece)
            sys.stdout.flush()
            return 0
        except BrokenPipeError:  # `conntui list | head`, `conntui probe | head`: the reader has what it wanted
            failure = ""
        except OSError as error:
            failure = f"cannot write the output: {error.strerror or error}"
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to write at exit
    if failure and sys.stderr is not None:
        print(f"conntui {command}: error: {failure}", file=sys.stderr)
    return 1 if failure else 0


def run_budget(args: argparse.Namespace, selection: Filter, source: SocketSource) -> int:
    """`list --budget`: one poll's outgoing sockets per destination (new_per_s and exhaustion_s are null)."""
    import json

    from conntui.budget import BudgetUnavailable, budget, format_budget, read_port_space, read_tw_reuse

    if args.csv:
        args.parser.error("--budget prints a table or --json, not --csv")
    try:
        space = read_port_space()
    except BudgetUnavailable as error:
        print(f"conntui list: error: no budget on this system: {error}", file=sys.stderr)
        return 1
    lines = budget([_one_shot(source, args.kind).snapshot()], space, selection.matches)
    if args.json:
        return _write_out(json.dumps([line.to_json() for line in lines]) + "\n")
    return _write_out(format_budget(lines, space, read_tw_reuse()))


class _Stopped(Exception):
    """SIGTERM: stop watching."""


def _quiet_teardown() -> None:
    """After an event loop could not start (out of fds): its half-made parts' clean-up at exit says
    nothing more (an ignored exception, a coroutine never awaited): the error is one line."""
    sys.unraisablehook = lambda unraisable: None
    warnings.simplefilter("ignore")


class _CannotWrite(Exception):
    """Standard output cannot be written (a full disk, closed): the command ends with one line."""


def _print_out(text: str) -> None:
    """Print a line of a long-running command's output at once; raise `_CannotWrite` when it cannot be
    (BrokenPipeError, a reader that stopped reading, is left to the caller)."""
    if sys.stdout is None:  # started with stdout closed
        raise _CannotWrite("no standard output to write to")
    try:
        print(text, flush=True)
    except BrokenPipeError:
        raise
    except OSError as error:
        raise _CannotWrite(f"cannot write the output: {error.strerror or error}") from error


def run_watch(args: argparse.Namespace, selection: Filter, source: SocketSource) -> int:
    import json
    import signal

    from conntui.poller import Poller
    from conntui.socket_events import Event
    from conntui.sources.destroy_events import DestroyEventsUnavailable, DestroyListener
    from conntui.watch import Watcher, event_line, event_record

    def warn(message: str) -> None:
        print(f"conntui watch: {message}", file=sys.stderr)

    def emit(event: Event) -> None:
        _print_out(json.dumps(event_record(event), separators=(",", ":")) if args.json else event_line(event))

    def stop(signal_number: int, frame: object) -> None:
        raise _Stopped

    signal.signal(signal.SIGTERM, stop)
    watcher: Watcher | None = None
    try:
        poller = Poller(source, args.kind)
        listener: DestroyListener | None = None
        if source.name != "netlink":
            warn(f"the {source.name} backend has no destroy events: connections shorter than a poll are not seen")
        else:
            try:
                listener = DestroyListener(poller.kinds)
            except DestroyEventsUnavailable as error:
                warn(f"{error}; connections shorter than a poll are not seen")
        watcher = Watcher(poller, listener, selection, emit, interval=args.interval, warn=warn)
        while True:
            watcher.step()
    except (KeyboardInterrupt, _Stopped):
        pass
    except BrokenPipeError:  # `conntui watch | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at interpreter exit
    except _CannotWrite as error:
        warn(f"error: {error}")
        return 1
    except OSError as error:  # out of fds or memory (`ulimit -n 6`): said in one line
        warn(f"error: {error.strerror or error}")
        return 1
    finally:
        if watcher is not None:
            watcher.close()
    return 0


def _probe_options_error(args: argparse.Namespace) -> str | None:
    """Why these probe options do not go together, or None."""
    if args.compare and args.mode:
        return "--compare chooses the modes itself: leave out --mode"
    if args.compare and args.hold:
        return "--compare does not hold connections: leave out --hold"
    if args.compare == "modes" and args.split_writes:
        return "--split-writes goes with --compare nagle or --mode keepalive"
    if args.compare and args.nodelay:
        return "--compare sets TCP_NODELAY itself (nagle: with and without it): leave out --nodelay"
    if args.split_writes and not args.compare and args.mode != "keepalive":
        return "--split-writes goes with --mode keepalive (or --compare nagle)"
    if args.nodelay and not args.split_writes:
        return "--nodelay goes with --split-writes (TCP_NODELAY is on otherwise)"
    return None


def run_probe(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    import asyncio
    import json

    from conntui.http.client import Probe, parse_urls
    from conntui.http.timeline import format_text
    from conntui.text import escape_undecodable

    try:
        if any(url != escape_undecodable(url) for url in args.url):
            raise ValueError("the URL is not valid UTF-8")
        parse_urls(args.url)
    except ValueError as error:
        parser.error(str(error))
    if (reason := _probe_options_error(args)) is not None:
        parser.error(reason)
    if args.compare:
        return run_comparison(args)
    nodelay = args.nodelay or not args.split_writes  # split writes alone: Nagle's algorithm on
    probe = Probe(
        args.url,
        args.mode or "single",
        args.count,
        hold=args.hold,
        timeout=args.timeout,
        insecure=args.insecure,
        split_writes=args.split_writes,
        nodelay=nodelay,
    )
    try:
        result = asyncio.run(probe.run())
    except KeyboardInterrupt:
        return 130
    written = _write_out(json.dumps(result.to_json()) + "\n" if args.json else format_text(result), "probe")
    if not result.ok:
        reason = printable(result.first_error or "not every request was answered")
        print(f"conntui probe: error: {reason}", file=sys.stderr)
        return 1
    return written


def run_comparison(args: argparse.Namespace) -> int:
    """`probe --compare`: an experiment's runs side by side; exit 1 unless every run succeeded."""
    import asyncio
    import json
    import shutil

    from conntui.http.comparison_text import format_comparison
    from conntui.http.experiments import EXPERIMENT_RUNNERS

    experiment = EXPERIMENT_RUNNERS[args.compare]
    try:
        comparison = asyncio.run(experiment(args.url, args.count, timeout=args.timeout, insecure=args.insecure))
    except KeyboardInterrupt:
        return 130
    width = shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns
    text = json.dumps(comparison.to_json()) + "\n" if args.json else format_comparison(comparison, width)
    written = _write_out(text, "probe")
    if not comparison.ok:
        reason = printable(comparison.first_error or "not every run succeeded")
        print(f"conntui probe: error: {reason}", file=sys.stderr)
        return 1
    return written


def run_serve(args: argparse.Namespace) -> int:
    import asyncio

    from conntui.http.server import (
        ENDPOINTS,
        Served,
        TestServer,
        bind_addresses,
        is_loopback,
        serve_until_stopped,
        simulated_rtt_note,
    )

    host = shortened(args.host)
    try:
        addresses = bind_addresses(args.host, args.port)
    except (OSError, ValueError) as error:  # socket.gaierror; a name IDNA refuses
        reason = getattr(error, "strerror", None) or str(error)
        print(f"conntui serve: error: cannot resolve --host {host}: {printable(reason)}", file=sys.stderr)
        return 1
    if not all(is_loopback(address) for address in addresses):
        print(
            f"conntui serve: warning: {host} is not a loopback address; other machines can reach this test server",
            file=sys.stderr,
        )

    def announce(url: str) -> None:
        width = max(len(path) for path, _ in ENDPOINTS)
        lines = [f"conntui test server on {url} (Ctrl+C to stop)"]
        lines += [f"  {path:<{width}}  {what}" for path, what in ENDPOINTS]
        if args.rtt:
            lines.append(simulated_rtt_note(args.rtt))
        try:
            _print_out("\n".join(lines))
        except BrokenPipeError:  # `conntui serve | head`: serve on, print no more
            print_no_more()

    def print_request(served: Served) -> None:
        try:
            _print_out(served.line)
        except BrokenPipeError:
            print_no_more()

    def print_no_more() -> None:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        server.on_request = None

    server = TestServer(args.host, args.port, on_request=None if args.quiet else print_request, rtt_ms=args.rtt)
    try:
        asyncio.run(serve_until_stopped(server, announce))
    except _CannotWrite as error:  # a full disk: serving on, unseen, would help nobody
        print(f"conntui serve: error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        _quiet_teardown()
        print(f"conntui serve: error: cannot listen on {host}:{args.port}: {error.strerror or error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a second Ctrl+C while stopping
        pass
    return 0
