"""The layout keeps the data flowing one way: these rules are the README's architecture map.

- only `tracker/store/` imports SQLAlchemy, SQLModel or sqlite3 (it is the persistence boundary);
- only `tracker/cli/` imports typer;
- `tracker/outputs/` takes data and returns text: no SQL, no store but its records, no environment;
- only `tracker/settings.py` reads the environment;
- `scrapers/` never imports `tracker` (tests/test_scrapers_kinds.py checks that one);
- no function is much longer than a screen.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TRACKER = ROOT / "tracker"
MAX_FUNCTION_LINES = 80


def modules(root: Path = TRACKER) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """Every module a file imports, at any depth (inside functions too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def offenders(prefixes: tuple[str, ...], allowed: str) -> list[str]:
    found = []
    for path in modules():
        if rel(path).startswith(allowed):
            continue
        for line, name in imports(path):
            if name.split(".")[0] in prefixes or name in prefixes:
                found.append(f"{rel(path)}:{line} imports {name}")
    return found


def test_only_the_store_speaks_to_databases() -> None:
    assert offenders(("sqlalchemy", "sqlmodel", "sqlite3", "psycopg"), "tracker/store/") == []


def test_only_the_cli_imports_typer() -> None:
    assert offenders(("typer", "click"), "tracker/cli/") == []


def test_outputs_take_data_and_return_text() -> None:
    bad = []
    for path in modules(TRACKER / "outputs"):
        for line, name in imports(path):
            if name.startswith("tracker.store") and name != "tracker.store.records":
                bad.append(f"{rel(path)}:{line} imports {name}")
            if name in ("os", "sqlite3") or name.startswith(("sqlalchemy", "tracker.settings")):
                if name == "os" and rel(path) == "tracker/outputs/files.py":
                    continue  # the atomic write needs os.replace and fsync, not the environment
                bad.append(f"{rel(path)}:{line} imports {name}")
    assert bad == []


def test_only_settings_reads_the_environment() -> None:
    bad = []
    for path in modules():
        if rel(path) == "tracker/settings.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("environ", "getenv")
                and isinstance(node.value, ast.Name)
                and node.value.id == "os"
            ):
                bad.append(f"{rel(path)}:{node.lineno} reads os.{node.attr}")
    assert bad == []


def test_scrapers_never_import_tracker() -> None:
    bad = [
        f"{rel(path)}:{line} imports {name}"
        for path in modules(ROOT / "scrapers")
        for line, name in imports(path)
        if name == "tracker" or name.startswith("tracker.")
    ]
    assert bad == []


@pytest.mark.parametrize("root", ["tracker", "scrapers"])
def test_no_function_is_longer_than_a_screen(root: str) -> None:
    long = []
    for path in modules(ROOT / root):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{rel(path)}:{node.lineno} {node.name} has {length} lines")
    assert long == []
