"""The one way benchmark scripts update their own section of benchmarks/RESULTS.md."""

from __future__ import annotations

import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def write_section(text: str, start: str, end: str, results: Path = RESULTS) -> None:
    """Replace the block between the ``start`` and ``end`` markers with ``text`` (append it when absent)."""
    old = results.read_text() if results.exists() else "# Benchmark results\n"
    block = f"{start}\n{text.rstrip()}\n{end}\n"
    if start in old and end in old:
        new = re.sub(re.escape(start) + r".*?" + re.escape(end) + r"\n?", lambda _m: block, old, flags=re.S)
    else:
        new = old.rstrip() + "\n\n" + block
    results.write_text(new)
