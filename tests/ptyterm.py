"""A real pseudo-terminal for tests: run a command on it, send keys, wait for what it draws.

Standard library only (`pty`, `termios`, `select`): the command sees a terminal on stdin, stdout
and stderr, with a window size, exactly as a person's shell would give it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import select
import signal
import struct
import termios
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["PtySession", "plain"]

_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>78]"
)


def plain(raw: str) -> str:
    """What a person reads: the output without escape sequences and carriage returns."""
    return _ANSI.sub("", raw).replace("\r", "")


class PtySession:
    """One command on its own pseudo-terminal (as its controlling terminal)."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path | None = None,
        rows: int = 50,
        cols: int = 160,
    ) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: the terminal is its stdin, stdout and stderr
            try:
                if cwd is not None:
                    os.chdir(cwd)
                os.execvpe(argv[0], list(argv), dict(env))
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.raw = ""  # everything the command wrote
        self.seen = 0  # how far `expect` has read (in the plain text)
        self.code: int | None = None

    def send(self, keys: str) -> float:
        """Type `keys`; the moment they were sent (time.monotonic)."""
        os.write(self.fd, keys.encode("utf-8"))
        return time.monotonic()

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the command ended and the terminal closed
            data = b""
        if not data:
            raise EOFError
        self.raw += data.decode("utf-8", "replace")
        return True

    @property
    def text(self) -> str:
        """Everything shown so far, as plain text."""
        return plain(self.raw)

    def expect(self, pattern: str, timeout: float = 20) -> re.Match[str]:
        """Wait until the output after the last match shows `pattern` (a regex over plain text)."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            text = self.text
            found = regex.search(text, self.seen)
            if found:
                self.seen = found.end()
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{pattern!r} not shown; the screen was:\n{text[-3000:]}")
            try:
                self._read(min(left, 0.5))
            except EOFError:
                raise TimeoutError(
                    f"{pattern!r} not shown before the command ended:\n{text[-3000:]}"
                ) from None

    def wait(self, timeout: float = 20) -> int:
        """Read until the command ends; its exit code (128 + N for a signal N)."""
        deadline = time.monotonic() + timeout
        while self.code is None:
            with contextlib.suppress(EOFError):
                self._read(0.1)
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                self.code = os.waitstatus_to_exitcode(status)
                if self.code < 0:
                    self.code = 128 - self.code
                break
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError("the command did not end:\n" + plain(self.raw)[-3000:])
        try:  # what it wrote last, if anything is left in the terminal
            while self._read(0.05):
                pass
        except EOFError:
            pass
        return self.code

    def signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def kill(self) -> None:
        if self.code is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self.code = -9

    def close(self) -> None:
        self.kill()
        with contextlib.suppress(OSError):
            os.close(self.fd)
