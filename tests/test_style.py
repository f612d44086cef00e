"""The code stays clean as the project promises: `ruff` (lint and format), `mypy` (strict flags on
the core) and the import contracts (the core never imports Textual, Rich or the UI; the socket
sources never import the UI or the HTTP half), all configured in pyproject.toml."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
BIN = Path(sys.executable).parent


def installed(tool: str) -> bool:
    return shutil.which(tool) is not None or (BIN / tool).exists()


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(not installed("ruff"), reason="ruff is not installed")
@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_ruff(command: list[str]) -> None:
    result = run([sys.executable, "-m", "ruff", *command, "conntui", "tests", "screenshots", "benchmarks"])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(not installed("mypy"), reason="mypy is not installed")
def test_mypy() -> None:
    result = run([sys.executable, "-m", "mypy"])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(not installed("lint-imports"), reason="import-linter is not installed")
def test_import_contracts() -> None:
    lint_imports = shutil.which("lint-imports") or str(BIN / "lint-imports")
    result = run([lint_imports])
    assert result.returncode == 0 and "0 broken" in result.stdout, result.stdout + result.stderr
