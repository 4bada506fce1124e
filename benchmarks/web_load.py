"""Load on `tessera serve`: N concurrent POST /api/restore against a real uvicorn server.

Starts `python -m tessera serve` on a free loopback port (its default 1 worker and 8 waiting places
unless told otherwise), sends N restore requests at once (each its own connection, a 512x512 photo
with a 128x128 mask), and records each answer's status and time, the server's resident memory
(sampled every 20 ms from /proc) and whether it still answers afterwards. Every request must be
answered with a result (200) or 503 + Retry-After; memory must stay bounded by the queue, not by N.
Writes its section of benchmarks/RESULTS.md (between the '<!-- web-load -->' markers).

    python -m benchmarks.web_load [--requests 50] [--models smooth,default] [--queue 8] [--workers 1]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MiB (Linux /proc), 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def payload(size: int = 512, box: int = 128) -> tuple[bytes, bytes]:
    """A size x size crop of the example photo (resized) as PNG, and a centred box mask."""
    from PIL import Image

    photo = Image.open(ROOT / "examples" / "boat.png").convert("RGB").resize((size, size), Image.BICUBIC)
    mask = np.zeros((size, size), np.uint8)
    o = (size - box) // 2
    mask[o : o + box, o : o + box] = 255
    out = []
    for im in (photo, Image.fromarray(mask)):
        buf = io.BytesIO()
        im.save(buf, "PNG")
        out.append(buf.getvalue())
    return out[0], out[1]


class Server:
    """`python -m tessera serve` in a child process on a free loopback port."""

    def __init__(self, *flags: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tessera", "serve", "--port", str(self.port), *flags],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 120) -> None:
        import httpx

        t0 = time.time()
        while time.time() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited: {self.proc.stderr.read().decode(errors='replace')[-2000:]}")
            try:
                if httpx.get(self.url + "/api/info", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the server did not start in time")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def run_load(requests: int = 50, model: str = "smooth", workers: int = 1, queue: int = 8, size: int = 512) -> dict:
    """Fire ``requests`` restores at once; returns the numbers (see the module docstring)."""
    import httpx

    image, mask = payload(size)
    server = Server("--workers", str(workers), "--queue", str(queue))
    try:
        server.wait_ready()
        # one request first, so the model is loaded before the burst (its memory counts as baseline)
        warm = httpx.post(server.url + "/api/restore", files={"image": ("w.png", image), "mask": ("m.png", mask)},
                          data={"model": model}, timeout=300)
        assert warm.status_code == 200, warm.text
        base = rss_mb(server.proc.pid)
        peak = [base]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], rss_mb(server.proc.pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        barrier = threading.Barrier(requests)

        def one(i: int) -> tuple[int, float, str | None, int]:
            with httpx.Client(timeout=600) as c:
                barrier.wait()
                t0 = time.perf_counter()
                r = c.post(server.url + "/api/restore", files={"image": (f"{i}.png", image), "mask": ("m.png", mask)},
                           data={"model": model})
                return r.status_code, time.perf_counter() - t0, r.headers.get("retry-after"), len(r.content)

        t0 = time.perf_counter()
        with ThreadPoolExecutor(requests) as pool:
            answers = list(pool.map(one, range(requests)))
        wall = time.perf_counter() - t0
        stop.set()
        sampler.join()
        after = httpx.get(server.url + "/api/info", timeout=30)
        again = httpx.post(server.url + "/api/restore", files={"image": ("a.png", image), "mask": ("m.png", mask)},
                           data={"model": model}, timeout=300)
        alive = server.proc.poll() is None and after.status_code == 200 and again.status_code == 200
    finally:
        server.stop()
    codes = [a[0] for a in answers]
    ok = [a[1] for a in answers if a[0] == 200]
    busy = [a for a in answers if a[0] == 503]
    return {
        "requests": requests, "model": model, "workers": workers, "queue": queue, "size": size,
        "ok": len(ok), "busy": len(busy), "other": [c for c in codes if c not in (200, 503)],
        "busy_with_retry_after": sum(1 for a in busy if a[2] and int(a[2]) >= 1),
        "ok_median_s": float(np.median(ok)) if ok else None, "ok_max_s": max(ok) if ok else None,
        "busy_max_s": max((a[1] for a in busy), default=None),
        "wall_s": wall, "rss_base_mb": base, "rss_peak_mb": peak[0], "alive": alive,
    }


def report(rows: list[dict]) -> str:
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    r0 = rows[0]
    lines = [
        "## Web server under load (`benchmarks/web_load.py`)",
        "",
        f"{r0['requests']} concurrent `POST /api/restore` (each its own connection, a {r0['size']}x{r0['size']} PNG with a "
        f"128x128 mask) against `tessera serve --workers {r0['workers']} --queue {r0['queue']}` (uvicorn, loopback), "
        f"after one warm-up request. Machine: {platform.machine()} CPU, {os.cpu_count()} cores shared with other jobs "
        "(other engineers' tests and a GAN training ran at the same time, so times are pessimistic and vary).",
        "",
        "| model | answered 200 | answered 503 (with Retry-After) | other answers | median / max time of a 200 (s) | max time of a 503 (s) | wall (s) | server RSS before -> peak (MiB) | alive afterwards |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| `{r['model']}` | {r['ok']} | {r['busy']} ({r['busy_with_retry_after']}) | {len(r['other'])} | "
            f"{fmt(r['ok_median_s'])} / {fmt(r['ok_max_s'])} | {fmt(r['busy_max_s'])} | {r['wall_s']:.2f} | "
            f"{r['rss_base_mb']:.0f} -> {r['rss_peak_mb']:.0f} | {'yes' if r['alive'] else 'NO'} |"
        )
    lines += [
        "",
        "At most workers + queue requests are admitted at a time; the rest are refused at once with 503, so memory",
        "grows with the queue, not with the number of clients. The queue is checked when a request arrives (a 503 then",
        "answers before the upload is read) and again when its work is queued.",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--models", default="smooth,default", help="comma-separated; one run (and row) each")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--queue", type=int, default=8)
    ap.add_argument("--size", type=int, default=512)
    args = ap.parse_args()
    rows = [run_load(args.requests, m, args.workers, args.queue, args.size) for m in args.models.split(",")]
    text = report(rows)
    print(text)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _results import write_section

    write_section(text, "<!-- web-load -->", "<!-- /web-load -->")


if __name__ == "__main__":
    main()
