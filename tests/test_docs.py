"""The README stays true: every command is documented, the JSON schema matches a real export."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import typer.main

from tracker.cli import app

from .conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def command_paths() -> list[str]:
    root = typer.main.get_command(app)
    paths = []

    def walk(cmd, prefix: str) -> None:  # type: ignore[no-untyped-def]
        for name, sub in getattr(cmd, "commands", {}).items():
            path = f"{prefix} {name}".strip()
            if getattr(sub, "commands", None):
                walk(sub, path)
                if getattr(sub, "invoke_without_command", False):
                    paths.append(path)
            else:
                paths.append(path)

    walk(root, "")
    return paths


def test_every_command_is_in_the_readme() -> None:
    paths = command_paths()
    assert {
        "status",
        "show",
        "evidence add",
        "review",
        "review confirm",
        "set-status",
        "export",
        "catalog load",
        "refresh",
        "sources",
    } <= set(paths)
    missing = [p for p in paths if f"`tracker {p}" not in README]
    assert not missing, f"commands missing from README: {missing}"


def test_every_command_has_help_with_an_example() -> None:
    root = typer.main.get_command(app)
    for path in command_paths():
        cmd = root
        for part in path.split():
            cmd = cmd.commands[part]  # type: ignore[attr-defined]
        assert cmd.help and "Example: tracker" in cmd.help, path


def documented_export() -> dict:  # type: ignore[type-arg]
    section = README.split("## JSON export", 1)[1]
    block = re.search(r"```json\n(.*?)```", section, re.S)
    assert block, "README has no JSON block under 'JSON export'"
    return json.loads(block.group(1).replace("…", ""))


def test_readme_json_schema_matches_a_real_export(cli) -> None:  # type: ignore[no-untyped-def]
    cli(
        "evidence",
        "add",
        "health-tourism",
        "--url",
        "https://example.org/h",
        "--title",
        "t",
        "--date",
        "2025-01-01",
    )
    real = json.loads(cli("export").out)
    doc = documented_export()
    assert set(doc) == set(real)
    assert set(doc["agreements"][0]) == set(real["agreements"][0])
    assert set(doc["commitments"][0]) == set(real["commitments"][0])
    for key in ("milestones", "history", "evidence"):
        real_items = [i for c in real["commitments"] for i in c[key]]
        assert real_items, key
        assert set(doc["commitments"][0][key][0]) == set(real_items[0]), key


def test_readme_first_command_is_install_then_status() -> None:
    blocks = re.findall(r"```sh\n(.*?)\n```", README, re.S)
    assert blocks[0].endswith("tracker status")
    assert "pytest" in blocks[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert blocks[1] in ci


def test_source_kinds_are_documented() -> None:
    from scrapers import KINDS

    for kind in KINDS:
        assert f"`{kind}`" in README, kind
        assert KINDS[kind].doc.strip(), kind


def test_ruff_is_clean() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "tracker", "scrapers", "tests"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_scrapers_never_import_tracker() -> None:
    """DESIGN: scrapers/ knows HTTP and formats only and receives what it needs as arguments."""
    offenders = [
        f"{path.name}:{n}"
        for path in sorted((ROOT / "scrapers").glob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if re.match(r"\s*(from tracker[ .]|import tracker\b)", line)
    ]
    assert not offenders
