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
         "--idle-sockets", "20", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    text = out.read_text()
    names = ("ss -tanp", "poll, netlink backend", "conntui list --json --kind tcp", "filter keystroke",
             "UI thread: take in a poll with 1% churn", "dashboard RSS", "idle dashboard CPU")  # fmt: skip
    for name in names:
        assert name in text
    assert "| N=50 ms | ×ss -tanp |" in text
