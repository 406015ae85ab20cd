"""Loading catalogs: the built-in one, another team's, idempotence, updates and bad files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tracker.catalog import builtin_catalog, read_catalog, read_catalog_text
from tracker.errors import UsageError

from .conftest import DATA, query

OTHER = DATA / "other_catalog.toml"


def counts(db: str) -> dict[str, int]:
    return {
        t: query(db, f"SELECT COUNT(*) FROM {t}")[0][0]
        for t in ("agreement", "commitment", "milestone", "evidence")
    }


def test_builtin_catalog_reads() -> None:
    (agreement,) = builtin_catalog()
    assert agreement.language == "fa"
    assert agreement.published_on is not None and agreement.published_on.isoformat() == "2022-02-19"
    assert len(agreement.commitments) == 8


def test_load_second_catalog_is_idempotent(cli, db: str) -> None:  # type: ignore[no-untyped-def]
    cli("status")
    before = counts(db)
    r = cli("catalog", "load", str(OTHER))
    assert r.code == 0, r.err
    assert "2 commitment(s) added" in r.out
    after = counts(db)
    assert after["agreement"] == before["agreement"] + 1
    assert after["commitment"] == before["commitment"] + 2
    assert after["milestone"] == before["milestone"] + 6
    assert after["evidence"] == before["evidence"] + 1
    r = cli("catalog", "load", str(OTHER))
    assert "0 commitment(s) added, 2 updated, 0 curated evidence added" in r.out
    assert counts(db) == after
    data = json.loads(cli("status", "--json", "--agreement", "caspian-ferry-2024").out)
    by_slug = {c["slug"]: c for c in data["commitments"]}
    assert set(by_slug) == {"aktau-alat-ferry", "joint-container-terminal"}
    assert by_slug["aktau-alat-ferry"]["milestones_reached"] == 2
    assert "overdue" in by_slug["aktau-alat-ferry"]["flags"]  # deadline 2025-12-31 has passed


def test_reload_updates_texts_and_rules_but_never_deletes_evidence(
    cli, db: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    cli("catalog", "load", str(OTHER))
    cli(
        "evidence",
        "add",
        "aktau-alat-ferry",
        "--url",
        "https://example.org/by-hand",
        "--title",
        "Weekly schedule published",
        "--date",
        "2025-01-01",
        "--milestone",
        "3",
    )
    changed = tmp_path / "changed.toml"
    text = OTHER.read_text(encoding="utf-8")
    text = text.replace('title = "Aktau–Alat ferry line"', 'title = "Aktau–Alat ferry (renamed)"')
    text = text.replace('en = ["ferry"]', 'en = ["ferry", "ro-ro"]')
    # the curated evidence is dropped from the new version of the file
    text = (
        text.split("[[agreement.commitment.evidence]]")[0]
        + "\n[[agreement.commitment]]"
        + text.split("[[agreement.commitment]]")[2]
    )
    changed.write_text(text, encoding="utf-8")
    before = counts(db)
    r = cli("catalog", "load", str(changed))
    assert r.code == 0, r.err
    assert counts(db) == before
    ((title, rules),) = query(
        db, "SELECT title, rules FROM commitment WHERE slug='aktau-alat-ferry'"
    )
    assert title == "Aktau–Alat ferry (renamed)"
    assert "ro-ro" in str(rules)
    export = json.loads(cli("export").out)
    ferry = next(c for c in export["commitments"] if c["slug"] == "aktau-alat-ferry")
    assert {e["title"] for e in ferry["evidence"]} == {
        "First ferry sails from Aktau to Alat",
        "Weekly schedule published",
    }
    assert ferry["status"] == "delivered"


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (
            lambda t: t.replace('slug = "aktau-alat-ferry"\n', ""),
            "commitment #1: missing field 'slug'",
        ),
        (
            lambda t: t.replace('title = "Aktau–Alat ferry line"\n', ""),
            "commitment 'aktau-alat-ferry': missing field 'title'",
        ),
        (
            lambda t: t.replace(
                "announced_on = 2024-05-14\ndeadline", 'announced_on = "soon"\ndeadline'
            ),
            "field 'announced_on' must be a date",
        ),
        (lambda t: t.replace('stance = "progress"', 'stance = "great"'), "'stance' must be one of"),
        (
            lambda t: t.replace("milestone = 2", "milestone = 7"),
            "'milestone' must be between 1 and 3",
        ),
        (
            lambda t: t.replace(
                'url = "https://example.org/news/first-sailing"', 'url = "first-sailing"'
            ),
            "http(s) URL",
        ),
        (
            lambda t: t.replace('slug = "joint-container-terminal"', 'slug = "aktau-alat-ferry"'),
            "appears twice",
        ),
        (
            lambda t: t.replace('slug = "caspian-ferry-2024"', 'slug = "Caspian Ferry"'),
            "lower-case letters",
        ),
        (lambda t: t.replace("format = 1", "format = 9"), "format 9 is not supported"),
        (
            lambda t: t.replace(
                'note = "Illustrative evidence for the test catalog."',
                'note = "x"\n[[agreement.commitment.evidence]]\ndate = 2024-09-03\ntitle = "again"\n'
                'url = "https://www.example.org/news/first-sailing?utm_source=x"',
            ),
            "evidence #2 has the same URL as evidence #1",
        ),
        (lambda t: t + "\n[[[broken", "not valid TOML"),
        (
            lambda t: t.replace(
                'milestones = ["vessels chartered", "first sailing", "weekly schedule"]',
                "milestones = []",
            ),
            "'milestones' must list 1 to 10",
        ),
    ],
)
def test_bad_catalogs_name_the_file_the_place_and_the_field(
    mutate, needle: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.toml"
    path.write_text(mutate(OTHER.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(UsageError) as info:
        read_catalog(path)
    message = str(info.value)
    assert message.startswith(f"catalog {path}:")
    assert needle in message
    assert "\n" not in message


def test_bad_catalog_leaves_database_unchanged(cli, db: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli("status")
    before = counts(db)
    bad = tmp_path / "bad.toml"
    shutil.copy(OTHER, bad)
    bad.write_text(
        bad.read_text(encoding="utf-8").replace("milestone = 2", "milestone = 7"), encoding="utf-8"
    )
    r = cli("catalog", "load", str(bad))
    assert r.code == 2
    assert counts(db) == before


def test_read_catalog_text_requires_agreements() -> None:
    with pytest.raises(UsageError, match="missing field 'agreement'"):
        read_catalog_text("format = 1\n", "x.toml")
