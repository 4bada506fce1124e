"""The REST API over FastAPI's test client: real restorations on tiny images, compared with the
library calls the CLI makes, and the safety rules (host/origin, caps, busy queue, temp files)."""

from __future__ import annotations

import io
from pathlib import Path
import threading
import time
import warnings

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
with warnings.catch_warnings():  # Starlette now prefers httpx2; httpx still works
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402

from tessera.web import WebConfig, create_app  # noqa: E402
from tessera.web import tasks as web_tasks  # noqa: E402
from webjobs import wait_for  # noqa: E402

BOX = (24, 16, 48, 40)  # x, y, w, h of the mosaic in the 96x80 crop
CELL = 8


def png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


def decode(data: bytes) -> tuple[np.ndarray, dict]:
    im = Image.open(io.BytesIO(data))
    im.load()
    return np.asarray(im.convert("RGB") if im.mode != "L" else im), dict(getattr(im, "text", {}))


@pytest.fixture(scope="module")
def scene():
    """A 96x80 crop of the example photo with an 8-px mosaic over BOX, and the mosaic's mask."""
    from tessera.mosaic.pixelate import pixelate

    photo = np.asarray(Image.open(Path(__file__).resolve().parents[2] / "examples" / "boat.png").convert("RGB"))
    crop = np.ascontiguousarray(photo[100:180, 100:196])
    mosaic, changed = pixelate(crop, boxes=[BOX], cell=CELL, phase=(0, 0))
    return crop, mosaic, changed


def client(**overrides) -> TestClient:
    cfg = WebConfig(allowed_hosts=("testserver",), **overrides)
    return TestClient(create_app(cfg))


@pytest.fixture(scope="module")
def api():
    with client() as c:
        yield c


def leftovers(c: TestClient) -> list[str]:
    return sorted(p.name for p in c.app.state.root.iterdir())


def test_restore_smooth_matches_the_library_and_names_its_mask(api, scene):
    from tessera.restore.pipeline import restore_image

    _, mosaic, changed = scene
    r = api.post("/api/restore", files={"image": ("my photo?.png", png(mosaic), "image/png"),
                                        "mask": ("m.png", png(changed.astype(np.uint8) * 255), "image/png")},
                 data={"model": "smooth", "cell": str(CELL), "sampling": "mean"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    out, text = decode(r.content)
    assert text["tessera:synthesized-mask"] == "my_photo.synthesized.png" == r.headers["x-tessera-synthesized-mask"]
    assert "imagined, not recovered" in text["tessera:notice"] and text["tessera:model"] == "smooth"
    from tessera.mosaic.region import Grid

    expected = restore_image(mosaic, changed, model="smooth", grid=Grid(CELL, CELL, 0, 0, "mean"), sampling="mean")
    np.testing.assert_array_equal(out, expected.image)  # the same call the CLI makes, byte for byte
    assert (out[~changed] == mosaic[~changed]).all()
    assert (out[changed] != mosaic[changed]).any()
    assert leftovers(api) == []


def test_restore_with_mask_answers_both_images_as_json(api, scene):
    import base64

    _, mosaic, changed = scene
    r = api.post("/api/restore", files={"image": ("a.png", png(mosaic), "image/png"),
                                        "mask": ("m.png", png(changed.astype(np.uint8) * 255), "image/png")},
                 data={"model": "telea", "with_mask": "true"})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["model"] == "telea" and doc["synthesized_pixels"] == int(changed.sum())
    assert "imagined, not recovered" in doc["notice"]
    mask, _ = decode(base64.b64decode(doc["mask"].split(",", 1)[1]))
    np.testing.assert_array_equal(mask > 127, changed)
    img, text = decode(base64.b64decode(doc["image"].split(",", 1)[1]))
    assert img.shape == mosaic.shape and text["tessera:synthesized-mask"] == doc["mask_name"] == "a.synthesized.png"


def test_restore_with_the_shipped_default_model(api, scene):
    import base64

    crop, mosaic, changed = scene
    r = api.post("/api/restore", files={"image": ("boat.png", png(mosaic), "image/png"),
                                        "mask": ("m.png", png(changed.astype(np.uint8) * 255), "image/png")},
                 data={"with_mask": "true", "cell": str(CELL), "sampling": "mean"})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["model"] == "scenes" and doc["residual"] is not None and doc["residual"] <= 1.0
    out, text = decode(base64.b64decode(doc["image"].split(",", 1)[1]))
    assert text["tessera:model"] == "scenes"
    assert (out[~changed] == mosaic[~changed]).all()
    err_in = np.abs(mosaic[changed].astype(int) - crop[changed]).mean()
    err_out = np.abs(out[changed].astype(int) - crop[changed]).mean()
    assert err_out < err_in  # closer to the hidden photo than the mosaic was (a guess, still)


def test_detect_finds_the_mosaic_with_its_cell(api, scene):
    _, mosaic, _ = scene
    r = api.post("/api/detect", files={"image": ("x.png", png(mosaic), "image/png")})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["size"] == [96, 80] and len(doc["regions"]) == 1
    region = doc["regions"][0]
    assert region["cell"] == [CELL, CELL]
    x, y, w, h = region["box"]
    assert abs(x - BOX[0]) <= CELL and abs(y - BOX[1]) <= CELL and abs(w - BOX[2]) <= CELL and abs(h - BOX[3]) <= CELL


@pytest.mark.parametrize("method", ["mosaic", "blur", "solid"])
def test_pixelate_matches_the_library(api, scene, method):
    from tessera.mosaic.pixelate import pixelate

    crop, _, _ = scene
    data = {"method": method, "boxes": "10,10,30,20;50,40,20,20", "cell": "6x5", "sigma": "3"}
    r = api.post("/api/pixelate", files={"image": ("c.png", png(crop), "image/png")}, data=data)
    assert r.status_code == 200, r.text
    out, _ = decode(r.content)
    boxes = [(10, 10, 30, 20), (50, 40, 20, 20)]
    if method == "solid":
        changed = np.zeros(crop.shape[:2], bool)
        changed[10:30, 10:40] = changed[40:60, 50:70] = True
        assert (out[changed] == 0).all() and (out[~changed] == crop[~changed]).all()
    else:
        expected, _ = pixelate(crop, boxes=boxes, cell=(6, 5), blur=3.0 if method == "blur" else None)
        np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("sampling", ["centre-up", "first"])
def test_other_tools_samplings_pixelate_and_restore_as_the_library(api, scene, sampling):
    # ffmpeg's neighbour scaling (centre-up) and OpenCV's INTER_NEAREST (first)
    from tessera.mosaic.pixelate import pixelate
    from tessera.mosaic.region import Grid
    from tessera.restore.pipeline import restore_image

    crop, _, _ = scene
    data = {"method": "mosaic", "boxes": ",".join(map(str, BOX)), "cell": str(CELL), "sampling": sampling}
    r = api.post("/api/pixelate", files={"image": ("c.png", png(crop), "image/png")}, data=data)
    assert r.status_code == 200, r.text
    mosaic, _ = decode(r.content)
    expected, changed = pixelate(crop, boxes=[BOX], cell=CELL, sampling=sampling)
    np.testing.assert_array_equal(mosaic, expected)
    assert not np.array_equal(mosaic, pixelate(crop, boxes=[BOX], cell=CELL, sampling="centre")[0])
    r = api.post("/api/restore", files={"image": ("m.png", png(mosaic), "image/png"),
                                        "mask": ("k.png", png(changed.astype(np.uint8) * 255), "image/png")},
                 data={"model": "smooth", "cell": str(CELL), "sampling": sampling})
    assert r.status_code == 200, r.text
    want = restore_image(mosaic, changed, model="smooth", grid=Grid(CELL, CELL, 0, 0, sampling), sampling=sampling)
    np.testing.assert_array_equal(decode(r.content)[0], want.image)
    info = api.get("/api/info").json()["samplings"]
    assert list(info) == ["mean", "centre", "centre-up", "first"] and "INTER_NEAREST" in info["first"]
    r = api.post("/api/pixelate", files={"image": ("c.png", png(crop), "image/png")}, data={**data, "sampling": "median"})
    assert r.status_code == 400 and "first" in r.json()["error"]


def test_anonymize_is_a_clear_501_where_the_library_lacks_it(api, monkeypatch, scene):
    from tessera.web import tasks

    monkeypatch.setattr(tasks, "anonymize_available", lambda: False)
    _, mosaic, _ = scene
    r = api.post("/api/anonymize", files={"image": ("x.png", png(mosaic), "image/png")})
    assert r.status_code == 501 and "not available" in r.json()["error"]
    r = api.post("/api/jobs", files={"image": ("x.png", png(mosaic), "image/png")}, data={"task": "anonymize"})
    assert r.status_code == 501
    assert api.get("/api/info").json()["actions"]["anonymize"] is False
    assert leftovers(api) == []


@pytest.mark.skipif(not web_tasks.anonymize_available(), reason="tessera.anonymize not installed")
def test_anonymize_matches_the_library(api):
    from tessera.anonymize import AnonymizeConfig, anonymize_image

    path = Path(__file__).resolve().parents[3] / "shared" / "data" / "faces" / "val" / "face-0003.jpg"
    if not path.exists():
        pytest.skip("../shared/data not present")
    from tessera.io.image import read_image

    rgb, _ = read_image(path)
    r = api.post("/api/anonymize", files={"image": ("face.jpg", path.read_bytes(), "image/jpeg")},
                 data={"find": "faces", "method": "mosaic", "with_mask": "true"})
    assert r.status_code == 200, r.text
    doc = r.json()
    expected = anonymize_image(rgb, AnonymizeConfig(find=("faces",), method="mosaic"))
    assert doc["hidden_pixels"] == int(expected.mask.sum()) > 0
    import base64

    out, text = decode(base64.b64decode(doc["image"].split(",", 1)[1]))
    np.testing.assert_array_equal(out, expected.image)
    assert text == {}  # nothing of the input's metadata is kept
    bad = api.post("/api/anonymize", files={"image": ("face.jpg", path.read_bytes(), "image/jpeg")}, data={"find": "nudity"})
    assert bad.status_code == 400 and "unknown finder" in bad.json()["error"]


def test_errors_are_json_with_a_message(api, scene):
    _, mosaic, _ = scene
    cases = [
        ({"image": ("x.png", b"not an image", "image/png")}, {}, 400, "not an image"),
        ({"image": ("x.png", png(mosaic), "image/png")}, {"model": "../../etc/passwd"}, 400, "unknown model"),
        ({"image": ("x.png", png(mosaic), "image/png"), "mask": ("m.png", png(np.zeros((10, 10), np.uint8)), "image/png")},
         {"model": "smooth"}, 400, "same size"),
        ({"image": ("x.png", png(mosaic), "image/png")}, {"cell": "big"}, 400, "cell"),
        ({}, {}, 422, "image"),
    ]
    for files, data, status, words in cases:
        r = api.post("/api/restore", files=files or {"unused": ("u", b"", "text/plain")}, data=data)
        assert r.status_code == status, (words, r.text)
        assert words in r.json()["error"]
    assert leftovers(api) == []  # failed requests leave no temporary files


def test_caps_on_upload_size_and_pixels(scene):
    _, mosaic, _ = scene
    with client(max_pixels=1000) as c:
        r = c.post("/api/detect", files={"image": ("x.png", png(mosaic), "image/png")})
        assert r.status_code == 413 and "limit" in r.json()["error"]
        assert leftovers(c) == []
    with client(max_upload_mb=0.01) as c:  # 10 KiB
        noise = np.random.default_rng(0).integers(0, 256, (80, 96, 3), dtype=np.uint8)
        r = c.post("/api/detect", files={"image": ("x.png", png(noise), "image/png")})
        assert r.status_code == 413 and "MiB" in r.json()["error"]
        assert leftovers(c) == []


def test_a_streamed_body_is_cut_off_at_the_cap():
    """Without Content-Length (chunked), the body is counted while it is read and refused at the cap."""
    sent = []

    def chunks():
        head = b'--b\r\nContent-Disposition: form-data; name="image"; filename="x.png"\r\nContent-Type: image/png\r\n\r\n'
        yield head
        for _ in range(64):  # 64 x 64 KiB = 4 MiB, against a 1 MiB cap
            sent.append(1)
            yield b"\0" * 65536
        yield b"\r\n--b--\r\n"

    with client(max_upload_mb=1) as c:
        r = c.post("/api/detect", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"})
        assert r.status_code == 413 and "MiB" in r.json()["error"]
        assert leftovers(c) == []


def test_foreign_host_and_origin_are_refused(api):
    assert api.get("/api/info").status_code == 200
    r = api.get("/api/info", headers={"host": "rebind.attacker.example:8000"})
    assert r.status_code == 403 and "DNS rebinding" in r.json()["error"]
    r = api.post("/api/restore", headers={"origin": "http://attacker.example"})
    assert r.status_code == 403 and "cross-origin" in r.json()["error"]
    assert api.post("/api/restore", headers={"origin": "null"}).status_code == 403
    assert api.post("/api/restore", headers={"origin": "http://testserver"}).status_code == 422  # same origin: allowed (no image)
    with TestClient(create_app(WebConfig())) as plain:  # default: loopback names only
        assert plain.get("/api/info").status_code == 403
        assert plain.get("/api/info", headers={"host": "127.0.0.1:8000"}).status_code == 200
        assert plain.get("/api/info", headers={"host": "localhost:8000"}).status_code == 200
        assert plain.get("/api/info", headers={"host": "192.168.1.20:8000"}).status_code == 403


def test_a_full_queue_answers_503_with_retry_after(scene):
    _, mosaic, _ = scene
    gate = threading.Event()
    with client(workers=1, queue=1) as c:
        held = [c.app.state.queue.submit(gate.wait, 10) for _ in range(2)]  # the worker and the one waiting place
        try:
            r = c.post("/api/detect", files={"image": ("x.png", png(mosaic), "image/png")})
            assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1 and "busy" in r.json()["error"]
            r = c.post("/api/jobs", files={"image": ("x.png", png(mosaic), "image/png")}, data={"task": "detect"})
            assert r.status_code == 503
        finally:
            gate.set()
        for f in held:
            f.result(5)
        time.sleep(0.05)
        assert c.post("/api/pixelate", files={"image": ("x.png", png(mosaic), "image/png")}).status_code == 200
        assert leftovers(c) == []


def test_jobs_run_report_and_download_and_delete(api, scene):
    _, mosaic, changed = scene
    r = api.post("/api/jobs", files={"image": ("j.png", png(mosaic), "image/png"),
                                     "mask": ("m.png", png(changed.astype(np.uint8) * 255), "image/png")},
                 data={"task": "restore", "model": "smooth"})
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    s = wait_for(api, job_id)
    assert s["status"] == "done" and s["progress"] == 1.0 and s["info"]["model"] == "smooth"
    assert set(s["outputs"]) == {"result", "mask"}
    res = api.get(s["outputs"]["result"])
    assert res.status_code == 200 and 'filename="j.restored.png"' in res.headers["content-disposition"]
    out, text = decode(res.content)
    assert text["tessera:synthesized-mask"] == "j.synthesized.png" and (out[~changed] == mosaic[~changed]).all()
    np.testing.assert_array_equal(decode(api.get(s["outputs"]["mask"]).content)[0] > 127, changed)
    assert api.get(f"/api/jobs/{job_id}/../../etc/passwd").status_code == 404
    assert api.get(f"/api/jobs/{job_id}/image").status_code == 404  # the upload is not an output
    assert api.delete(f"/api/jobs/{job_id}").status_code == 200
    assert api.get(f"/api/jobs/{job_id}").status_code == 404
    assert leftovers(api) == []


def test_a_failed_job_says_why_and_a_waiting_job_can_be_cancelled(scene):
    _, mosaic, _ = scene
    gate = threading.Event()
    with client(workers=1, queue=4) as c:
        r = c.post("/api/jobs", files={"image": ("bad.png", b"garbage", "image/png")}, data={"task": "detect"})
        s = wait_for(c, r.json()["id"])
        assert s["status"] == "failed" and "not an image" in s["error"]
        c.app.state.queue.submit(gate.wait, 10)  # occupy the worker
        r = c.post("/api/jobs", files={"image": ("x.png", png(mosaic), "image/png")}, data={"task": "pixelate"})
        job_id = r.json()["id"]
        assert c.get(f"/api/jobs/{job_id}").json()["status"] == "queued"
        assert c.delete(f"/api/jobs/{job_id}").json()["status"] == "cancelled"
        gate.set()
        assert c.get(f"/api/jobs/{job_id}").status_code == 404
        assert c.get("/api/jobs").json()["jobs"][0]["status"] == "failed"
        assert [p for p in leftovers(c) if not p.startswith("job-")] == []
        assert len(leftovers(c)) == 1  # only the failed job's folder, until it is deleted or expires


def test_page_docs_and_static_files_are_served(api):
    r = api.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert api.get("/docs").status_code == 200
    paths = api.get("/openapi.json").json()["paths"]
    assert {"/api/detect", "/api/restore", "/api/pixelate", "/api/jobs", "/api/jobs/{job_id}"} <= set(paths)
    assert api.get("/static/../app.py").status_code == 404


def test_serve_binds_loopback_and_warns_for_another_host(monkeypatch):
    import uvicorn
    from typer.testing import CliRunner

    from tessera.cli import app

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda application, **kw: calls.append((application, kw)))
    runner = CliRunner()
    res = runner.invoke(app, ["serve"])
    assert res.exit_code == 0, res.output
    assert calls[-1][1]["host"] == "127.0.0.1" and calls[-1][1]["port"] == 8000 and "warning" not in res.output
    res = runner.invoke(app, ["serve", "--host", "0.0.0.0", "--port", "8765"])
    assert res.exit_code == 0 and "warning" in res.output and calls[-1][1]["port"] == 8765
    assert calls[-1][0].state.config.public


def test_job_progress_eta_and_cancel_at_the_next_report(tmp_path):
    from tessera.web.work import Cancelled, Job

    job = Job("x", "restore", tmp_path)
    job.status, job.started = "running", time.time() - 10.0
    job.report(0.25, "restoring: 1 of 4 regions")
    assert job.progress == 0.25 and job.stage == "restoring: 1 of 4 regions"
    assert job.eta() == pytest.approx(30.0, abs=0.5)  # 10 s for a quarter: 30 s left
    job.report(0.1)  # progress never goes back
    assert job.progress == 0.25
    job.cancel_requested = True
    with pytest.raises(Cancelled):
        job.report(0.5)
