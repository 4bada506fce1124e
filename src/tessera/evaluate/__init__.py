"""Evaluation: pure metrics, seeded cases, the runner behind `tessera eval`, and its reports.

- :mod:`.metrics`: PSNR, SSIM, interior, blockiness, detail ratio, NIQE (pure functions);
- :mod:`.cases`: seeded cases made from a folder of clean photos;
- :mod:`.critic`: the two-sample critic (a fresh CNN that tells restorations from photos);
- :mod:`.runner`: :class:`EvalConfig` and :func:`run_eval` (restore every case with every model, score it);
- :mod:`.report`: per-model means, the markdown table, the chart and the sample sheet.
"""

from tessera.evaluate.cases import RESTORE_KINDS, Case, load_folder, make_cases, make_zoo_cases
from tessera.evaluate.critic import critic_accuracy, pair_crops, region_crops, two_sample_critic
from tessera.evaluate.metrics import (
    NIQE_MODEL,
    NIQE_PATCH,
    NIQE_SHARPNESS,
    NiqeModel,
    blockiness,
    detail_ratio,
    fit_aggd,
    fit_ggd,
    fit_niqe,
    gradient_magnitude,
    interior,
    mscn,
    mvg_distance,
    niqe,
    niqe_features,
    psnr,
    region_box,
    ssim,
)
from tessera.evaluate.report import PSNR_CAP, REPORT_FILES, bar_chart, markdown_table, sample_sheet, summarize, write_report
from tessera.evaluate.runner import EvalConfig, Score, eval_cases, run_eval, score_case, score_model

__all__ = [
    "NIQE_MODEL", "NIQE_PATCH", "NIQE_SHARPNESS", "PSNR_CAP", "REPORT_FILES", "RESTORE_KINDS",
    "Case", "EvalConfig", "NiqeModel", "Score",
    "bar_chart", "blockiness", "critic_accuracy", "detail_ratio", "eval_cases", "fit_aggd", "fit_ggd", "fit_niqe",
    "gradient_magnitude", "interior", "load_folder", "make_cases", "make_zoo_cases", "markdown_table", "mscn",
    "mvg_distance", "niqe", "niqe_features", "pair_crops", "psnr", "region_box", "region_crops", "run_eval",
    "sample_sheet", "score_case", "score_model", "ssim", "summarize", "two_sample_critic", "write_report",
]
