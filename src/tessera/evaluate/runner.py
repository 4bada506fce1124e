"""The benchmark runner behind `tessera eval`: each model restores every case given the true mask
and grid (and, with ``auto``, the mask it detects itself), and we score inside the hidden region only."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tessera.config import ConfigError
from tessera.evaluate.cases import RESTORE_KINDS, Case, load_folder, make_cases, make_zoo_cases
from tessera.evaluate.metrics import blockiness, detail_ratio, interior, niqe, psnr, ssim
from tessera.evaluate.critic import critic_accuracy
from tessera.evaluate.report import refuse_existing_report, summarize, write_report


@dataclass
class Score:
    model: str
    case: str
    psnr: float
    ssim: float
    blockiness: float | None
    residual: float | None
    seconds: float
    auto: bool = False
    extra: dict = field(default_factory=dict)
    detail: float | None = None  # mean gradient magnitude in the region, restored / original (1.0 = as detailed as the photo)
    niqe: float | None = None  # NIQE of the region's box (lower = more natural); None unless asked for
    niqe_original: float | None = None  # the same for the original photo (the target)


def score_case(
    case: Case, model: str, *, auto: bool = False, restore: Callable | None = None, restorer=None, with_niqe: bool = False
) -> tuple[Score, np.ndarray]:
    """Restore one case with ``model`` (given the true mask and grid, or detecting them when
    ``auto``) and score the result inside the true mask (NIQE too when ``with_niqe``)."""
    from tessera.restore.consistency import remosaic_residual
    from tessera.restore.pipeline import restore_image
    from tessera.restore.restorer import from_spec

    restore = restore or restore_image
    restorer = restorer or from_spec(model)  # model: a name, a path, or MODEL+patch
    t0 = time.perf_counter()
    if auto:
        res = restore(case.degraded, None, restorer=restorer)
    else:
        known = case.grid is not None or case.nominal is not None  # zoo cases are mosaics, grid or not
        kind = "hole" if case.kind == "hole" else "mosaic" if known else "auto"
        res = restore(case.degraded, case.mask, restorer=restorer, grid=case.grid, kind=kind)
    dt = time.perf_counter() - t0
    out = res.image
    g = case.grid or case.nominal
    inner = interior(case.mask)
    extra = {
        "psnr_interior": psnr(out, case.clean, inner),
        "psnr_edge": psnr(out, case.clean, case.mask & ~inner),
        "cell": max(g.cell_h, g.cell_w) if g is not None else None,
        "sampling": g.sampling if g is not None else None,
        "area": int(case.mask.sum()),
    }
    return (
        Score(
            model=model,
            case=case.name,
            psnr=psnr(out, case.clean, case.mask),
            ssim=ssim(out, case.clean, case.mask),
            blockiness=blockiness(out, case.mask, g) if g is not None else None,
            residual=remosaic_residual(out, case.degraded, case.mask, g) if case.grid is not None and g.sampling == "mean" else None,
            seconds=dt,
            auto=auto,
            extra=extra,
            detail=detail_ratio(out, case.clean, case.mask),
            niqe=niqe(out, case.mask) if with_niqe else None,
            niqe_original=niqe(case.clean, case.mask) if with_niqe else None,
        ),
        out,
    )


@dataclass(frozen=True)
class EvalConfig:
    """One evaluation: ``cases`` seeded cases of the photos in ``data`` (of ``kinds``, or per zoo
    generator x format; ``zoo=("all",)`` names every generator), restored by every one of ``models``
    (names, .safetensors files, or MODEL+patch), reported into the folder ``output``."""

    data: Path
    models: tuple[str, ...] = ("smooth", "telea", "ns", "default")
    output: Path = Path("eval")
    cases: int = 40
    seed: int = 0
    kinds: tuple[str, ...] = RESTORE_KINDS
    jpeg: int | None = None
    auto: bool = False
    max_side: int = 512
    zoo: tuple[str, ...] = ()  # zoo generators: then ``cases`` per generator x format instead of ``kinds``
    formats: tuple[str, ...] = ("png",)
    niqe: bool = False  # NIQE of each region (slower: about 6 ms per 32-px patch)
    critic_data: Path | None = None  # photos (not the eval folder) to make the two-sample critic's training cases from
    critic_cases: int = 40
    critic_steps: int = 300
    overwrite: bool = False  # replace an existing report's files
    # the redaction section: these methods (of tessera.anonymize.METHODS) at these cells (None = auto)
    # hide the faces of the first ``cases`` photos, and our restorer attacks them (empty: no section)
    redaction: tuple[str, ...] = ()
    redaction_cells: tuple[int | None, ...] = (None,)

    def __post_init__(self) -> None:
        if self.cases < 1 or self.critic_cases < 1 or self.critic_steps < 1:
            raise ConfigError("cases", "cases, critic_cases and critic_steps must be >= 1")
        self._check_folders()
        self._check_models()
        self._check_generators()
        self._check_redaction()

    def _check_redaction(self) -> None:
        from tessera.anonymize import METHODS

        bad = [m for m in self.redaction if m not in METHODS]
        if bad:
            raise ConfigError("redaction", f"choose redaction methods from {', '.join(METHODS)} (not {', '.join(bad)})")
        if not self.redaction_cells or any(c is not None and not 2 <= c <= 512 for c in self.redaction_cells):
            raise ConfigError("redaction_cells", "redaction cells must be 'auto' or 2..512 pixels")

    def _check_folders(self) -> None:
        if not Path(self.data).is_dir():
            raise ConfigError("data", f"{self.data} is not a folder")
        if self.critic_data is not None and not Path(self.critic_data).is_dir():
            raise ConfigError("critic_data", f"{self.critic_data} is not a folder")
        if Path(self.output).exists() and not Path(self.output).is_dir():
            raise ConfigError("output", f"{self.output} is a file; the report needs a folder")

    def _check_models(self) -> None:
        from tessera.restore.restorer import is_model, model_names, parse_spec

        if not self.models:
            raise ConfigError("models", "name at least one model")
        for m in self.models:
            if not is_model(str(parse_spec(m)[0])):
                raise ConfigError("models", f"unknown model {m!r}; choose from {', '.join(model_names())} (+patch)")

    def _check_generators(self) -> None:
        from tessera.mosaic.synth import KINDS, ZOO, ZOO_FORMATS

        bad = [k for k in self.kinds if k not in KINDS]
        if not self.kinds or bad:
            raise ConfigError("kinds", f"choose case kinds from {', '.join(KINDS)}" + (f" (not {', '.join(bad)})" if bad else ""))
        if self.zoo == ("all",):
            object.__setattr__(self, "zoo", tuple(ZOO))
        if [g for g in self.zoo if g not in ZOO]:
            raise ConfigError("zoo", f"choose zoo generators from {', '.join(ZOO)} or all")
        if not self.formats or [f for f in self.formats if f not in ZOO_FORMATS]:
            raise ConfigError("formats", f"choose formats from {', '.join(ZOO_FORMATS)}")

    def total_steps(self) -> int:
        """How many times :func:`run_eval` calls its progress callback (at most: the redaction
        section calls it once per photo, and ``data`` may hold fewer than ``cases``)."""
        per_model = self.cases * (len(self.zoo) * len(self.formats) if self.zoo else 1) * (2 if self.auto else 1)
        redaction = self.cases if self.redaction else 0
        return len(self.models) * per_model + (len(self.models) if self.critic_data is not None else 0) + redaction


def eval_cases(cfg: EvalConfig) -> tuple[list[Case], list[Case] | None]:
    """The seeded cases of ``cfg.data`` (zoo generators x formats, or kinds), and the critic's
    training cases of ``cfg.critic_data`` (None without it)."""
    images = load_folder(cfg.data, cfg.max_side)
    if cfg.zoo:
        cases = make_zoo_cases(images, cfg.cases, cfg.seed, cfg.zoo, cfg.formats)
    else:
        cases = make_cases(images, cfg.cases, cfg.seed, cfg.kinds, cfg.jpeg)
    critic_cases = None
    if cfg.critic_data is not None:
        critic_cases = make_cases(load_folder(cfg.critic_data, cfg.max_side), cfg.critic_cases, cfg.seed + 1, cfg.kinds, cfg.jpeg)
    return cases, critic_cases


def score_model(
    cfg: EvalConfig, model: str, restorer, cases: list[Case], progress: Callable[[str], None] | None = None
) -> tuple[list[Score], list[np.ndarray]]:
    """Every case restored by one model (given the true mask, then detecting it when ``cfg.auto``):
    the scores, and the outputs given the true mask (for the sample sheet and the critic)."""
    scores, outs = [], []
    for auto in (False, True) if cfg.auto else (False,):
        for case in cases:
            s, out = score_case(case, model, auto=auto, restorer=restorer, with_niqe=cfg.niqe)
            scores.append(s)
            if not auto:
                outs.append(out)
            if progress:
                progress(f"{model}{' auto' if auto else ''} {case.name}")
    return scores, outs


def run_eval(cfg: EvalConfig, progress: Callable[[str], None] | None = None) -> tuple[dict, list[Score]]:
    """Make the cases, restore them with every model, and write report.md, scores.json, psnr.png and
    samples.png into ``cfg.output`` (refused before any work when a report is there, unless
    ``cfg.overwrite``); with ``cfg.redaction``, the redaction section too (report.md and
    redaction.json: :mod:`tessera.evaluate.redaction`). Returns (summary, scores)."""
    from tessera.restore.restorer import from_spec

    refuse_existing_report(Path(cfg.output), cfg.overwrite)  # before the work, not after it
    cases, critic_cases = eval_cases(cfg)
    restorers = {model: from_spec(model) for model in cfg.models}  # load weights before timing; fail early
    scores: list[Score] = []
    outputs: dict[str, list[np.ndarray]] = {}
    critic: dict[str, float] = {}
    for model in cfg.models:
        model_scores, outputs[model] = score_model(cfg, model, restorers[model], cases, progress)
        scores += model_scores
        if critic_cases is not None:
            critic[model] = critic_accuracy(model, critic_cases, cases, outputs[model], steps=cfg.critic_steps, seed=cfg.seed)
            if progress:
                progress(f"{model} critic")
    summary = summarize(scores, critic)
    redaction = None
    if cfg.redaction:
        from tessera.evaluate.redaction import redaction_settings, score_redactions

        photos = load_folder(cfg.data, cfg.max_side)[: cfg.cases]
        redaction = score_redactions(photos, redaction_settings(cfg.redaction, cfg.redaction_cells), progress=progress)
    write_report(cfg, cases, summary, scores, outputs, redaction)
    return summary, scores
