"""A command ends with its database whole in one file (`entry` closes it before its fast exit)."""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path

from .conftest import run_cli


def test_a_copy_of_the_database_file_alone_is_the_whole_database(tmp_path: Path) -> None:
    db = tmp_path / "commitments.db"
    res = run_cli("status", env={"TRACKER_DB": str(db)}, cwd=tmp_path)
    assert res.code == 0, res.err
    seeded = re.search(r"with (\d+) commitments", res.err)
    assert seeded, res.err
    # The write-ahead log was checkpointed into the file and removed by the last close: without
    # that, the file was a 4 KB header and the seeded catalog lived in commitments.db-wal.
    assert not (tmp_path / "commitments.db-wal").exists()
    backup = tmp_path / "backup"
    backup.mkdir()
    shutil.copy(db, backup / "commitments.db")
    copy = sqlite3.connect(f"file:{backup / 'commitments.db'}?mode=ro", uri=True)
    try:
        (count,) = copy.execute("SELECT COUNT(*) FROM commitment").fetchone()
    finally:
        copy.close()
    assert count == int(seeded.group(1)) > 0
