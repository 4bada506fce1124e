"""The page in headless Chromium (Debian's `chromium`, driven by Playwright): upload a real photo,
see the detected mosaic, paint and undo a mask, restore, and check the result image on the page."""

from __future__ import annotations

import os
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("TESSERA_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")


class LiveServer:
    """uvicorn serving the app on a free loopback port, in a thread of this process."""

    def __init__(self, **config) -> None:
        import uvicorn

        from tessera.web import WebConfig, create_app

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.app = create_app(WebConfig(port=self.port, **config))
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        t0 = time.time()
        while not self.server.started:
            if time.time() - t0 > 30 or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def launch(p):
    return p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


@contextmanager
def browser_page(**config):
    """A live server and the page loaded in headless Chromium: (server, page, page errors)."""
    with LiveServer(**config) as live, playwright_api.sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: errors.append(f"{r.url} {r.failure}"))
            page.goto(live.url + "/")
            page.wait_for_function("document.querySelectorAll('#model option').length > 0")
            yield live, page, errors
        finally:
            browser.close()


# Compares the two images of the before/after view pixel by pixel inside the page.
COMPARE_JS = """() => {
  const grab = (img) => {
    const c = document.createElement('canvas');
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
    return ctx.getImageData(0, 0, c.width, c.height).data;
  };
  const before = grab(document.getElementById('before'));
  const after = grab(document.getElementById('after'));
  const mask = document.getElementById('mask-canvas');
  const m = mask.getContext('2d').getImageData(0, 0, mask.width, mask.height).data;
  let inside = 0, changedInside = 0, changedOutside = 0;
  for (let i = 0; i < before.length; i += 4) {
    const diff = before[i] !== after[i] || before[i+1] !== after[i+1] || before[i+2] !== after[i+2];
    if (m[i + 3] > 127) { inside++; if (diff) changedInside++; } else if (diff) changedOutside++;
  }
  const img = document.getElementById('after');
  return {w: img.naturalWidth, h: img.naturalHeight, inside, changedInside, changedOutside};
}"""

MASK_COUNT_JS = """() => {
  const c = document.getElementById('mask-canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0, x0 = 1e9, y0 = 1e9, x1 = -1, y1 = -1;
  for (let i = 3; i < d.length; i += 4) if (d[i] > 127) {
    n++; const p = (i - 3) / 4, x = p % c.width, y = Math.floor(p / c.width);
    x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
  }
  return {n, box: [x0, y0, x1 - x0 + 1, y1 - y0 + 1]};
}"""


def test_upload_paint_restore_and_check_the_result_on_the_page():
    photo = ROOT / "examples" / "boat_mosaic.png"  # 352x288, a 12-px mosaic over (95, 83, 133, 123)
    with browser_page() as (live, page, errors):
        assert "default (auto)" in page.inner_text("#model")
        info = page.evaluate("fetch('/api/info').then(r => r.json())")
        assert page.is_disabled("input[value=anonymize]") == (not info["actions"]["anonymize"])  # greyed out until it lands

        # 1. upload a real photo: the mosaic is detected and becomes the mask
        page.set_input_files("#file", str(photo))
        page.wait_for_function("document.getElementById('regions-info').textContent.includes('found')", timeout=60_000)
        assert page.inner_text("#file-info") == "boat_mosaic.png: 352×288"
        assert page.is_hidden("#sigma-row") and page.is_visible("#model-row")
        detected = page.evaluate(MASK_COUNT_JS)
        x, y, w, h = detected["box"]
        assert abs(x - 95) <= 12 and abs(y - 83) <= 12 and abs(w - 133) <= 12 and abs(h - 123) <= 12, detected
        assert detected["n"] > 0.8 * 133 * 123

        # 2. clear (key C), paint a stroke with the brush, undo it (Ctrl+Z), paint again
        page.keyboard.press("c")
        assert page.evaluate(MASK_COUNT_JS)["n"] == 0
        box = page.locator("#mask-canvas").bounding_box()
        sx, sy = box["width"] / 352, box["height"] / 288

        def paint(points):
            page.mouse.move(box["x"] + points[0][0] * sx, box["y"] + points[0][1] * sy)
            page.mouse.down()
            for px, py in points[1:]:
                page.mouse.move(box["x"] + px * sx, box["y"] + py * sy, steps=4)
            page.mouse.up()

        page.keyboard.press("b")
        paint([(110, 100), (210, 100)])
        assert page.evaluate(MASK_COUNT_JS)["n"] > 1000
        page.keyboard.press("Control+z")
        assert page.evaluate(MASK_COUNT_JS)["n"] == 0
        paint([(110, 100), (210, 100), (210, 130), (110, 130), (110, 160), (210, 160), (210, 190), (110, 190)])
        painted = page.evaluate(MASK_COUNT_JS)
        assert painted["n"] > 5000

        # 3. restore with a classical model (fast) as a job, with its progress bar
        page.select_option("#model", "smooth")
        page.click("#run")
        page.wait_for_selector("#after[data-ready='1']", timeout=60_000)
        assert page.inner_text("#progress-text").startswith("done")

        # 4. the result on the page: same size, changed inside the painted mask only, notice beside it
        cmp = page.evaluate(COMPARE_JS)
        assert (cmp["w"], cmp["h"]) == (352, 288)
        assert cmp["inside"] == painted["n"]
        assert cmp["changedOutside"] == 0
        assert cmp["changedInside"] > 0.5 * cmp["inside"]
        assert "imagined, not recovered" in page.inner_text("#result-notice")
        assert page.get_attribute("#download-mask", "download") == "boat_mosaic.synthesized.png"
        assert page.get_attribute("#download-result", "download") == "boat_mosaic.restored.png"
        page.fill("#slider", "20")
        assert "20%" in page.get_attribute("#after", "style")
        # 5. pixelate the same mask (8-px cells): a mosaic, without the notice of a restoration
        page.check("input[value=mosaic]")
        page.fill("#cell", "8")
        page.click("#run")
        page.wait_for_function("document.getElementById('result-info').textContent.startsWith('mosaic:')", timeout=60_000)
        assert page.is_hidden("#result-notice")
        # (the painted area is mostly the photo's 12-px mosaic already: an 8-px cell inside a flat one keeps its colour)
        assert page.evaluate(COMPARE_JS)["changedInside"] > 0.2 * painted["n"]
        assert page.get_attribute("#download-result", "download") == "boat_mosaic.mosaic.png"
        assert errors == []
        page.wait_for_timeout(100)  # the page deletes its finished jobs
        assert live.app.state.jobs.all() == []

        # 6. the API docs render from installed files too (swagger-ui-bundle; nothing outside is reachable)
        page.goto(live.url + "/docs")
        page.wait_for_selector(".opblock", timeout=20_000)
        assert page.locator(".opblock").count() >= 8
        assert "/api/restore" in page.inner_text("body")
        assert errors == []


PROGRESS_LOG_JS = """() => {
  window.progressLog = [];
  new MutationObserver(() => window.progressLog.push(document.getElementById('progress-text').textContent))
    .observe(document.getElementById('progress-text'), {childList: true, characterData: true, subtree: true});
}"""


def test_upload_a_video_paint_pixelate_see_progress_and_download(tmp_path, monkeypatch):
    pytest.importorskip("av")
    import numpy as np

    from tessera.video.synth import write_video
    from tessera.web import tasks

    W, H, N = 96, 64, 24
    y, x = np.mgrid[0:H, 0 : W + N]
    scene = np.stack([x * 2, y * 3, 128 + 60 * np.sin(x / 5.0)], -1).astype(np.uint8)
    clip = write_video(tmp_path / "clip.mp4", [np.ascontiguousarray(scene[:, i : i + W]) for i in range(N)], fps=12)
    pixelate_frames, verb, _, _ = tasks.FRAME_WORK[tasks.PixelateParams]

    def paced(frames, p, mask):  # 60 ms a frame: the page's 200-ms polls see the job running
        for out in pixelate_frames(frames, p, mask):
            time.sleep(0.06)
            yield out

    monkeypatch.setitem(tasks.FRAME_WORK, tasks.PixelateParams, (paced, verb, None, None))
    with browser_page() as (live, page, errors):
        page.set_input_files("#file", str(clip))
        page.wait_for_function("document.getElementById('file-info').textContent.includes('video')", timeout=20_000)
        assert page.inner_text("#file-info") == "clip.mp4: video, 96×64"  # its first frame is on the canvas
        assert page.is_disabled("#detect")
        box = page.locator("#mask-canvas").bounding_box()
        sx, sy = box["width"] / W, box["height"] / H
        page.mouse.move(box["x"] + 20 * sx, box["y"] + 30 * sy)
        page.mouse.down()
        page.mouse.move(box["x"] + 70 * sx, box["y"] + 30 * sy, steps=6)
        page.mouse.up()
        assert page.evaluate(MASK_COUNT_JS)["n"] > 300
        page.check("input[value=mosaic]")
        page.fill("#cell", "8")
        page.evaluate(PROGRESS_LOG_JS)
        page.click("#run")
        page.wait_for_selector("#after-video[data-ready='1']", timeout=60_000)
        log = page.evaluate("window.progressLog")
        assert any(t.startswith("running: hiding: frame ") and "left" in t for t in log), log  # progress with an ETA
        assert page.inner_text("#progress-text").startswith("done")
        assert page.get_attribute("#download-result", "download") == "clip.mosaic.mp4"
        assert page.get_attribute("#download-mask", "download") == "clip.mosaic.mask.mp4"
        assert page.evaluate("[document.getElementById('after-video').videoWidth, document.getElementById('after-video').videoHeight]") == [W, H]
        head = page.evaluate("""async () => {
          const b = await (await fetch(document.getElementById('download-result').href)).arrayBuffer();
          return [b.byteLength, String.fromCharCode(...new Uint8Array(b.slice(4, 8)))];
        }""")
        assert head[0] > 1000 and head[1] == "ftyp"  # a real MP4 behind the download link
        assert f"{N} frames, {N} of them changed" in page.inner_text("#result-info")
        assert page.is_hidden("#compare")

        # run again and cancel: the job stops, its files go, the page says so
        page.click("#run")
        page.wait_for_function("document.getElementById('progress-text').textContent.includes('frame')", timeout=30_000)
        page.click("#cancel")
        page.wait_for_function("document.getElementById('error').textContent.includes('cancelled')", timeout=30_000)
        page.wait_for_timeout(300)
        assert live.app.state.jobs.all() == []
        assert list(live.app.state.root.iterdir()) == []
        assert page.is_enabled("#run")
        assert errors == []
