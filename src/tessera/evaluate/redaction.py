"""The redaction section of `tessera eval`: how much of a redaction our own restorer brings back.

Each photo's faces (or what ``find`` names) are found once, padded, and hidden with every method x
cell size; every hidden region is then attacked with our restorer through
:func:`tessera.anonymize.check_redaction`, the code behind ``tessera anonymize --check`` (told the
exact mosaic lattice, or that the region is blurred or filled). Reported per setting: the PSNR of
the redaction and of the attack against the original inside the region, and for faces how often
dlib's face recognizer still matches the original person, as redacted and after the attack, read
against dlib's false-match rate between the different faces of the same photos (the chance level).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["redaction_settings", "score_redactions", "summarize_redactions", "redaction_markdown"]


def redaction_settings(methods: Sequence[str], cells: Sequence[int | None]) -> list[tuple[str, int | None]]:
    """(method, cell) pairs to try: mosaic and blur at every cell (None = auto), solid once."""
    return [(m, c) for m in methods if m != "solid" for c in cells] + [("solid", None) for m in methods if m == "solid"]


def score_redactions(
    images: Sequence[tuple[str, np.ndarray]],
    settings: Sequence[tuple[str, int | None]],
    *,
    find: tuple[str, ...] = ("faces",),
    pad: float = 0.15,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Find, hide and attack (see the module's docstring). Returns {"entries": one dict per attacked
    region (:func:`tessera.anonymize.check_redaction`'s, with the image and setting), "no_region":
    the names of photos where nothing was found, "false_match": dlib's false-match rate between the
    found faces of different photos (None without dlib or with fewer than two), "identity": None
    when dlib ran, else why it did not}. ``progress`` is called once per photo."""
    from tessera.anonymize import check_redaction, find_regions, padded_boxes, redact
    from tessera.detect.identity import false_match_rate, why_unavailable

    entries: list[dict] = []
    no_region: list[str] = []
    faces: list[tuple[np.ndarray, tuple[int, int, int, int]]] = []
    for name, img in images:
        found = find_regions(img, find, photo=True)
        boxes = padded_boxes(found, pad, img.shape[:2])
        kinds = [(f.kind, f.box) for f in found]
        faces += [(img, f.box) for f in found[:1] if f.kind == "face"]  # one face a photo: different people
        for method, cell in settings if boxes else ():
            out, _, regions = redact(img, boxes, method=method, cell=cell)
            for entry in check_redaction(img, out, kinds, regions):
                entries.append({"image": name, "setting": _label(method, cell), **entry})
        if not boxes:
            no_region.append(name)
        if progress:
            progress(f"redaction {name}")
    return {"entries": entries, "no_region": no_region, "false_match": false_match_rate(faces), "identity": why_unavailable()}


def _label(method: str, cell: int | None) -> str:
    return "solid" if method == "solid" else f"{method}, cell {'auto' if cell is None else cell}"


def _rate(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def summarize_redactions(entries: Sequence[dict]) -> list[dict]:
    """One row per setting, in the order first seen: regions attacked, faces among them, mean PSNR
    of the redaction and of the attack (dB), the attack's gain, and the fraction of faces dlib
    matches to the original person as redacted and after the attack (None without dlib)."""
    rows = []
    for label in dict.fromkeys(e["setting"] for e in entries):
        mine = [e for e in entries if e["setting"] == label]
        faces = [e for e in mine if e["kind"] == "face"]
        red, att = float(np.mean([e["redacted_psnr_db"] for e in mine])), float(np.mean([e["attack_psnr_db"] for e in mine]))
        rows.append({
            "setting": label, "regions": len(mine), "faces": len(faces), "psnr_redacted": red, "psnr_attack": att, "gain": att - red,
            "same_person_redacted": _rate([e.get("same_person_redacted") for e in faces]),
            "same_person_after_attack": _rate([e.get("same_person_after_attack") for e in faces]),
        })
    return rows


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.0f} %"


def redaction_markdown(result: dict) -> str:
    """The report's section: the table of :func:`summarize_redactions` and how to read it."""
    rows = summarize_redactions(result["entries"])
    lines = [
        "## Redaction strength against our restorer",
        "",
        "Each photo's found regions (padded by 0.15) hidden by each setting, then attacked by our restorer (the `faces` model "
        "on faces, `scenes` elsewhere), told the exact mosaic lattice, or that the region is blurred or filled. PSNR inside the "
        "region against the original. Same person: dlib's face-recognition distance < 0.6 (landmarks from the original).",
        "",
        "| setting | regions | faces | PSNR redacted (dB) | PSNR attack (dB) | gain (dB) | same person, redacted | same person, attack |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['setting']} | {r['regions']} | {r['faces']} | {r['psnr_redacted']:.2f} | {r['psnr_attack']:.2f} | {r['gain']:+.2f} | "
            f"{_pct(r['same_person_redacted'])} | {_pct(r['same_person_after_attack'])} |"
        )
    lines.append("")
    if result["identity"] is not None:
        lines.append(f"Identity not checked: {result['identity']}.")
    elif result["false_match"] is not None:
        lines.append(
            f"Chance level: dlib calls two different photos' faces the same person in {100 * result['false_match']:.1f} % of pairs; "
            "a 'same person, attack' rate near it means the attack did not bring the person back."
        )
    if result["no_region"]:
        lines.append(f"Nothing found to hide in {len(result['no_region'])} photo(s): {', '.join(result['no_region'][:8])}"
                     + (" ..." if len(result["no_region"]) > 8 else "") + ".")
    return "\n".join(lines) + "\n"
