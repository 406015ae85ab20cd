"""Typed errors. The CLI maps each to one line on stderr and an exit code."""

from __future__ import annotations


class TrackerError(Exception):
    """Base class: something the user can read and act on. Never shown with a traceback."""

    exit_code = 1


class UsageError(TrackerError):
    """Bad arguments or a bad configuration file: exit 2."""

    exit_code = 2


class EnvironmentProblem(TrackerError):
    """The world is not as needed (database unreadable, not ours, locked, SMTP down): exit 1."""

    exit_code = 1
