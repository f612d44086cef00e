"""The benchmark harness runs (at a small N); its figures live in benchmarks/RESULTS.md, not here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_harness_runs_at_small_n(tmp_path: Path) -> None:
    out = tmp_path / "results.md"
    result = subprocess.run(
        [sys.executable, "benchmarks/bench.py", "--sizes", "50", "--repeat", "1", "--idle-seconds", "1",
         "--idle-connections", "20", "--watch-seconds", "1", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    text = out.read_text()
    names = ("ss -tanp", "poll, netlink backend", "conntui list --json --kind tcp", "filter keystroke",
             "UI thread: take in a poll with 1% churn", "dashboard RSS", "first rows on screen after start",
             "Idle dashboard at the default 1 s interval", "| 20 | ",
             "Destroy-event listener: `conntui watch --json` used",
             "Load average (1 / 5 / 15 min) before: ", "cores, Linux ", "×dump")  # fmt: skip
    for name in names:
        assert name in text
    assert "| N=50 ms | ×ss -tanp |" in text
