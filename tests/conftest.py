"""Shared fixtures: a clean environment, a temporary database, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# Read before the clean_env fixture removes TRACKER_* variables from the environment.
PG_URL = os.environ.get("TRACKER_TEST_PG_URL")
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


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the test server, dropped afterwards."""
    if not PG_URL:
        pytest.skip("TRACKER_TEST_PG_URL is not set (no PostgreSQL server for this run)")
    import uuid

    import sqlalchemy as sa

    name = f"tracker_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield str(
            sa.engine.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        )
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, db_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The database under test, on each backend; TRACKER_DB points at it."""
    url = str(db_path) if request.param == "sqlite" else request.getfixturevalue("pg_url")
    monkeypatch.setenv("TRACKER_DB", url)
    return url


def query(db: str, sql: str, params: dict[str, object] | None = None) -> list[tuple]:  # type: ignore[type-arg]
    """Read the database under test directly, whatever its backend."""
    import sqlalchemy as sa

    engine = sa.create_engine(db if "://" in db else f"sqlite:///{db}")
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(sql), params or {})
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()


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
def cli(db: str):  # type: ignore[no-untyped-def]
    """Call the CLI in-process (fast) against the database under test; returns a Result."""

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


def errors(err: str) -> str:
    """Standard error without the one notice a first use prints ("created … from … catalog"):
    what is left must be empty on success and one line on failure."""
    return "".join(
        line
        for line in err.splitlines(keepends=True)
        if not (line.startswith("created ") and " from the " in line)
    )
