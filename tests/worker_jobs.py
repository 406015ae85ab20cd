"""Top-level functions for tests that run work in parser processes (they must be picklable).

Kept apart from the test modules so that a worker importing them loads nothing but this file.
"""

from __future__ import annotations

import os
import signal

import msgspec

from scrapers import Outcome
from scrapers.errors import SourceError


def add(a: int, b: int) -> int:
    return a + b


def spin() -> None:
    """A CPU bomb: a parse that never ends."""
    while True:
        pass


def hog() -> None:
    """A memory bomb: a parse that allocates without end."""
    blocks = []
    while True:
        blocks.append(bytearray(8 * 1024 * 1024))


def fail_like_a_source() -> None:
    raise SourceError("malformed JSON from the server", http_status=200)


def crash() -> None:
    raise ValueError("line one\nline two")


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def chatter(value: str) -> str:
    print("a library printing on stdout")  # must not corrupt the worker's channel
    return value


def nest(depth: int) -> int:
    return 0 if depth == 0 else 1 + nest(depth - 1)


def big(size: int) -> bytes:
    return b"x" * size


def pid() -> int:
    return os.getpid()


class Tagged(Outcome):
    """What a post-processing step may return: an Outcome with its own results."""

    tag: str = ""
    calls: int = 0


class Counting:
    """A post-processing step with state of its own, as a compiled matcher would have."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, outcome: Outcome) -> Outcome:
        self.calls += 1
        fields = msgspec.structs.asdict(outcome)
        return Tagged(**fields, tag=f"{len(outcome.items)} items", calls=self.calls)


def bomb_for(name: str, outcome: Outcome) -> Outcome:
    """Post-processing that never ends for the source called `name`."""
    if outcome.source == name:
        spin()
    return outcome


def with_pid(outcome: Outcome) -> Outcome:
    """Post-processing that says which worker process ran it."""
    fields = msgspec.structs.asdict(outcome)
    return Tagged(**fields, tag=str(os.getpid()))


def misbehave(outcome: Outcome) -> Outcome:
    """Post-processing that dies, spins or hogs memory depending on the source's name."""
    if outcome.source == "dies":
        die()
    if outcome.source == "spins":
        spin()
    if outcome.source == "hogs":
        hog()
    return outcome


def nap(seconds: float, tag: str) -> str:
    """A parse that takes `seconds` and says which call it was."""
    import time

    time.sleep(seconds)
    return tag


def clock(tag: str) -> tuple[str, float]:
    """Which call this was, and when (time.time()) the worker started it."""
    import time

    return tag, time.time()


def parent_pid() -> int:
    return os.getppid()


class Prepared:
    """A step whose `prepare` (building a matcher, in the real step) leaves a trace: the pid of
    every process that ran it, one line each, in the file at `path`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.built = False

    def prepare(self) -> None:
        with open(self.path, "a") as trace:
            trace.write(f"{os.getpid()}\n")
        self.built = True

    def __call__(self, seconds: float) -> tuple[int, bool]:
        """Which process ran the call, and whether it had the step built."""
        import time

        time.sleep(seconds)
        return os.getpid(), self.built


def frozen() -> int:
    """How many objects this process keeps out of the cyclic collector's walks."""
    import gc

    return gc.get_freeze_count()
