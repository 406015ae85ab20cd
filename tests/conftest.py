"""Shared fixtures: a clean environment, a temporary database, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No TRACKER_* or SMTP variable from the developer's shell leaks into a test."""
    for key in list(os.environ):
        if key.startswith(("TRACKER_", "OPENSKY_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("TRACKER_USER", "tester")
    monkeypatch.chdir(tmp_path)
    yield


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "commitments.db"


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 60
) -> Result:
    """Run the real `tracker` command in a subprocess, as a user would."""
    full_env = {k: v for k, v in os.environ.items()}
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "tracker", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli(db_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Call the CLI in-process (fast) against the temp database; returns (code, stdout, stderr)."""
    monkeypatch.setenv("TRACKER_DB", str(db_path))

    def invoke(*args: str) -> Result:
        import io
        from contextlib import redirect_stderr, redirect_stdout

        from tracker.cli import main

        out, err = io.StringIO(), io.StringIO()
        code = 0
        with redirect_stdout(out), redirect_stderr(err):
            try:
                main(list(args))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
        return Result(code, out.getvalue(), err.getvalue())

    return invoke
