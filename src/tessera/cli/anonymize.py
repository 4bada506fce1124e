"""`tessera anonymize`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer

from tessera.cli.app import app, console
from tessera.cli.common import Job, check_not_input, plan_outputs, run_jobs


@dataclass(frozen=True)
class AnonymizeCliConfig:
    find: tuple[str, ...] = ("faces",)
    method: str = "blur"
    cell: int | None = None
    pad: float = 0.15
    threshold: float | None = None
    keep_metadata: bool = False
    dry_run: bool = False
    check: bool = False
    overwrite: bool = False
    jpeg_quality: int = 95

    def __post_init__(self) -> None:
        self.library()  # validates find, method, cell, pad, threshold

    def library(self):
        from tessera.anonymize import AnonymizeConfig

        return AnonymizeConfig(find=self.find, method=self.method, cell=self.cell, pad=self.pad, threshold=self.threshold)


def _exif_of(path: Path) -> bytes | None:
    """The file's EXIF with the orientation reset to 1 (the pixels were turned upright on reading)."""
    from PIL import Image

    with Image.open(path) as im:
        exif = im.getexif()
        if not exif:
            return None
        if 0x0112 in exif:
            exif[0x0112] = 1
        return exif.tobytes()


def _write_json(path: Path, doc: dict, overwrite: bool) -> None:
    """Write JSON through the one atomic, no-follow writer (refusing to replace without overwrite)."""
    from tessera.io.image import write_json

    write_json(path, doc, overwrite=overwrite)


def _check(rgb, result, doc: dict) -> None:
    """--check: attack every hidden region with our restorer; PSNR and (faces) identity per region."""
    from tessera.anonymize import check_redaction

    doc["check"] = check_redaction(rgb, result.image, [(f.kind, f.box) for f in result.found], result.regions)


CHECK_FRAMES = 4  # --check on a video attacks this many frames (spread over those where something was found)


def _own_regions(entry: dict) -> list[dict]:
    """The hidden regions of one video frame that hide what was found in that frame: for each
    found box the hidden region overlapping it most (the others come from the frames around it)."""
    own = []
    for f in entry["found"]:
        fx, fy, fw, fh = f["box"]

        def overlap(region: dict) -> int:
            x, y, w, h = region["box"]
            return max(0, min(x + w, fx + fw) - max(x, fx)) * max(0, min(y + h, fy + fh) - max(y, fy))

        best = max(entry["hidden"], key=overlap, default=None)
        if best is not None and overlap(best) > 0 and best not in own:
            own.append(best)
    return own


def _check_video(source: Path, published: Path, log: list[dict]) -> list[dict]:
    """--check on a video: up to CHECK_FRAMES frames where something was found, evenly spread, each
    found object's hidden region attacked as published (decoded from the encoded output, which is
    what an attacker gets). The same measures as for a photo, with the frame index."""
    from tessera.anonymize import check_redaction
    from tessera.io.video import read_frames

    candidates = [e["frame"] for e in log if _own_regions(e)]
    if not candidates:
        return []
    k = min(CHECK_FRAMES, len(candidates))
    pick = sorted({candidates[round(i * (len(candidates) - 1) / max(k - 1, 1))] for i in range(k)})
    originals = {f.index: f.image for f in read_frames(source) if f.index in pick}
    outputs = {f.index: f.image for f in read_frames(published) if f.index in pick}
    checks = []
    for i in pick:
        found = [(d["kind"], tuple(d["box"])) for d in log[i]["found"]]
        checks += [{"frame": i, **entry} for entry in check_redaction(originals[i], outputs[i], found, _own_regions(log[i]))]
    return checks


def _plan_videos(videos: list[Path], output: Path, single: bool) -> list[Job]:
    from tessera.io.video import WRITE_FORMATS

    if single and output.suffix:
        if output.suffix.lower() not in WRITE_FORMATS:
            raise typer.BadParameter(f"cannot write {output.suffix} videos; use one of {', '.join(sorted(WRITE_FORMATS))}", param_hint="--output")
        return [Job(videos[0], output, Path(videos[0].name))]
    if output.exists() and not output.is_dir():
        raise typer.BadParameter(f"output {output} is a file, but videos need an output folder")
    return [Job(v, output / (v.name if v.suffix.lower() in WRITE_FORMATS else v.stem + ".mp4"), Path(v.name)) for v in videos]


def anonymize_video(job: Job, cfg: AnonymizeCliConfig) -> None:
    """A video, streamed: frames decoded, anonymized with a temporal window, encoded; audio and
    subtitle streams copied. Container and stream tags (title, comment, location, creation time,
    encoder...) and data streams (GPS telemetry) are dropped unless --keep-metadata, as EXIF is
    for images. --check attacks a few published frames (:func:`_check_video`); --dry-run writes
    the JSON only."""
    from tessera.anonymize import anonymize_frames
    from tessera.io.video import read_frames, transcode

    json_path = job.target.with_suffix(".json")
    if json_path.exists() and not cfg.overwrite:
        raise FileExistsError(f"{json_path} exists (use --overwrite)")
    log: list = []
    lib = cfg.library()
    if cfg.dry_run:
        for _ in anonymize_frames(read_frames(job.source), lib, log=log):
            pass
    else:
        transcode(job.source, job.target, lambda frames: anonymize_frames(frames, lib, log=log), overwrite=cfg.overwrite,
                  keep_metadata=cfg.keep_metadata)
    doc = {
        "video": str(job.source), "frames": len(log), "window": 3, "dry_run": cfg.dry_run,
        "frames_with_finds": sum(bool(e["found"]) for e in log), "per_frame": log,
        "metadata": "kept" if cfg.keep_metadata else "stripped (container and stream tags, data and attachment streams)",
    }
    if cfg.check:
        doc["check"] = _check_video(job.source, job.target, log)
    _write_json(json_path, doc, cfg.overwrite)


def anonymize_file(job: Job, cfg: AnonymizeCliConfig) -> None:
    import numpy as np

    from tessera.io.video import is_video_path

    if is_video_path(job.source):
        return anonymize_video(job, cfg)

    from tessera.anonymize import anonymize_image
    from tessera.io.image import read_image, write_image

    check_not_input(job)
    rgb, info = read_image(job.source)
    json_path = job.target.with_suffix(".json")
    boxes_path = job.target.with_name(job.target.stem + ".boxes.png")
    for p in [json_path] + ([boxes_path] if cfg.dry_run else [job.target]):
        if p.exists() and not cfg.overwrite:
            raise FileExistsError(f"{p} exists (use --overwrite)")
    result = anonymize_image(rgb, cfg.library())
    doc = {"image": str(job.source), "size": [int(rgb.shape[1]), int(rgb.shape[0])], **result.to_json()}
    if cfg.dry_run:
        import cv2

        view = rgb.copy()
        colours = {"face": (255, 0, 0), "text": (0, 160, 255), "cam": (255, 200, 0)}
        t = max(1, round(max(rgb.shape[:2]) / 400))
        for r in result.regions:
            x, y, w, h = r["box"]
            cv2.rectangle(view, (x, y), (x + w - 1, y + h - 1), (255, 255, 0), t)
        for f in result.found:
            x, y, w, h = f.box
            cv2.rectangle(view, (x, y), (x + w - 1, y + h - 1), colours.get(f.kind, (255, 0, 0)), t)
        write_image(boxes_path, view, overwrite=cfg.overwrite)
        doc["dry_run"] = True
        _write_json(json_path, doc, cfg.overwrite)
        return
    if cfg.check:
        _check(rgb, result, doc)
    exif = _exif_of(job.source) if cfg.keep_metadata else None
    # the pixels alone are written: no EXIF (GPS, camera, times), XMP or text chunks unless kept
    alpha = info.alpha
    if alpha is not None:
        alpha = np.where(result.mask, 255, alpha).astype(np.uint8)  # a transparent hidden pixel would show nothing, but keep it opaque
    write_image(job.target, result.image, alpha=alpha, overwrite=cfg.overwrite, quality=cfg.jpeg_quality, icc_profile=info.icc_profile, exif=exif)
    _write_json(json_path, doc, cfg.overwrite)


def _parse_find(text: str) -> tuple[str, ...]:
    from tessera.anonymize import FINDERS

    names = tuple(p.strip().lower() for p in text.split(",") if p.strip())
    if not names:
        raise typer.BadParameter(f"name at least one of {', '.join(FINDERS)}", param_hint="--find")
    for n in names:
        if n not in FINDERS:
            raise typer.BadParameter(f"unknown finder {n!r}: use {', '.join(FINDERS)} (comma-separated)", param_hint="--find")
    return tuple(dict.fromkeys(names))


def parse_cell(text: str, flag: str = "--cell") -> int | None:
    """A cell flag's value: 'auto' -> None, else a whole number of pixels in 2..512 (a usage error on ``flag`` otherwise)."""
    t = text.strip().lower()
    if t == "auto":
        return None
    try:
        c = int(t)
    except ValueError:
        raise typer.BadParameter(f"must be 'auto' or a whole number of pixels, got {text!r}", param_hint=flag) from None
    if not 2 <= c <= 512:
        raise typer.BadParameter(f"must be 'auto' or 2..512 pixels, got {c}", param_hint=flag)
    return c


@app.command()
def anonymize(
    inputs: list[Path] = typer.Argument(..., help="Image files or folders (walked recursively).", show_default=False),
    output: Path = typer.Option(..., "--output", "-o", help="Output file (for one input) or folder; NAME.json (what was found) goes beside each output."),
    find: str = typer.Option("faces", "--find", help="What to hide, comma-separated: faces, text (incl. licence plates), cam (our face classifier's activation map)."),
    method: str = typer.Option("blur", "--method", help="blur (default: our restorer could not undo it at --cell auto), mosaic or solid."),
    cell: str = typer.Option("auto", "--cell", help="Mosaic cell (blur: 2 x sigma) in pixels, or 'auto' (scales with each region)."),
    pad: float = typer.Option(0.15, "--pad", help="Grow each found box by this fraction of its size on every side."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Detector score threshold in (0, 1); lower finds more (default: each finder's own)."),
    keep_metadata: bool = typer.Option(False, "--keep-metadata", help="Keep the input's EXIF (incl. GPS!) or a video's tags and data streams. By default only the pixels (and colour profile) are written."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Hide nothing: write NAME.json and NAME.boxes.png (the boxes drawn on the image) only."),
    check: bool = typer.Option(False, "--check", help="Attack each redaction with our restorer; PSNR and (faces) identity match go into NAME.json."),
    jpeg_quality: int = typer.Option(95, "--jpeg-quality", min=1, max=100, help="JPEG/WebP quality of the output (as on restore; PNG keeps every pixel exact)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
) -> None:
    """Find faces and text and hide them (mosaic, blur or solid). Check the result: a missed face is a leak."""
    import warnings

    from tessera.anonymize import METHODS

    if method not in METHODS:
        raise typer.BadParameter(f"must be one of {', '.join(METHODS)}, got {method!r}", param_hint="--method")
    if not 0.0 <= pad <= 2.0:
        raise typer.BadParameter(f"must be between 0 and 2, got {pad}", param_hint="--pad")
    if threshold is not None and not 0.0 < threshold < 1.0:
        raise typer.BadParameter(f"must be between 0 and 1 (exclusive), got {threshold}", param_hint="--threshold")
    if dry_run and check:
        raise typer.BadParameter("--check attacks a redaction, which --dry-run does not make", param_hint="--check")
    cfg = AnonymizeCliConfig(
        find=_parse_find(find), method=method, cell=parse_cell(cell), pad=pad, threshold=threshold,
        keep_metadata=keep_metadata, dry_run=dry_run, check=check, overwrite=overwrite, jpeg_quality=jpeg_quality,
    )
    from tessera.io.video import is_video_path

    videos = [p for p in inputs if p.is_file() and is_video_path(p)]
    images = [p for p in inputs if p not in videos]
    jobs = plan_outputs(images, output) if images else []
    if videos:
        jobs += _plan_videos(videos, output, single=len(inputs) == 1)
    if check and "faces" in cfg.find:
        from tessera.detect.identity import why_unavailable

        reason = why_unavailable()
        if reason:
            from rich.markup import escape

            console.print(f"[yellow]warning:[/] --check cannot tell whether a face is still recognizable: {escape(reason)}", highlight=False)
    if "faces" in cfg.find:
        from tessera.detect.faces import face_backend

        if face_backend() == "haar":
            console.print(
                "[yellow]warning:[/] CenterFace is not installed (pip install 'tessera[anonymize]'); "
                "using OpenCV's Haar cascades, which miss many faces",
                highlight=False,
            )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # the fallback warning is shown once above
        raise typer.Exit(run_jobs(jobs, lambda job: anonymize_file(job, cfg), "anonymize", cfg.overwrite or cfg.dry_run))
