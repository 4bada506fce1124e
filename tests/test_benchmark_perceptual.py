"""benchmarks/perceptual.py's bookkeeping: what --no-write and --write-only store and write (the sets
themselves are stubbed: the measures have their own tests)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import benchmarks._results as results  # noqa: E402
import benchmarks.perceptual as perceptual  # noqa: E402


@pytest.fixture
def stubbed(tmp_path, monkeypatch):
    runs, sections = [], []
    monkeypatch.setattr(perceptual, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(perceptual, "run_set", lambda s, *a: (runs.append(s), (f"### {s} table", {}))[1])
    monkeypatch.setattr(results, "write_section", lambda text, start, end, *a, **k: sections.append((text, start)))
    return tmp_path / "cache", runs, sections


def test_no_write_stores_no_table_for_a_later_write_only(stubbed, capsys):
    cache, runs, sections = stubbed
    perceptual.main(["--sets", "faces", "--no-write"])
    assert runs == ["faces"] and "### faces table" in capsys.readouterr().out
    assert not cache.exists() or not any(cache.iterdir())
    assert sections == []
    # a real run stores its table and writes the section; --write-only rebuilds it from the store alone
    perceptual.main(["--sets", "faces"])
    assert (cache / "faces.md").read_text() == "### faces table"
    assert len(sections) == 1 and "### faces table" in sections[0][0] and sections[0][1] == "<!-- perceptual -->"
    perceptual.main(["--sets", "scenes", "--no-write"])
    perceptual.main(["--write-only"])
    assert runs == ["faces", "faces", "scenes"] and sorted(p.name for p in cache.iterdir()) == ["faces.md"]
    assert "### faces table" in sections[-1][0] and "### scenes table" not in sections[-1][0]


def test_no_write_and_write_only_together_are_refused(stubbed):
    with pytest.raises(SystemExit) as exc:
        perceptual.main(["--no-write", "--write-only"])
    assert exc.value.code == 2
