"""Anonymization: face recall and speed, text-line recall, and how much of each redaction our own
restorer brings back (PSNR in the region, dlib re-identification).

    python -m benchmarks.anonymize [--part faces,scales,text,attack,cam,video] [--n 30] [--no-write]

faces: CenterFace (and the Haar fallback) on every faces/val crop, and on seeded 640x480 photos
composed from urban100 scenes (scenes/train) with 6 faces/val crops pasted at 24-120 px; a face
counts as found when a box holds its centre. Time per 640x480 photo (wall and process CPU).
scales: CenterFace on those photos at several network scales and thresholds (recall against CPU time).
text: seeded 640x480 pictures with 5 rendered lines each (system fonts, 14-40 px, plate-like lines
on white plates) on scenes/val photos; a line is found when found boxes cover >= 90 % of its ink box.
attack: faces/val crops (resized to 160 px long side), the detected face box padded by 0.15 hidden by
each method x cell size; the restorer ('faces' model, told the exact lattice / that it is a blur / a
hole) attacks it; PSNR of redaction and attack against the original inside the region; dlib's
face-recognition distance (< 0.6 = same person; landmarks from the original) of the redaction and of
the attack to the original, against chance: the attack of face i against the original of face j != i.
video: ../shared/data/video/carphone.mp4 anonymized frame by frame as the CLI does a video; every
face a more sensitive reference finder sees in an original frame checked to lie in the hidden region.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
START, END = "<!-- anonymize:start -->", "<!-- anonymize:end -->"


def _load(p: Path, long: int | None = None) -> np.ndarray:
    im = Image.open(p).convert("RGB")
    if long:
        s = long / max(im.size)
        im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.LANCZOS)
    return np.asarray(im)


def compose_faces(rng: np.random.Generator, n: int = 6, lo: int = 24, hi: int = 120):
    """A 640x480 urban scene with ``n`` face crops pasted at widths lo..hi, not overlapping."""
    scenes = sorted((DATA / "scenes" / "train").glob("urban100-*"))
    faces = sorted((DATA / "faces" / "val").glob("*.jpg"))
    bg = Image.open(scenes[rng.integers(len(scenes))]).convert("RGB").resize((640, 480), Image.LANCZOS)
    boxes: list[tuple[int, int, int, int]] = []
    while len(boxes) < n:
        f = Image.open(faces[rng.integers(len(faces))]).convert("RGB")
        w = int(rng.integers(lo, hi + 1))
        h = int(round(w * f.height / f.width))
        x, y = int(rng.integers(0, 640 - w)), int(rng.integers(0, 480 - h))
        if any(x < bx + bw + 8 and bx < x + w + 8 and y < by + bh + 8 and by < y + h + 8 for bx, by, bw, bh in boxes):
            continue
        bg.paste(f.resize((w, h), Image.LANCZOS), (x, y))
        boxes.append((x, y, w, h))
    return np.asarray(bg), boxes


def _holds_centre(found, box) -> bool:
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    return any(fx <= cx <= fx + fw and fy <= cy <= fy + fh for fx, fy, fw, fh in found)


FACE_FINDERS = (  # (label, backend, photo scale?): the default scale is what video frames get, the photo scale still photos
    ("centerface", "centerface", False),
    ("centerface at the photo scale (`hiding_scale`: 1.5x)", "centerface", True),
    ("haar", "haar", False),
)


def _find(im: np.ndarray, backend: str, photo: bool) -> list:
    import warnings

    from tessera.detect.faces import detect_faces, hiding_scale

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return detect_faces(im, backend=backend, scale=hiding_scale(*im.shape[:2]) if photo else None)


def _per_photo_ms(photos, photo: bool, reps: int = 2) -> str:
    """Median CPU and wall ms of CenterFace per photo over ``reps`` passes through ``photos``."""
    walls, cpus = [], []
    _find(photos[0][0], "centerface", photo)
    for _ in range(reps):
        for im, _gt in photos:
            t, c = time.perf_counter(), time.process_time()
            _find(im, "centerface", photo)
            walls.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
    return (f"median {1000 * np.median(cpus):.0f} ms process CPU (quartiles {1000 * np.percentile(cpus, 25):.0f}-"
            f"{1000 * np.percentile(cpus, 75):.0f}), {1000 * np.median(walls):.0f} ms wall (min {1000 * min(walls):.0f})")


def part_faces(n_photos: int) -> str:
    crops = sorted((DATA / "faces" / "val").glob("*.jpg"))
    lines = ["### Faces", ""]
    rows = []
    for label, backend, photo in FACE_FINDERS:
        hit = sum(bool(_find(_load(p), backend, photo)) for p in crops)
        rows.append(f"| faces/val crops ({len(crops)}) | {label} | {hit}/{len(crops)} = {100 * hit / len(crops):.1f} % | |")
    rng = np.random.default_rng(0)
    photos = [compose_faces(rng) for _ in range(n_photos)]
    for label, backend, photo in FACE_FINDERS:
        by_size = {"24-47": [0, 0], "48-79": [0, 0], "80-120": [0, 0]}
        false = 0
        for im, gt in photos:
            found = [f.box for f in _find(im, backend, photo)]
            for g in gt:
                k = "24-47" if g[2] < 48 else "48-79" if g[2] < 80 else "80-120"
                by_size[k][0] += _holds_centre(found, g)
                by_size[k][1] += 1
            false += sum(not any(_holds_centre([f], g) for g in gt) for f in found)
        hit, tot = sum(v[0] for v in by_size.values()), sum(v[1] for v in by_size.values())
        sizes = ", ".join(f"{k} px: {v[0]}/{v[1]}" for k, v in by_size.items())
        rows.append(f"| composed 640x480 photos ({n_photos} x 6 faces) | {label} | {hit}/{tot} = {100 * hit / tot:.1f} % ({sizes}) | {false} |")
    lines += ["| set | detector | faces found | false boxes |", "|---|---|---|---|", *rows, ""]
    lines.append(f"CenterFace per 640x480 photo (the {n_photos} composed photos, twice each; ONNX Runtime on the shared CPU): "
                 f"at the default scale (video frames) {_per_photo_ms(photos, False)}; at the photo scale {_per_photo_ms(photos, True)}.")
    return "\n".join(lines)


SCALES = ((1.0, 0.2), (1.0, 0.1), (1.25, 0.2), (1.5, 0.2), (1.5, 0.1))  # (network scale, threshold); (1.0, 0.2) is the default


def part_scales(n_photos: int) -> str:
    """CenterFace on the composed 640x480 photos at several network scales and score thresholds:
    recall, false boxes and process CPU per photo (the trade-off between the recall and speed targets)."""
    from tessera.detect.faces import detect_faces

    rng = np.random.default_rng(0)
    photos = [compose_faces(rng) for _ in range(n_photos)]
    detect_faces(photos[0][0])
    rows = []
    for scale, threshold in SCALES:
        hit = small = n_small = false = 0
        cpus = []
        for im, gt in photos:
            c = time.process_time()
            found = [f.box for f in detect_faces(im, scale=scale, threshold=threshold)]
            cpus.append(time.process_time() - c)
            hits = [_holds_centre(found, g) for g in gt]
            hit += sum(hits)
            small += sum(h for h, g in zip(hits, gt) if g[2] < 48)
            n_small += sum(g[2] < 48 for g in gt)
            false += sum(not any(_holds_centre([f], g) for g in gt) for f in found)
        tot = sum(len(gt) for _, gt in photos)
        rows.append(f"| {scale:g} ({math.ceil(640 * scale / 32) * 32}x{math.ceil(480 * scale / 32) * 32}) | {threshold:g} | {hit}/{tot} = {100 * hit / tot:.1f} % "
                    f"| {small}/{n_small} | {false} | {1000 * np.median(cpus):.0f} |")
    return "\n".join([
        "### Face detector: network scale and threshold", "",
        f"CenterFace on the {n_photos} composed 640x480 photos of the faces table ({n_photos} x 6 faces, 24-120 px).", "",
        "| scale (network input) | threshold | faces found | 24-47 px | false boxes | ms process CPU per photo (median) |",
        "|---|---|---|---|---|---|", *rows,
    ])


FONTS = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSerif-Italic.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSansNarrow-Bold.ttf",
]
WORDS = "main street open closed exit police taxi hotel cafe parking station north 24h sale bus stop private road".split()


def compose_text(rng: np.random.Generator, n: int = 5):
    """A 640x480 scenes/val photo with ``n`` rendered lines (one a plate on a white plate), their ink boxes."""
    scenes = sorted((DATA / "scenes" / "val").glob("*.png"))
    img = Image.open(scenes[rng.integers(len(scenes))]).convert("RGB").resize((640, 480), Image.LANCZOS)
    d = ImageDraw.Draw(img)
    fonts = [f for f in FONTS if Path(f).is_file()]
    boxes: list[tuple[int, int, int, int]] = []
    tries = 0
    while len(boxes) < n and tries < 200:
        tries += 1
        size = int(rng.integers(14, 41))
        font = ImageFont.truetype(fonts[rng.integers(len(fonts))], size) if fonts else ImageFont.load_default(size=size)
        plate = len(boxes) == 0
        if plate:
            text = f"{''.join(rng.choice(list('ABCDEFGHJKLMNPRSTUVWXYZ'), 2))}-{rng.integers(100, 1000)}-{''.join(rng.choice(list('ABCDEFGHJKLMNPRSTUVWXYZ'), 2))}"
        else:
            text = " ".join(rng.choice(WORDS, int(rng.integers(1, 4))).tolist()).title()
            if rng.random() < 0.3:
                text += f" {rng.integers(1, 999)}"
        l, t, r, b = d.textbbox((0, 0), text, font=font)
        w, h = r - l, b - t
        if w >= 600:
            continue
        x, y = int(rng.integers(10, 630 - w)), int(rng.integers(10, 470 - h))
        if any(x - 12 < bx + bw and bx < x + w + 12 and y - 12 < by + bh and by < y + h + 12 for bx, by, bw, bh in boxes):
            continue
        if plate:
            d.rectangle((x - 8, y - 6, x + w + 8, y + h + 6), fill=(245, 245, 245), outline=(20, 20, 20), width=2)
            colour = (10, 10, 10)
        else:
            # dark or light text on a translucent band, as on signs
            light = rng.random() < 0.5
            band = (30, 30, 30) if light else (235, 235, 225)
            d.rectangle((x - 6, y - 4, x + w + 6, y + h + 4), fill=band)
            colour = (250, 250, 250) if light else (15, 15, 15)
        d.text((x - l, y - t), text, fill=colour, font=font)
        boxes.append((x, y, w, h))
    return np.asarray(img), boxes


def _covered(found, box, need: float = 0.9) -> bool:
    x, y, w, h = box
    m = np.zeros((h, w), bool)
    for fx, fy, fw, fh in found:
        a, b = max(fx - x, 0), max(fy - y, 0)
        c, e = min(fx + fw - x, w), min(fy + fh - y, h)
        if c > a and e > b:
            m[b:e, a:c] = True
    return m.mean() >= need


def part_text(n_pictures: int) -> str:
    from tessera.detect.text import detect_text

    rng = np.random.default_rng(1)
    pics = [compose_text(rng) for _ in range(n_pictures)]
    lines = ["### Text lines", "", "| limit_side_len | lines covered >= 90 % | plates | false boxes | ms per 640x480 (wall) |", "|---|---|---|---|---|"]
    for side in (480, 736):
        hit = tot = plates = false = 0
        walls = []
        for im, gt in pics:
            t = time.perf_counter()
            found = [f.box for f in detect_text(im, limit_side_len=side)]
            walls.append(time.perf_counter() - t)
            for i, g in enumerate(gt):
                ok = _covered(found, g)
                hit += ok
                plates += ok and i == 0
                tot += 1
            false += sum(not any(_holds_centre([f], g) or _covered([f], g, 0.3) for g in gt) for f in found)
        lines.append(f"| {side} | {hit}/{tot} = {100 * hit / tot:.1f} % | {plates}/{len(pics)} | {false} | {1000 * np.median(walls[1:] or walls):.0f} |")
    lines.append("")
    lines.append("False boxes are boxes over none of the rendered lines: many are real text or text-like texture in the Set5/Set14 photos.")
    return "\n".join(lines)


CELLS = (4, 8, 12, 16, 24)


def part_attack(n: int, auto_cells: tuple[int, ...] = (), only_auto: bool = False) -> str:
    import tessera.anonymize as anon
    from tessera.anonymize import AUTO_CELLS, attack, redact
    from tessera.detect import identity
    from tessera.detect.faces import detect_faces
    from tessera.detect.found import grow_box

    rng = np.random.default_rng(2)
    crops = sorted((DATA / "faces" / "val").glob("*.jpg"))
    pick = [crops[i] for i in sorted(rng.choice(len(crops), size=min(n, len(crops)), replace=False))]
    faces = []
    for p in pick:
        im = _load(p, long=160)
        found = detect_faces(im)
        if not found:
            continue
        H, W = im.shape[:2]
        faces.append((im, found[0].box, grow_box(found[0].box, 0.15, W, H)))
    have_id = identity.available()
    originals = [identity.descriptor(im, fb) for im, fb, _ in faces] if have_id else []
    autos = auto_cells or (AUTO_CELLS,)
    fixed = () if only_auto else CELLS
    configs = [(m, c, a) for m in ("mosaic", "blur") for c, a in [*((c, None) for c in fixed), *((None, a) for a in autos)]]
    configs += [] if only_auto else [("solid", None, None)]
    rows, verdicts = [], []
    for method, cell, across in configs:
        anon.AUTO_CELLS = across or AUTO_CELLS
        ps_r, ps_a, same_r, same_a, chance, secs, cells = [], [], [], [], [], [], []
        attacked = []
        for k, (im, fb, box) in enumerate(faces):
            out, mask, info = redact(im, [box], method=method, cell=cell)
            t = time.perf_counter()
            a = attack(im, out, info[0], model="faces")
            secs.append(time.perf_counter() - t)
            ps_r.append(a.psnr_redacted)
            ps_a.append(a.psnr)
            cells.append(info[0]["cell"] or 0)
            if have_id:
                d_r = identity.descriptor(out, fb, landmarks_from=im)
                d_a = identity.descriptor(a.restored, fb, landmarks_from=im)
                same_r.append(identity.face_distance(d_r, originals[k]) < identity.MATCH_DISTANCE)
                same_a.append(identity.face_distance(d_a, originals[k]) < identity.MATCH_DISTANCE)
                attacked.append(d_a)
        if have_id:
            for i, d_a in enumerate(attacked):
                for j, d0 in enumerate(originals):
                    if i != j:
                        chance.append(identity.face_distance(d_a, d0) < identity.MATCH_DISTANCE)
        anon.AUTO_CELLS = AUTO_CELLS
        name = f"auto, {across} across" if across else ("-" if method == "solid" else str(cell))
        ident = (
            f"{100 * np.mean(same_r):.0f} % | {100 * np.mean(same_a):.0f} % | {100 * np.mean(chance):.1f} %" if have_id else "n/a | n/a | n/a"
        )
        rows.append(
            f"| {method} | {name}{f' (median {int(np.median(cells))} px)' if across else ''} | {np.mean(ps_r):.2f} | {np.mean(ps_a):.2f} | {np.mean(ps_a) - np.mean(ps_r):+.2f} | {ident} | {np.median(secs):.2f} |"
        )
        print(rows[-1], flush=True)
        if have_id and method == anon.AnonymizeConfig().method and cell is None and (across or AUTO_CELLS) == AUTO_CELLS:
            verdicts.append(_at_chance(f"{method}, `--cell auto`", same_a, chance))
    base = ""
    if have_id:
        genuine = [identity.face_distance(originals[i], originals[j]) < identity.MATCH_DISTANCE for i in range(len(originals)) for j in range(len(originals)) if i != j]
        base = f" Two different originals match each other in {100 * np.mean(genuine):.1f} % of pairs (dlib's false-match rate on these crops)."
    sizes = [max(b[2], b[3]) for _, _, b in faces]
    return "\n".join(
        [
            "### Redaction strength against our restorer (faces/val)" + (f": `--cell auto` only, {len(faces)} faces" if only_auto else ""),
            "",
            f"{len(faces)} faces/val crops at 160 px (hidden box: the CenterFace box padded by 0.15, median {int(np.median(sizes))} px long side); "
            f"`--cell auto` = {AUTO_CELLS} cells across the long side. Blur sigma = cell / 2. Attack: restore_image with the shipped "
            "`faces` model, told the exact lattice ('mean' sampling) for mosaics, kind 'blur' for blurs, 'hole' for solid fills. "
            "Same person: dlib ResNet distance < 0.6 to the original (landmarks from the original)." + base,
            "",
            "| method | cell | PSNR redacted (dB) | PSNR attack (dB) | gain | same person, redacted | same person, attack | chance (attack vs other originals) | s per attack |",
            "|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            *(verdicts if have_id else [f"Identity not measured: {identity.why_unavailable()}."]),
        ]
    )


def _at_chance(name: str, same: list[bool], chance: list[bool]) -> str:
    """Whether ``same`` (re-identified after the attack, one per face) is at the chance rate
    (attacked faces against other people's originals): the binomial probability of at least as
    many matches as seen, were each face matched at the chance rate (> 0.05: at chance level)."""
    n, k, p = len(same), int(sum(same)), float(np.mean(chance))
    tail = sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))
    verdict = "at chance level" if tail > 0.05 else "ABOVE chance level"
    return (f"Default ({name}): re-identified after the attack in {k} of {n} faces ({100 * k / n:.1f} %), against {100 * p:.1f} % "
            f"for the same attacked faces against other people's originals; P(>= {k} matches | chance) = {tail:.2f}: {verdict}.")


def part_cam(n_photos: int, weights: str = "facecam") -> str:
    """FaceCAM's CAM boxes against CenterFace on the same composed photos and on faces/val crops."""
    from tessera.detect.cam import detect_cam
    from tessera.detect.faces import detect_faces

    crops = sorted((DATA / "faces" / "val").glob("*.jpg"))
    rng = np.random.default_rng(0)
    photos = [compose_faces(rng) for _ in range(n_photos)]
    rows = []
    for name, fn in (("FaceCAM (CAM > 0.5)", lambda im: [f.box for f in detect_cam(im, weights=weights)]), ("CenterFace", lambda im: [f.box for f in detect_faces(im)])):
        crop_hit = 0
        for p in crops:
            im = _load(p)
            H, W = im.shape[:2]
            crop_hit += _holds_centre(fn(im), (0, 0, W, H))
        hit = tot = false = 0
        areas = []
        t = time.perf_counter()
        for im, gt in photos:
            found = fn(im)
            hit += sum(_holds_centre(found, g) for g in gt)
            tot += len(gt)
            false += sum(not any(_holds_centre([f], g) for g in gt) for f in found)
            areas += [f[2] * f[3] for f in found]
        ms = 1000 * (time.perf_counter() - t) / len(photos)
        rows.append(f"| {name} | {crop_hit}/{len(crops)} | {hit}/{tot} = {100 * hit / tot:.1f} % | {false} | {np.median(areas) if areas else 0:.0f} | {ms:.0f} |")
    return "\n".join(
        [
            "### Class activation maps (`--find cam`)",
            "",
            "| finder | faces/val crops: centre covered | composed photos: faces whose centre a box holds | false boxes | median box area (px) | ms per photo |",
            "|---|---|---|---|---|---|",
            *rows,
        ]
    )


VIDEO_REFERENCE = (2.0, 0.1)  # the reference finder on original frames: network scale x the default, threshold
SURE_FACE = 0.5  # reference boxes scoring at least this are faces; those below are listed for a look
LOOKED_AT = {  # low-score reference boxes inspected by eye (frames drawn with their boxes), 2026-12-01
    "carphone.mp4": "the bow tie (frame 85) and a dark patch of the seat by the window (frames 85, 86): neither is a face",
}


def _uncovered(frames, log, scale: float) -> tuple[list[float], list[str]]:
    """For every reference face of every frame (CenterFace at ``scale``, threshold VIDEO_REFERENCE[1])
    the fraction of its box inside the hidden boxes the log records; and 'FRAME (FRACTION, score S)'
    for each not wholly hidden."""
    from tessera.detect.faces import detect_faces

    covers, partial = [], []
    for img, entry in zip(frames, log):
        hidden = np.zeros(img.shape[:2], bool)
        for h in entry["hidden"]:
            x, y, w, hh = h["box"]
            hidden[y : y + hh, x : x + w] = True
        for f in detect_faces(img, scale=scale, threshold=VIDEO_REFERENCE[1]):
            x, y, w, hh = f.box
            covers.append((float(hidden[y : y + hh, x : x + w].mean()), f.score))
            if covers[-1][0] < 1.0:
                partial.append(f"{entry['frame']} ({100 * covers[-1][0]:.0f} %, score {f.score:.2f})")
    return covers, partial


def part_video(clips: tuple[str, ...] = ("carphone.mp4",)) -> str:
    """Every frame of each clip anonymized as `tessera anonymize` does a video (anonymize_frames:
    CenterFace at the default scale in every frame, boxes padded, the 3 frames before and after
    hidden too); the hidden boxes against a more sensitive reference finder on the *original*
    frame (CenterFace at 2x the network scale, threshold 0.1). A reference face is uncovered when
    less than all of its box lies in the hidden region."""
    from tessera.anonymize import AnonymizeConfig, anonymize_frames
    from tessera.detect.faces import default_scale
    from tessera.io.video import read_frames

    rows, notes = [], []
    for clip in clips:
        frames = [f.image for f in read_frames(DATA / "video" / clip)]
        H, W = frames[0].shape[:2]
        log: list = []
        t = time.perf_counter()
        for _ in anonymize_frames(iter(frames), AnonymizeConfig(), log=log):
            pass
        per_frame = (time.perf_counter() - t) / len(frames)
        covers, partial = _uncovered(frames, log, VIDEO_REFERENCE[0] * default_scale(H, W))
        sure = [c for c, score in covers if score >= SURE_FACE]
        rows.append(
            f"| {clip} ({W}x{H}) | {len(frames)} | {sum(bool(e['found']) for e in log)} | {len(sure)} | "
            f"{sum(c < 1.0 for c in sure)} | {100 * min(sure, default=1.0):.1f} % | {len(covers) - len(sure)} | "
            f"{sum(c < 1.0 for c, score in covers if score < SURE_FACE)} | {1000 * per_frame:.0f} |"
        )
        if partial:
            notes.append(f"{clip}: reference boxes not wholly hidden: {', '.join(partial[:12])}{' ...' if len(partial) > 12 else ''}"
                         + (f"; looked at: {LOOKED_AT[clip]}." if clip in LOOKED_AT else "; not looked at."))
    return "\n".join([
        "### Video: faces left uncovered",
        "",
        "Every frame anonymized as `tessera anonymize` does a video (CenterFace at the default scale in each frame, boxes padded by "
        "0.15, the boxes of the 3 frames before and after hidden too, default blur); the hidden region checked against a more "
        f"sensitive reference finder on the original frame (CenterFace at {VIDEO_REFERENCE[0]:g}x the network scale, threshold "
        f"{VIDEO_REFERENCE[1]:g}). A reference box scoring >= {SURE_FACE:g} is a face; weaker ones are counted apart and listed.",
        "",
        "| clip | frames | frames where the pipeline found a face | reference faces (score >= 0.5) | of them not wholly hidden | "
        "least hidden fraction of one | weaker reference boxes | of them not wholly hidden | ms per frame (wall, finding + hiding) |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        *notes,
    ])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", default="faces,text,attack")
    ap.add_argument("--n", type=int, default=30, help="faces attacked; composed photos and text pictures")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--auto-cells", default="", help="attack: cells across the region for the auto rows, e.g. 4,5,6")
    ap.add_argument("--cam-weights", default="facecam", help="cam: FaceCAM weights (shipped name or path)")
    ap.add_argument("--only-auto", action="store_true", help="attack: only the auto rows")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    parts = [p.strip() for p in args.part.split(",")]
    out = []
    for p in parts:
        t, load0 = time.perf_counter(), os.getloadavg()[0]
        if p == "faces":
            out.append(part_faces(args.n))
        elif p == "scales":
            out.append(part_scales(args.n))
        elif p == "text":
            out.append(part_text(args.n))
        elif p == "attack":
            autos = tuple(int(v) for v in args.auto_cells.split(",") if v.strip())
            out.append(part_attack(args.n, autos, args.only_auto))
        elif p == "video":
            out.append(part_video())
        elif p == "cam":
            out.append(part_cam(args.n, args.cam_weights))
        else:
            raise SystemExit(f"unknown part {p!r}")
        out[-1] += (f"\n\n(This part: run {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, {time.perf_counter() - t:.0f} s; "
                    f"load average {load0:.1f} at its start and {os.getloadavg()[0]:.1f} at its end on the 2 shared cores.)")
        print(out[-1], flush=True)
    if not args.no_write:
        from benchmarks._results import RESULTS, write_section

        head = (
            "## Anonymization (`benchmarks/anonymize.py`)\n\n"
            f"Machine: {platform.machine()} CPU with 2 cores shared with other jobs (each part says the load it ran under; wall "
            f"times grow with it), torch {torch.__version__} CPU, onnxruntime CPU provider. Faces count as found when a box holds "
            "their centre; the composed photos are urban100 scenes with 6 pasted faces/val crops each (tight crops pasted as "
            f"rectangles: harder than real faces with a head around them). Parts rerun last: {', '.join(parts)}; the others' "
            "sections are kept from earlier runs.\n"
        )
        text = RESULTS.read_text() if RESULTS.exists() else ""
        # keep the sections of parts not rerun
        old = {}
        if START in text:
            block = text.split(START, 1)[1].split(END, 1)[0]
            for chunk in block.split("\n### ")[1:]:
                old[chunk.split("\n", 1)[0].strip()] = "### " + chunk.rstrip()
        new = {o.split("\n", 1)[0][4:].strip(): o for o in out}
        merged = {**old, **new}
        write_section(head + "\n" + "\n\n".join(merged.values()), START, END)


if __name__ == "__main__":
    main()
