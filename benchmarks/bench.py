"""conntui's benchmark: every figure next to `ss -tanp` (and psutil) measured in the same run.

    python benchmarks/bench.py                              # N = 1,000, 10,000 and 50,000
    python benchmarks/bench.py --sizes 1000 --repeat 3 --out benchmarks/RESULTS.md

For each N it opens N established loopback connections (2N sockets) in helper processes,
then measures, as medians: `ss -tanp`, `ss -tan`, `psutil.net_connections("tcp")`, one
steady-state poll of each backend (sockets, owners, process details and change detection),
the netlink dump with and without per-connection TCP info, `conntui list --json --kind tcp`
as a whole process, and, in a child process running the real dashboard headless, the time from
its start to the first rows on screen (and to their owners), the UI thread's cost of taking in
a poll with 1% of the connections replaced, the time from the refresh key to the new state on
screen, the time for a filter keystroke to show its result, one screen's rendering, and the
dashboard's RSS. Then the CPU the idle dashboard uses at the default interval at ~70, 1,000
and 20,000 sockets (in a network namespace of its own where it can), beside the CPU of the
bare netlink dump at that interval; and the CPU of `conntui watch --json` while 1,000 connections a second
close (`benchmarks/watch_cost.py`). The machine (cores, kernel, Python) and its load average
before and after are printed with the figures: other load makes every figure slower.
Loopback only; every helper ends when the measurement ends.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import contextlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.holders import hold  # noqa: E402
from benchmarks.watch_cost import measure as measure_watch_cost  # noqa: E402

DUMP = "netlink dump, with TCP info"


def median_ms(work: Callable[[], object], repeat: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        work()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def alternating_medians_ms(
    first: Callable[[], object], second: Callable[[], object], repeat: int
) -> tuple[float, float]:
    """The median times of two pieces of work run in turn (first, second, first, ...), after one
    warm-up each: a ratio of the two is then not a ratio of two moments. (`ss -tanp` at N = 50,000
    took from 1.5 to 4.2 s across runs on one machine in one evening, with the kernel's state
    after the connections opened and closed.)"""
    first(), second()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for work, taken in ((first, times[0]), (second, times[1])):
            started = time.perf_counter()
            work()
            taken.append(time.perf_counter() - started)
    return statistics.median(times[0]) * 1000, statistics.median(times[1]) * 1000


def command(argv: list[str]) -> Callable[[], object]:
    return lambda: subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)


def measure_system(repeat: int, conntui: list[str]) -> dict[str, float]:
    import psutil

    from conntui.poller import Poller
    from conntui.sources import open_source

    ss, listed = alternating_medians_ms(
        command(["ss", "-tanp"]), command([*conntui, "list", "--json", "--kind", "tcp"]), repeat
    )
    figures = {
        "ss -tanp": ss,
        "ss -tan": median_ms(command(["ss", "-tan"]), repeat),
        "psutil.net_connections('tcp')": median_ms(lambda: psutil.net_connections("tcp"), repeat),
    }
    for backend in ("netlink", "proc", "psutil"):
        poller = Poller(open_source(backend), "tcp")
        try:
            figures[f"poll, {backend} backend"] = median_ms(poller.poll, repeat, warmup=2)
        finally:
            poller.close()
    source = open_source("netlink")
    kinds = [("tcp", 4), ("tcp", 6)]
    try:
        source.tcp_info = False  # type: ignore[attr-defined]
        figures["netlink dump, no TCP info"] = median_ms(lambda: source.list_sockets(kinds), repeat)
        source.tcp_info = True  # type: ignore[attr-defined]
        figures[DUMP] = median_ms(lambda: source.list_sockets(kinds), repeat)
    finally:
        source.close()
    figures["conntui list --json --kind tcp"] = listed  # measured in turn with `ss -tanp`
    return figures


def tcp_sockets() -> int:
    """TCP sockets on the machine now: other processes' make every figure of the run slower."""
    from conntui.sources import open_source

    source = open_source("netlink")
    try:
        return len(source.list_sockets([("tcp", 4), ("tcp", 6)]))
    finally:
        source.close()


def installed(directory: Path) -> list[str]:
    """The command that runs conntui as `pip install .` leaves it: the package copied into a virtual
    environment's site-packages and compiled to bytecode. Run from this checkout (`pip install -e`)
    every start would also pay for the editable install's import hook (~8 ms here) and, where
    PYTHONDONTWRITEBYTECODE is set (as on these machines), for compiling every module (~15 ms).
    Its dependencies are those of the environment running the benchmark (a path, not a site dir:
    that environment's own `.pth` hooks are not run)."""
    venv.create(directory, with_pip=False)
    python = directory / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], text=True
        ).strip()
    )
    shutil.copytree(ROOT / "conntui", site / "conntui", ignore=shutil.ignore_patterns("__pycache__"))
    compileall.compile_dir(site / "conntui", quiet=1)
    import psutil
    import textual

    dependencies = {Path(package.__file__ or "").parent.parent for package in (psutil, textual)}
    (site / "conntui-dependencies.pth").write_text("".join(f"{path}\n" for path in sorted(dependencies)))
    return [str(python), "-m", "conntui"]


UI_RUNS = 3


def measure_ui(held, repeat: int) -> dict[str, float]:
    """The real dashboard, started `UI_RUNS` times: the median of each figure (a start is measured once
    a run, so its figure is a median of the runs, like the others)."""
    runs = [ui_run(held, repeat) for _ in range(UI_RUNS)]
    return {name: statistics.median(run[name] for run in runs) for name in runs[0]}


def ui_run(held, repeat: int) -> dict[str, float]:
    """The real dashboard in a child process; it asks us (on stdout) to churn the connections."""
    child = subprocess.Popen(
        [sys.executable, __file__, "--ui-child", str(repeat)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    assert child.stdin is not None and child.stdout is not None
    try:
        for line in child.stdout:
            if line.startswith("churn"):
                held.churn(0.01)
                child.stdin.write("ok\n")
                child.stdin.flush()
            elif line.startswith("result "):
                return json.loads(line[len("result ") :])
        raise RuntimeError("the UI benchmark child ended without a result")
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()


async def ui_child(repeat: int) -> dict[str, float]:
    from textual.widgets import Input

    from conntui.poller import Poller
    from conntui.sources import open_source
    from conntui.ui.app import ConntuiApp
    from conntui.ui.socket_table import SocketTable

    app = ConntuiApp(Poller(open_source(), "tcp"), interval=3600)  # polls when we say so
    engine, started = app.dashboard.engine, []
    start_engine = engine.start

    def start() -> None:  # when the screen is mounted and its engine begins
        started.append(time.perf_counter())
        start_engine()

    engine.start = start  # type: ignore[method-assign]
    applied = asyncio.Event()  # set as the screen takes in a poll: waited on, not polled for (a loop
    ack = engine.ack  # waking every millisecond would take the interpreter from the engine thread)

    def acked() -> None:
        ack()
        applied.set()

    engine.ack = acked  # type: ignore[method-assign]
    async with app.run_test(size=(180, 50)) as pilot:

        async def until(condition: Callable[[], bool], timeout: float = 120) -> None:
            deadline = time.monotonic() + timeout
            while not condition():
                applied.clear()
                try:
                    await asyncio.wait_for(applied.wait(), max(0.0, deadline - time.monotonic()))
                except TimeoutError:
                    raise TimeoutError("the dashboard did not get there in time") from None

        await until(lambda: app.dashboard.poll_count >= 1)
        first_rows = (time.perf_counter() - started[0]) * 1000
        await until(lambda: app.dashboard.poll_count >= 2)  # the same rows with their owners
        owners = (time.perf_counter() - started[0]) * 1000
        applies, refresh_to_screen = [], []
        for _ in range(repeat + 1):  # the first poll after start-up reads every owner: skip it
            os.write(1, b"churn\n")  # fd 1 itself: Textual captures print() while the app runs
            if sys.__stdin__.readline().strip() != "ok":
                raise RuntimeError("no churn")
            polls = app.dashboard.poll_count
            started = time.perf_counter()
            app.dashboard.engine.refresh()
            await until(lambda: app.dashboard.poll_count > polls)  # noqa: B023
            refresh_to_screen.append((time.perf_counter() - started) * 1000)
            applies.append(app.dashboard.apply_ms)
        table = app.query_one(SocketTable)
        height = table.scrollable_content_region.height
        render = median_ms(lambda: [table.render_line(y) for y in range(height)], repeat)
        await pilot.press("slash")
        box = app.query_one("#filter", Input)
        keystrokes = []
        for wanted in ("port:1", "port:12", "port:123", "port:1234", "port:12345")[: max(2, repeat)]:
            started = time.perf_counter()
            box.value = wanted  # as the key arrives: Input.Changed, parse, the engine filters, state shown
            while app.dashboard.state.filter.text != wanted:
                await asyncio.sleep(0.0005)
            keystrokes.append((time.perf_counter() - started) * 1000)
        rows = app.dashboard.state.total
    import psutil

    rss = psutil.Process().memory_info().rss / 2**20  # MiB, as the kernel counts ru_maxrss (KiB) / 1024
    return {  # the keys are UI_FIGURES
        "rows in the table": rows,
        "first rows on screen after start (ms)": first_rows,
        "their owners on screen after start (ms)": owners,
        "UI thread: take in a poll with 1% churn (ms)": statistics.median(applies[1:]),
        "refresh key to new state on screen, incl. the poll (ms)": statistics.median(refresh_to_screen[1:]),
        "filter keystroke to new result (ms)": statistics.median(keystrokes),
        "render one screen of rows (ms)": render,
        "dashboard RSS (MiB)": rss,
        "dashboard peak RSS (MiB)": max(rss, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


async def idle_child(seconds: float) -> dict[str, float]:
    from conntui.ui.app import ConntuiApp

    app = ConntuiApp(interval=IDLE_INTERVAL)  # the defaults a user gets
    async with app.run_test(size=(180, 50)) as pilot:
        await pilot.pause(3.0)  # started, the first rows and their owners drawn
        polls, published = app.dashboard.engine.polls, app.dashboard.poll_count
        before, wall = os.times(), time.perf_counter()
        await pilot.pause(seconds)
        after, elapsed = os.times(), time.perf_counter() - wall
    cpu = (after.user - before.user) + (after.system - before.system)
    return {
        "sockets": app.dashboard.state.total,
        "dashboard": 100 * cpu / elapsed,
        "polls": app.dashboard.engine.polls - polls,
        "published": app.dashboard.poll_count - published,  # polls that changed something (other processes' sockets)
    }


IDLE_INTERVAL = 1.0  # the dashboard's default


def measure_idle(connections: int, seconds: float, repeat: int) -> dict[str, float]:
    """The idle dashboard's CPU (% of a core) with `connections` held, beside the bare dump's at its interval.

    In a network namespace of its own where `unshare` allows it (root, or unprivileged user
    namespaces), with only loopback up: other processes' sockets, which come and go on a busy
    machine, do not change under the dashboard, so "idle" means nothing changed. Else in the
    machine's own namespace (the figures then say so).
    """
    child = [sys.executable, __file__, "--idle-child", str(seconds), "--idle-hold", str(connections),
             "--repeat", str(repeat)]  # fmt: skip
    unshare = ["unshare", "--net"] + ([] if os.geteuid() == 0 else ["--map-root-user"])
    isolated = [*unshare, "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *child]
    for argv, own_namespace in ((isolated, True), (child, False)):
        run = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
        if run.returncode == 0:
            figures = json.loads(run.stdout.strip().splitlines()[-1])
            figures["own namespace"] = own_namespace
            return figures
    raise RuntimeError(f"the idle dashboard failed: {run.stderr[-2000:]}")


def idle_figures(seconds: float, connections: int, repeat: int) -> dict[str, float]:
    """In the idle child: hold the connections, run the dashboard idle, then time the bare dump."""
    from conntui.model import KINDS
    from conntui.sources.netlink import NetlinkSource

    with hold(connections) if connections else contextlib.nullcontext():
        figures = asyncio.run(idle_child(seconds))
        source = NetlinkSource()
        try:
            dump = median_ms(lambda: source.list_sockets(KINDS["inet"]), repeat)  # the dashboard's kinds
        finally:
            source.close()
    figures["dump"] = dump / (IDLE_INTERVAL * 1000) * 100
    return figures


OTHERS = "TCP sockets not the benchmark's (counted before)"
UI_FIGURES = (
    OTHERS,
    "rows in the table",
    "first rows on screen after start (ms)",
    "their owners on screen after start (ms)",
    "UI thread: take in a poll with 1% churn (ms)",
    "refresh key to new state on screen, incl. the poll (ms)",
    "filter keystroke to new result (ms)",
    "render one screen of rows (ms)",
    "dashboard RSS (MiB)",
    "dashboard peak RSS (MiB)",
)


def ratio(value: float, base: float) -> str:
    return f"{value / base:.3f}" if base else "-"


def machine() -> str:
    return (
        f"{os.cpu_count()} cores, Linux {platform.release()}, Python {platform.python_version()}; "
        f"running as {'root' if os.geteuid() == 0 else 'a user'}"
    )


def load_average() -> str:
    return " / ".join(f"{load:.2f}" for load in os.getloadavg())


def report(
    results: dict[int, dict[str, float]],
    idle: dict[int, dict[str, float]],
    watch: tuple[int, float, float],
    loads: tuple[str, str],
    argv: list[str],
) -> str:
    lines = [
        "# conntui benchmark results",
        "",
        f"Command: `python {' '.join(argv)}`  ",
        f"When: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: {machine()}.  ",
        f"Load average (1 / 5 / 15 min) before: {loads[0]}; after: {loads[1]} "
        "(above 0 means other processes were running: every figure is slower for it, the ratios less so).",
        "",
        "N established loopback connections = 2N sockets (+ a listener per helper process), beside the TCP "
        "sockets other processes held (first row: many more than a few hundred slow every figure). Medians in ms; "
        "ratios are against `ss -tanp` measured in the same run (`conntui list` in turn with it, run for run). "
        "`conntui list` runs as `pip install .` "
        "leaves it (a copy of the package in a virtual environment, compiled to bytecode), not from the "
        "checkout's editable install.",
        "",
    ]
    sizes = sorted(results)
    header = "| measurement | " + " | ".join(f"N={n:,} ms | ×ss -tanp" for n in sizes) + " |"
    lines += [header, "|---|" + "---|---|" * len(sizes)]
    names = list(results[sizes[0]])
    for name in names:
        cells = []
        for n in sizes:
            value = results[n].get(name)
            if value is None:
                cells += ["-", "-"]
            elif name in UI_FIGURES:  # no ratio: ss has no UI
                cells += [f"{value:,.0f}" if name in (OTHERS, "rows in the table") else f"{value:,.1f}", ""]
            else:
                cells += [f"{value:,.1f}", ratio(value, results[n]["ss -tanp"])]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Other ratios:", ""]
    for n in sizes:
        figures = results[n]
        info = ratio(figures[DUMP], figures["netlink dump, no TCP info"])
        psutil_ratio = ratio(figures["poll, netlink backend"], figures["psutil.net_connections('tcp')"])
        lines.append(f"- N={n:,}: TCP info costs ×{info} of a dump without it; "
                     f"a full netlink poll is ×{psutil_ratio} of psutil.net_connections('tcp').")  # fmt: skip
        if "first rows on screen after start (ms)" in figures:
            first = ratio(figures["first rows on screen after start (ms)"], figures[DUMP])
            refresh = ratio(figures["refresh key to new state on screen, incl. the poll (ms)"], figures[DUMP])
            lines.append(f"- N={n:,}: against the bare netlink dump with TCP info: first rows on screen ×{first}, "
                         f"refresh key to new state on screen ×{refresh}.")  # fmt: skip
    lines += ["", f"Idle dashboard at the default {IDLE_INTERVAL:g} s interval (% of one core), beside the bare "
              "netlink dump (TCP and UDP, with TCP info) once per interval. In a network namespace of its own "
              "(loopback only) where `unshare` allows, so that other processes' sockets do not change under it; "
              "polls that changed something are drawn:", "",
              "| connections held | namespace | sockets shown | dashboard CPU % | dump CPU % | ×dump | polls "
              "| changed |",
              "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for held, figures in sorted(idle.items()):
        cpu, dump = figures["dashboard"], figures["dump"]
        namespace = "its own" if figures["own namespace"] else "the machine's"
        lines.append(f"| {held:,} | {namespace} | {figures['sockets']:,} | {cpu:.2f} | {dump:.2f} | "
                     f"{ratio(cpu, dump)} | {figures['polls']} | {figures['published']} |")  # fmt: skip
    count, elapsed, percent = watch
    lines += ["", f"Destroy-event listener: `conntui watch --json` used {percent:.1f}% of a core while "
              f"{count / elapsed:,.0f} connections a second opened and closed ({2 * count / elapsed:,.0f} socket "
              "closes a second) for " f"{elapsed:.0f} s.", ""]  # fmt: skip
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000], help="connection counts")
    parser.add_argument("--repeat", type=int, default=5, help="runs per median (default 5)")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="idle CPU window (default 10 s)")
    parser.add_argument(
        "--idle-connections", type=int, nargs="+", default=[35, 500, 10000],
        help="connections held while the dashboard idles (default 35, 500, 10000: ~70, 1,000 and 20,000 sockets)",
    )  # fmt: skip
    parser.add_argument("--watch-seconds", type=float, default=5.0, help="destroy-event listener window (default 5 s)")
    parser.add_argument("--out", type=Path, help="also write the report to this Markdown file")
    parser.add_argument("--ui-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--idle-child", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--idle-hold", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ui_child is not None:
        print("result " + json.dumps(asyncio.run(ui_child(args.ui_child))), flush=True)
        return 0
    if args.idle_child is not None:
        print(json.dumps(idle_figures(args.idle_child, args.idle_hold, args.repeat)), flush=True)
        return 0

    before = load_average()
    print(f"machine: {machine()}; load average before: {before}", file=sys.stderr, flush=True)
    results: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="conntui-bench-") as directory:
        conntui = installed(Path(directory))
        for size in args.sizes:
            print(f"N={size:,}: opening connections…", file=sys.stderr, flush=True)
            others = tcp_sockets()
            with hold(size) as held:
                results[size] = {OTHERS: others} | measure_system(args.repeat, conntui)
                print(f"N={size:,}: the dashboard…", file=sys.stderr, flush=True)
                results[size] |= measure_ui(held, args.repeat)
    idle: dict[int, dict[str, float]] = {}
    for connections in args.idle_connections:
        print(f"idle dashboard, {connections:,} connections held…", file=sys.stderr, flush=True)
        idle[connections] = measure_idle(connections, args.idle_seconds, args.repeat)
    print("conntui watch at 1,000 connections a second…", file=sys.stderr, flush=True)
    watch = measure_watch_cost(1000, args.watch_seconds)
    text = report(results, idle, watch, (before, load_average()), [os.path.relpath(__file__, ROOT), *sys.argv[1:]])
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
