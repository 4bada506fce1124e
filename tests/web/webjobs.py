"""Helpers shared by the web tests (a module, not a test file)."""

from __future__ import annotations

import time


def wait_for(c, job_id: str, timeout: float = 120) -> dict:
    """Poll GET /api/jobs/ID until the job is done, failed or cancelled; its last status."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        s = c.get(f"/api/jobs/{job_id}").json()
        if s["status"] in ("done", "failed", "cancelled"):
            return s
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {s}")
