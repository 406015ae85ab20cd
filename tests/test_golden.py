"""The views of a database built by a fixed script match the committed golden files byte for byte.

A refactor must not change them. A deliberate change of behaviour regenerates them with
`python tests/golden/build.py --update` in the same commit, so the diff shows what changed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "golden"))
import build as golden

EXPECTED = Path(__file__).resolve().parent / "golden" / "expected"


@pytest.fixture(scope="module")
def produced(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return golden.build(tmp_path_factory.mktemp("golden"))


@pytest.mark.parametrize("name", golden.OUTPUTS)
def test_output_matches_golden_file(produced: dict[str, str], name: str) -> None:
    expected = (EXPECTED / name).read_text(encoding="utf-8")
    assert produced[name] == expected, f"{name} differs; see tests/golden/build.py"


def test_mask_hides_only_the_run_s_own_times() -> None:
    text = "2026-11-30T10:00:01Z 2026-11-30 10:00 2025-07-29T12:00:00Z on 2026-12-01, 2025-07-29"
    assert (
        golden.mask(text, "2026-11-30") == "<now> <now> 2025-07-29T12:00:00Z on <day>, 2025-07-29"
    )
