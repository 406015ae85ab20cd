"""Shared helpers of the benchmark scripts: paths, the machine, timing a command like a user would.

Not a test module: pytest never collects it (no `test_` prefix), and CI does not run benchmarks.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent.parent


def python() -> str:
    """The interpreter running the benchmark (the project's virtualenv, as the README says)."""
    return sys.executable


def compile_checkout() -> None:
    """Compile the checkout's packages, as `pip install` leaves an installed package: the runs
    measure tracker, not the compiler."""
    packages = [str(ROOT / name) for name in ("tracker", "scrapers", "reports")]
    subprocess.run(
        [python(), "-m", "compileall", "-q", *packages], check=False, capture_output=True
    )


def tracker_command() -> list[str]:
    """`tracker` as a user runs it: the console script beside this interpreter, else `-m`."""
    script = Path(sys.executable).parent / "tracker"
    if script.exists():
        return [str(script)]
    found = shutil.which("tracker")
    return [found] if found else [sys.executable, "-m", "tracker"]


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without any TRACKER_*/OPENSKY_* setting, plus `extra`.

    No TRACKER_HTTP_* override survives: refresh runs with the production HTTP limits.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKER_", "OPENSKY_"))}
    env["TRACKER_USER"] = "bench"
    # Python reads any non-empty value as "do not write .pyc files", "0" included: a module
    # edited since its .pyc was written would then be compiled again by every measured run.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class Run:
    """One finished command: wall clock, peak RSS of the child process, exit code, output."""

    seconds: float
    max_rss_mb: float
    returncode: int
    stdout: bytes
    stderr: bytes


def run_command(
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 600.0,
) -> Run:
    """Run `argv` and time its wall clock from spawn to exit (no memory figure)."""
    started = time.perf_counter()
    proc = subprocess.run(
        list(argv),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    return Run(time.perf_counter() - started, 0.0, proc.returncode, proc.stdout, proc.stderr)


def run_measured(
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 600.0,
) -> Run:
    """Like `run_command`, but reaps the child with `os.wait4` to get its own peak RSS.

    Output goes to temporary files rather than pipes so that reaping does not race a reader.
    """
    import tempfile

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(argv),
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.002)
        elapsed = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(elapsed, usage.ru_maxrss / 1024, proc.returncode, out.read(), err.read())


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, object]:
    """What the figures were measured on."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    mem_total = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_total = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    import sqlite3

    return {
        "cpu_model": cpu_model(),
        "cores": usable,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "memory_gb": mem_total,
    }


def fmt_seconds(value: float) -> str:
    if value != value:  # NaN
        return "n/a"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.2f} s"
