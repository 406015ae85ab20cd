"""The one atomic file write: a temporary file beside the target, flushed, then renamed over it.

A reader (or a crash) sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tracker.errors import EnvironmentProblem

__all__ = ["Written", "write_atomic", "write_unless_same"]


def _umask() -> int:
    """The process's umask. Linux shows it in /proc; elsewhere it can only be read by setting it
    (and at once setting it back), which another thread could notice."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically, with the permissions the umask gives a new file.

    An unwritable folder or a full disk is the environment's problem: one line, exit 1.
    """
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise EnvironmentProblem(f"cannot write {path}: {exc.strerror or exc}") from exc


@dataclass(frozen=True)
class Written:
    path: Path
    reused: bool  # the existing file said the same apart from its volatile lines
    data: bytes  # the file's bytes as on disk


def _without(text: str, volatile_prefix: str) -> str:
    return "\n".join(line for line in text.split("\n") if not line.startswith(volatile_prefix))


def write_unless_same(path: Path, text: str, volatile_prefix: str) -> Written:
    """Write `text` atomically, unless the existing file differs only in lines starting with
    `volatile_prefix` (a "Generated at" line): then keep it, so a re-run reuses (and re-sends)
    exactly the same file."""
    try:
        old = path.read_bytes() if path.is_file() else None
    except OSError:
        old = None
    if old is not None:
        try:
            same = _without(old.decode("utf-8"), volatile_prefix) == _without(text, volatile_prefix)
        except UnicodeDecodeError:
            same = False
        if same:
            return Written(path, True, old)
    data = text.encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot write {path}: {exc.strerror or exc}") from exc
    write_atomic(path, data)
    return Written(path, False, data)
