"""Make docs/web.png: the page after restoring examples/boat_mosaic.png with the default model.

    python scripts/web_screenshot.py [--out docs/web.png]

Starts `tessera serve` on a free loopback port, drives headless Chromium (/usr/bin/chromium) with
Playwright, and saves a screenshot of the page.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "web.png")
    ap.add_argument("--model", default="default")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    server = subprocess.Popen([sys.executable, "-m", "tessera", "serve", "--port", str(port)], env=env)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(url + "api/info", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1180, "height": 760})
            page.goto(url)
            page.wait_for_function("document.querySelectorAll('#model option').length > 0")
            page.set_input_files("#file", str(ROOT / "examples" / "boat_mosaic.png"))
            page.wait_for_function("document.getElementById('regions-info').textContent.includes('found')", timeout=120_000)
            page.select_option("#model", args.model)
            page.click("#run")
            page.wait_for_selector("#after[data-ready='1']", timeout=300_000)
            page.fill("#slider", "50")
            page.dispatch_event("#slider", "input")
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out), full_page=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(10)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
