"""Videos through the jobs API: a tiny PyAV-made clip is pixelated, restored and anonymized as a
job (progress per frame, the output video and its mask video downloaded and decoded), and a
running job is cancelled: the work stops and its files go."""

from __future__ import annotations

import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
av = pytest.importorskip("av")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402

from tessera.web import WebConfig, create_app  # noqa: E402
from tessera.web import tasks as web_tasks  # noqa: E402
from webjobs import wait_for  # noqa: E402

W, H, N = 64, 48, 6
BOX = (16, 8, 24, 24)  # x, y, w, h hidden in every frame
FACE = Path(__file__).resolve().parents[3] / "shared" / "data" / "faces" / "val" / "face-0003.jpg"


def clip_frames(n: int = N) -> list[np.ndarray]:
    """A smooth scene moving one pixel per frame (so each frame differs)."""
    y, x = np.mgrid[0:H, 0 : W + n]
    base = np.stack([x * 3, y * 4, 128 + 60 * np.sin(x / 5.0) * np.cos(y / 7.0)], -1).astype(np.uint8)
    return [np.ascontiguousarray(base[:, i : i + W]) for i in range(n)]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    from tessera.video.synth import write_video

    return write_video(tmp_path_factory.mktemp("v") / "clip.mp4", clip_frames(), fps=10, crf=0, audio=1,
                       tags={"title": "my street", "location": "+48.8577+002.2950/"})


def decode_video(data: bytes, tmp: Path) -> tuple[list[np.ndarray], dict, list[str]]:
    p = tmp / f"got-{time.monotonic_ns()}.mp4"
    p.write_bytes(data)
    with av.open(str(p)) as c:
        tags, types = dict(c.metadata), [s.type for s in c.streams]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return frames, tags, types


def client(**overrides) -> TestClient:
    return TestClient(create_app(WebConfig(allowed_hosts=("testserver",), **overrides)))


def leftovers(c: TestClient) -> list[str]:
    return sorted(str(p.relative_to(c.app.state.root)) for p in c.app.state.root.rglob("*"))


def test_a_video_is_pixelated_as_a_job_with_its_mask_video(clip, tmp_path):
    with client() as c:
        assert c.get("/api/info").json()["actions"]["video"] is True
        r = c.post("/api/jobs", files={"video": ("clip.mp4", clip.read_bytes(), "video/mp4")},
                   data={"task": "pixelate", "method": "mosaic", "cell": "8", "boxes": ",".join(map(str, BOX)),
                         "with_mask": "true", "crf": "0", "preset": "ultrafast"})
        assert r.status_code == 202, r.text
        assert r.json()["video"] is True
        s = wait_for(c, r.json()["id"])
        assert s["status"] == "done", s
        assert s["progress"] == 1.0 and s["info"]["frames"] == N and s["info"]["frames_changed"] == N
        assert s["info"]["changed_pixels"] == N * BOX[2] * BOX[3]
        assert set(s["outputs"]) == {"result", "mask"}
        res = c.get(s["outputs"]["result"])
        assert res.status_code == 200 and res.headers["content-type"] == "video/mp4"
        assert 'filename="clip.mosaic.mp4"' in res.headers["content-disposition"]
        frames, tags, types = decode_video(res.content, tmp_path)
        assert types == ["video", "audio"] and tags.get("title") == "my street"  # pixelate copies streams and tags
        assert len(frames) == N and frames[0].shape == (H, W, 3)
        x, y, w, h = BOX
        src, _, _ = decode_video(clip.read_bytes(), tmp_path)  # what the server decoded
        for got, want in zip(frames, src):
            inside = got[y : y + h, x : x + w].astype(int)
            cells = inside.reshape(3, 8, 3, 8, 3)
            assert np.abs(cells - cells.mean((1, 3), keepdims=True)).mean() < 3  # flat 8-px cells
            outside = np.ones((H, W), bool)
            outside[y : y + h, x : x + w] = False
            assert np.abs(got.astype(int) - want)[outside].mean() < 1.5  # the rest is the input (lossless encode)
        mres = c.get(s["outputs"]["mask"])
        assert 'filename="clip.mosaic.mask.mp4"' in mres.headers["content-disposition"]
        masks, _, mtypes = decode_video(mres.content, tmp_path)
        assert mtypes == ["video"] and len(masks) == N
        expected = np.zeros((H, W), bool)
        expected[y : y + h, x : x + w] = True
        for m in masks:
            np.testing.assert_array_equal(m[..., 0] > 127, expected)
        assert c.delete(f"/api/jobs/{s['id']}").status_code == 200
        assert leftovers(c) == []
        r = c.post("/api/pixelate", files={"image": ("clip.mp4", clip.read_bytes(), "video/mp4")})
        assert r.status_code == 400 and "POST /api/jobs" in r.json()["error"]  # a video is pointed to the jobs
        r = c.post("/api/jobs", files={"video": ("clip.mp4", clip.read_bytes(), "video/mp4")}, data={"task": "detect"})
        assert r.status_code == 400 and "restore, pixelate or anonymize" in r.json()["error"]
        r = c.post("/api/jobs", files={"video": ("x.mp4", b"not a video at all", "video/mp4")}, data={"task": "pixelate"})
        s = wait_for(c, r.json()["id"])
        assert s["status"] == "failed" and s["error"].startswith("video: ") and str(c.app.state.root) not in s["error"]
        assert c.delete(f"/api/jobs/{s['id']}").status_code == 200
        assert leftovers(c) == []


def test_progress_is_reported_per_frame(clip, tmp_path):
    folder = tmp_path / "job"
    folder.mkdir()
    (folder / web_tasks.VIDEO).write_bytes(clip.read_bytes())
    seen: list[tuple[float, str]] = []
    p = web_tasks.VideoParams(web_tasks.PixelateParams(method="blur", boxes=(BOX,), name="clip"), preset="ultrafast")
    info = web_tasks.run_video(folder, p, 10**7, lambda f, stage="": seen.append((f, stage)))
    stages = [st for _, st in seen if "frame" in st]
    assert stages[0] == f"hiding: frame 0 of {N} (1 read)" and stages[-1] == f"hiding: frame {N} of {N}"
    assert {f"hiding: frame {i} of {N}" for i in range(1, N + 1)} <= set(stages)
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert info["result_name"] == "clip.blur.mp4" and "mask_file" not in info
    assert sorted(q.name for q in folder.iterdir()) == sorted([web_tasks.VIDEO, "result.mp4"])


def test_a_video_is_restored_as_a_job(clip, tmp_path):
    import io

    from PIL import Image

    from tessera.mosaic.pixelate import pixelate
    from tessera.video.synth import write_video

    mosaicked = [pixelate(f, boxes=[BOX], cell=8)[0] for f in clip_frames()]
    src = write_video(tmp_path / "m.mp4", mosaicked, fps=10, crf=0)
    mask = np.zeros((H, W), np.uint8)
    x, y, w, h = BOX
    mask[y : y + h, x : x + w] = 255
    buf = io.BytesIO()
    Image.fromarray(mask).save(buf, "PNG")
    with client() as c:
        r = c.post("/api/jobs", files={"image": ("m.mp4", src.read_bytes(), "video/mp4"), "mask": ("m.png", buf.getvalue(), "image/png")},
                   data={"task": "restore", "model": "smooth", "cell": "8", "with_mask": "true", "crf": "0"})
        assert r.status_code == 202 and r.json()["video"] is True  # a video sent as "image" is still a video
        s = wait_for(c, r.json()["id"])
        assert s["status"] == "done", s
        assert s["info"]["model"] == "smooth" and "imagined" in s["info"]["notice"].lower()
        res = c.get(s["outputs"]["result"])
        assert "X-Tessera-Notice" in res.headers and 'filename="m.restored.mp4"' in res.headers["content-disposition"]
        frames, tags, _ = decode_video(res.content, tmp_path)
        assert "imagined" in tags["comment"].lower()  # the container carries the notice, as the CLI's
        assert len(frames) == N
        for got, before in zip(frames, mosaicked):
            region = (slice(y, y + h), slice(x, x + w))
            assert np.abs(got[region].astype(int) - before[region]).mean() > 1  # the mosaic was smoothed away
            outside = np.ones((H, W), bool)
            outside[region] = False
            assert np.abs(got.astype(int) - before)[outside].mean() < 3
        masks, _, _ = decode_video(c.get(s["outputs"]["mask"]).content, tmp_path)
        assert all(((m[..., 0] > 64) == (mask > 0)).all() for m in masks)  # 255 imagined or 128 recovered, inside only
        assert s["info"]["recovered_pixels"] <= s["info"]["changed_pixels"] == N * w * h


@pytest.mark.skipif(not web_tasks.anonymize_available() or not FACE.exists(), reason="tessera.anonymize or ../shared/data missing")
def test_a_video_is_anonymized_as_a_job_and_loses_its_tags(tmp_path):
    from PIL import Image

    from tessera.video.synth import write_video

    face = np.asarray(Image.open(FACE).convert("RGB").resize((96, 84)))
    frames = []
    for i in range(N):
        f = np.full((120, 160, 3), 110, np.uint8)
        f[18 : 18 + 84, 30 + 2 * i : 30 + 2 * i + 96] = face
        frames.append(f)
    src = write_video(tmp_path / "face.mp4", frames, fps=10, crf=0, tags={"title": "Alice at home", "location": "+48.8577+002.2950/"})
    with client() as c:
        r = c.post("/api/jobs", files={"video": ("face.mp4", src.read_bytes(), "video/mp4")},
                   data={"task": "anonymize", "method": "solid", "with_mask": "true", "crf": "0"})
        s = wait_for(c, r.json()["id"])
        assert s["status"] == "done", s
        assert s["info"]["frames_changed"] == N and s["info"]["metadata"] == "stripped"
        got, tags, _ = decode_video(c.get(s["outputs"]["result"]).content, tmp_path)
        assert "title" not in tags and "location" not in tags
        for i, g in enumerate(got):  # the face's centre is black in every frame
            cy, cx = 18 + 42, 30 + 2 * i + 48
            assert g[cy - 10 : cy + 10, cx - 10 : cx + 10].max() < 20


def test_a_running_video_job_is_cancelled_and_its_files_removed(clip, monkeypatch):
    calls = []
    gate = threading.Event()

    def slow(frames, p, mask):  # a pixelation that waits on every frame, so the job is caught running
        for f in frames:
            calls.append(f.index)
            gate.wait(0.2)
            yield web_tasks.hide(f.image, mask, p)

    monkeypatch.setitem(web_tasks.FRAME_WORK, web_tasks.PixelateParams, (slow, "hiding", None, None))
    from tessera.video.synth import write_video

    long_clip = write_video(clip.with_name("long.mp4"), clip_frames(40), fps=10)
    with client() as c:
        r = c.post("/api/jobs", files={"video": ("long.mp4", long_clip.read_bytes(), "video/mp4")},
                   data={"task": "pixelate", "boxes": "0,0,8,8", "with_mask": "true"})
        job_id = r.json()["id"]
        t0 = time.time()
        while not (c.get(f"/api/jobs/{job_id}").json()["stage"].startswith("hiding: frame 2")):
            assert time.time() - t0 < 60, c.get(f"/api/jobs/{job_id}").json()
            time.sleep(0.02)
        s = c.get(f"/api/jobs/{job_id}").json()
        assert s["status"] == "running" and 0 < s["progress"] < 0.5 and s["eta_s"] is not None and s["eta_s"] > 0
        assert c.delete(f"/api/jobs/{job_id}").json()["status"] == "cancelling"
        t0 = time.time()
        while c.get(f"/api/jobs/{job_id}").status_code != 404:
            assert time.time() - t0 < 30
            time.sleep(0.02)
        stopped_at = len(calls)
        time.sleep(0.5)
        assert len(calls) == stopped_at < 40  # the work stopped
        assert leftovers(c) == []  # the upload, the partial result and mask videos are gone
        assert not c.app.state.queue.busy
