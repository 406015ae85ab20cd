"""`tracker refresh` is parsed without typer (tracker/cli/refresh.py): the same arguments must
mean the same thing both ways, anything the short parser does not know must go to typer (and get
typer's message), and the command cron runs must not load typer, click, rich or the ORM."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main

from tracker.cli import refresh as quick
from tracker.cli.root import app

from .conftest import Result, errors, query
from .loopback import Reply, fixture, serve

PLAIN = [
    ["refresh"],
    ["refresh", "--quiet"],
    ["refresh", "-q"],
    ["refresh", "-q", "--quiet"],
    ["refresh", "--sources", "my sources.toml", "--force", "--quiet"],
    ["refresh", "--sources=x.toml", "--only", "irna", "--notify", "--json"],
    ["refresh", "--only=a=b", "--force"],
    ["--db", "other.db", "refresh", "--quiet"],
    ["--db=sqlite:///x.db", "refresh", "--json", "--force"],
    ["--db", "postgresql+psycopg://u@h/db", "refresh"],
]

NOT_PLAIN = [
    [],
    ["status"],
    ["refresh", "--help"],
    ["--help", "refresh"],
    ["refresh", "--bogus"],
    ["refresh", "extra"],
    ["refresh", "--"],
    ["refresh", "--only"],
    ["refresh", "--only", ""],
    ["refresh", "--only="],
    ["refresh", "--only", "--force"],
    ["refresh", "--sources", "-"],
    ["refresh", "--force", "--force"],
    ["refresh", "--only", "a", "--only=b"],
    ["refresh", "--force=yes"],
    ["refresh", "-qq"],
    ["refresh", "--db", "x.db"],
    ["--db", "refresh"],
    ["--db"],
    ["--db=", "refresh"],
    ["refresh", "--quie"],
]


def typer_params(args: list[str]) -> tuple[str | None, dict[str, Any]]:
    """What typer makes of `args`: the root's `--db` and the refresh command's parameters."""
    group = typer.main.get_command(app)
    root = group.make_context("tracker", list(args), resilient_parsing=False)
    rest = [*getattr(root, "_protected_args", []), *root.args] or root.protected_args
    name, command, sub_args = group.resolve_command(root, list(rest))
    assert name == "refresh" and command is not None
    sub = command.make_context(name, sub_args, parent=root)
    return root.params["db"], dict(sub.params)


@pytest.mark.parametrize("args", PLAIN, ids=" ".join)
def test_a_plain_refresh_means_what_typer_makes_of_it(args: list[str]) -> None:
    assert quick.parse(args) == typer_params(args)


@pytest.mark.parametrize("args", NOT_PLAIN, ids=lambda a: " ".join(a) or "(none)")
def test_anything_else_goes_to_typer(args: list[str]) -> None:
    assert quick.parse(args) is None


def test_both_know_the_same_options() -> None:
    group = typer.main.get_command(app)
    ctx = group.make_context("tracker", ["refresh"], resilient_parsing=True)
    command = group.get_command(ctx, "refresh")
    assert command is not None
    declared = {opt: param.name for param in command.params for opt in getattr(param, "opts", [])}
    declared.pop("--help", None)
    assert declared == {**quick.VALUED, **quick.FLAGS}
    defaults = {param.name: param.default for param in command.params if param.name != "help"}
    assert defaults == quick.DEFAULTS


def test_an_unknown_option_gets_typers_message(cli: Any) -> None:
    res: Result = cli("refresh", "--quie")
    assert res.code == 2
    assert "No such option: --quie" in res.err and "tracker refresh --help" in res.err
    assert res.err.count("\n") == 1


def test_help_is_typers(cli: Any) -> None:
    res: Result = cli("refresh", "--help")
    assert res.code == 0 and "--sources" in res.out and "--notify" in res.out


def test_a_bad_sources_file_is_one_line(cli: Any, tmp_path: Path) -> None:
    bad = tmp_path / "sources.toml"
    bad.write_text("[[source]]\nname = 1\n", encoding="utf-8")
    res: Result = cli("refresh", "--sources", str(bad), "--quiet")
    assert res.code == 2, res
    assert errors(res.err).startswith("error: ") and errors(res.err).count("\n") == 1
    assert str(bad) in res.err


def test_an_unknown_only_is_one_line(cli: Any, tmp_path: Path) -> None:
    res: Result = cli("refresh", "--only", "nope")
    assert res.code == 2 and "nope" in errors(res.err) and errors(res.err).count("\n") == 1


HEAVY = ("typer", "click", "rich", "sqlalchemy", "sqlmodel", "pydantic")
# A kind's module is imported when a source of that kind is read: RSS feeds load none of these.
# And no class of ours on the refresh path is a dataclass (each costs ~0.7 ms of start-up: the
# records there are msgspec Structs).
OTHER_KINDS = ("scrapers.gdelt", "scrapers.google_news", "scrapers.opensky", "scrapers.page")

CHILD = """
import json, os, sys
from pathlib import Path

# How many processes the refresh has started when it first imports tracker.refresh: the
# parser processes' fork server is launched before that import, to start up meanwhile.
started_by_then = []


class Watch:
    def find_spec(self, name, path=None, target=None):
        if name == "tracker.refresh" and not started_by_then:
            pid = os.getpid()
            children = Path(f"/proc/{pid}/task/{pid}/children")
            started_by_then.append(len(children.read_text().split()) if children.exists() else -1)
        return None


sys.meta_path.insert(0, Watch())
from tracker.cli import main
code = 0
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code or 0
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY))
kinds = sorted(set(sys.modules) & set(OTHER_KINDS))
ours = [m for name, m in list(sys.modules.items()) if name.split(".")[0] in ("tracker", "scrapers")]
dataclasses = sorted(
    f"{m.__name__}.{k}" for m in ours for k, v in vars(m).items()
    if isinstance(v, type) and v.__module__ == m.__name__ and "__dataclass_fields__" in vars(v)
)
loaded = {
    "code": code, "heavy": heavy, "kinds": kinds, "dataclasses": dataclasses,
    "started": started_by_then,
}
sys.stderr.write("\\nLOADED " + json.dumps(loaded) + "\\n")
""".replace("HEAVY", repr(HEAVY)).replace("OTHER_KINDS", repr(OTHER_KINDS))


def test_cron_refresh_stores_evidence_and_loads_nothing_heavy(
    db_path: Path, tmp_path: Path
) -> None:
    with serve() as server:
        url = server.route(
            "/feed.xml", Reply(body=fixture("rss_en.xml"), content_type="application/rss+xml")
        )
        sources = tmp_path / "sources.toml"
        sources.write_text(
            f'[[source]]\nname = "feed"\nkind = "rss"\nurl = "{url}"\n'
            'language = "en"\ncountry = "IR"\n',
            encoding="utf-8",
        )
        runs = []
        for _ in range(2):  # the first creates and seeds the database, the second finds it
            proc = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    CHILD,
                    "--db",
                    str(db_path),
                    "refresh",
                    "--sources",
                    str(sources),
                    "--quiet",
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
            *_, last = proc.stderr.strip().splitlines()
            assert last.startswith("LOADED "), proc.stderr
            runs.append(json.loads(last.removeprefix("LOADED ")))
    started = [1] if sys.platform.startswith("linux") else [-1]
    assert runs[1] == {
        "code": 0,
        "heavy": [],
        "kinds": [],
        "dataclasses": [],
        "started": started,
    }, runs
    assert runs[0]["code"] == 0
    stored = query(str(db_path), "SELECT COUNT(*) FROM evidence WHERE source = 'feed'")
    assert stored[0][0] > 0
