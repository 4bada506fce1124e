"""The redaction section of `tessera eval` end to end through the CLI: faces hidden by each setting,
attacked by our restorer, PSNR and identity reported (the same code as `tessera anonymize --check`)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tessera.cli import app
from tessera.detect import identity

def invoke(*args) -> tuple[int, str]:
    return (r := CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "400"})).exit_code, r.output


def test_eval_redaction_section_attacks_each_setting(tmp_path, one_thread, centerface_faces):
    data = tmp_path / "photos"
    data.mkdir()
    for i in (0, 2):  # two people (dlib: 0.72 apart)
        face = Image.open(centerface_faces[i]).convert("RGB")
        canvas = Image.new("RGB", (face.width + 40, face.height + 40), (120, 120, 120))
        canvas.paste(face, (20, 20))
        canvas.save(data / f"face{i}.png")
    Image.fromarray(np.full((96, 96, 3), 90, np.uint8)).save(data / "wall.png")  # nothing to hide
    out = tmp_path / "report"
    code, text = invoke("eval", "--data", data, "--models", "smooth", "--cases", "3", "--kinds", "box",
                        "--redaction", "blur,solid", "--redaction-cells", "4", "-o", out)
    assert code == 0, text
    doc = json.loads((out / "redaction.json").read_text())
    assert doc["no_region"] == ["wall.png"]
    rows = {r["setting"]: r for r in doc["rows"]}
    assert list(rows) == ["blur, cell 4", "solid"] and all(r["regions"] == 2 and r["faces"] == 2 for r in rows.values())
    for e in doc["entries"]:
        assert e["kind"] == "face" and e["model"] == "faces" and e["image"] in ("face0.png", "face2.png")
        x, y, w, h = e["box"]
        assert x <= 20 + 10 and y <= 20 + 10 and x + w >= 20 + 100 and y + h >= 20 + 100  # the padded face box
    # a 4-px blur barely hides anything; a solid fill hides everything and the attack can only guess
    assert rows["blur, cell 4"]["psnr_redacted"] > 25 > 12 > rows["solid"]["psnr_redacted"]
    assert rows["solid"]["psnr_attack"] > rows["solid"]["psnr_redacted"] + 2  # the restorer's guess beats black
    report = (out / "report.md").read_text()
    assert "## Redaction strength against our restorer" in report and "| solid | 2 | 2 |" in report
    assert "| solid | 2 | 2 |" in text  # the section is printed too
    if identity.available():
        assert rows["blur, cell 4"]["same_person_redacted"] == 1.0  # sigma 2 px: still the person
        assert rows["solid"]["same_person_redacted"] == 0.0 and rows["solid"]["same_person_after_attack"] == 0.0
        assert doc["identity"] is None and doc["false_match"] == 0.0 and "Chance level" in report
    else:
        assert rows["solid"]["same_person_redacted"] is None and "Identity not checked" in report and "identities not checked: dlib is not installed (pip install 'tessera[anonymize]'" in text


@pytest.mark.parametrize(
    "flags, message",
    [(["--redaction", "swirl"], "choose redaction methods"), (["--redaction", "blur", "--redaction-cells", "1"], "2..512"),
     (["--redaction", "blur", "--redaction-cells", ","], "at least one cell")],
)
def test_eval_redaction_bad_flags_give_one_line_errors(tmp_path, flags, message):
    data = tmp_path / "d"
    data.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(data / "a.png")
    code, out = invoke("eval", "--data", data, "--models", "smooth", *flags, "-o", tmp_path / "r")
    assert code == 2 and message in out and "Traceback" not in out
    assert not (tmp_path / "r").exists()
