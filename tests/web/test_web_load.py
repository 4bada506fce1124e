"""50 concurrent restores against a real `tessera serve` (benchmarks/web_load.py): every request is
answered with a result or 503 + Retry-After, the server is alive afterwards, memory stays bounded."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.web_load import run_load  # noqa: E402


@pytest.mark.slow
def test_fifty_concurrent_restores_are_answered_and_memory_stays_bounded():
    r = run_load(requests=50, model="smooth", workers=1, queue=8, size=512)
    assert r["other"] == [], r
    assert r["ok"] + r["busy"] == 50
    assert r["ok"] >= 9  # the worker and the 8 waiting places at least
    assert r["busy_with_retry_after"] == r["busy"]
    assert r["alive"]
    # a 512x512 restore holds a few MiB; 50 admitted at once would hold far more than this
    assert r["rss_peak_mb"] - r["rss_base_mb"] < 300, r
