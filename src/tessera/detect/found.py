"""What every region finder in :mod:`tessera.detect` returns: a box with a score and a kind."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Found:
    """One region to hide: ``box`` is (x, y, w, h) in pixels, clipped to the image; ``score`` in
    [0, 1] is the finder's confidence; ``kind`` names what it is ('face', 'text', 'cam')."""

    kind: str
    box: tuple[int, int, int, int]
    score: float
    source: str = ""  # which finder produced it (e.g. 'centerface', 'haar', 'rapidocr', 'cam')

    def __post_init__(self) -> None:
        x, y, w, h = self.box
        if w <= 0 or h <= 0 or x < 0 or y < 0:
            raise ValueError(f"a found box needs x, y >= 0 and w, h > 0, got {self.box}")
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"score must be in [0, 1], got {self.score}")

    def as_dict(self) -> dict:
        return {"kind": self.kind, "box": list(self.box), "score": round(float(self.score), 4), "source": self.source}


def clip_box(x0: float, y0: float, x1: float, y1: float, W: int, H: int) -> tuple[int, int, int, int] | None:
    """Corner coordinates -> an integer (x, y, w, h) box inside a W x H image (outward rounding),
    or None when nothing is left."""
    import math

    a, b = max(int(math.floor(x0)), 0), max(int(math.floor(y0)), 0)
    c, d = min(int(math.ceil(x1)), W), min(int(math.ceil(y1)), H)
    if c <= a or d <= b:
        return None
    return a, b, c - a, d - b


def grow_box(box: tuple[int, int, int, int], pad: float, W: int, H: int) -> tuple[int, int, int, int]:
    """Grow a box by ``pad`` of its width/height on every side, clipped to the image."""
    x, y, w, h = box
    out = clip_box(x - pad * w, y - pad * h, x + w + pad * w, y + h + pad * h, W, H)
    assert out is not None
    return out
