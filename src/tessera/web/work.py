"""A bounded work queue and the jobs kept for download.

Every piece of image work (synchronous requests and jobs alike) runs on a small thread pool behind
one counter of free places: ``workers`` running plus ``queue`` waiting. When none is free the
server answers 503 with Retry-After instead of piling work up, so memory stays bounded.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class Busy(Exception):
    """No free place in the work queue (or for another kept job). ``retry_after`` in seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Cancelled(Exception):
    """The job was cancelled while it ran."""


class WorkQueue:
    """``workers`` threads and ``workers + queue`` places; :meth:`submit` never blocks."""

    def __init__(self, workers: int, queue: int) -> None:
        self.workers = workers
        self.capacity = workers + queue
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tessera-work")
        self._lock = threading.Lock()
        self._busy = 0
        self._mean_s = 2.0  # running mean of task durations, for Retry-After

    @property
    def busy(self) -> int:
        return self._busy

    def full(self) -> bool:
        return self._busy >= self.capacity

    def retry_after(self) -> int:
        """Seconds after which a place is likely free: the queue ahead, at the mean task time."""
        return max(1, min(600, round(self._mean_s * max(1, self._busy) / self.workers)))

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        with self._lock:
            if self._busy >= self.capacity:
                raise Busy(f"the server is busy ({self._busy} tasks running or waiting); retry later", self.retry_after())
            self._busy += 1
        try:
            fut = self._pool.submit(self._timed, fn, *args)
        except BaseException:
            self._release()
            raise
        fut.add_done_callback(lambda _f: self._release())
        return fut

    def _timed(self, fn: Callable[..., Any], *args: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            dt = time.perf_counter() - t0
            with self._lock:
                self._mean_s = 0.8 * self._mean_s + 0.2 * dt

    def _release(self) -> None:
        with self._lock:
            self._busy -= 1

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


@dataclass
class Job:
    """One long piece of work. Its files live in ``folder`` (a server-made name), never in a
    path a client chose; ``outputs`` maps a fixed output name ('result', 'mask') to a file there."""

    id: str
    task: str
    folder: Path
    created: float = field(default_factory=time.time)
    status: str = "queued"  # queued | running | done | failed | cancelled
    progress: float = 0.0
    stage: str = ""
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    outputs: dict[str, tuple[Path, str, str]] = field(default_factory=dict)  # name -> (file, media type, download name)
    info: dict = field(default_factory=dict)
    future: Future | None = None
    cancel_requested: bool = False

    def report(self, fraction: float, stage: str = "") -> None:
        """The progress callback handed to the work: raises :class:`Cancelled` once cancel was asked."""
        if self.cancel_requested:
            raise Cancelled("cancelled")
        self.progress = max(self.progress, min(1.0, float(fraction)))
        if stage:
            self.stage = stage

    def eta(self) -> float | None:
        """Seconds left, extrapolated from the time spent so far and the progress made."""
        if self.status != "running" or self.started is None or self.progress <= 0.02:
            return None
        spent = time.time() - self.started
        return round(spent * (1.0 - self.progress) / self.progress, 1)

    def to_json(self) -> dict:
        out = {
            "id": self.id,
            "task": self.task,
            "status": self.status,
            "progress": round(self.progress, 4),
            "stage": self.stage,
            "eta_s": self.eta(),
            "created": self.created,
            "error": self.error,
            "info": self.info,
            "outputs": {name: f"/api/jobs/{self.id}/{name}" for name in self.outputs} if self.status == "done" else {},
        }
        if self.started is not None:
            out["elapsed_s"] = round((self.finished or time.time()) - self.started, 2)
        return out


class JobStore:
    """The jobs this server knows, at most ``limit`` of them; finished ones expire after ``ttl`` s."""

    def __init__(self, root: Path, limit: int, ttl: float) -> None:
        self.root = root
        self.limit = limit
        self.ttl = ttl
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def new(self, task: str) -> Job:
        self.expire()
        with self._lock:
            if len(self._jobs) >= self.limit:
                raise Busy(f"{len(self._jobs)} jobs are kept; download and delete some (DELETE /api/jobs/ID) or retry later", 60)
            job_id = uuid.uuid4().hex
            folder = self.root / f"job-{job_id}"
            folder.mkdir(mode=0o700)
            job = Job(job_id, task, folder)
            self._jobs[job_id] = job
            return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)  # a dict lookup: the id never becomes a path

    def all(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def remove(self, job: Job) -> None:
        with self._lock:
            self._jobs.pop(job.id, None)
        shutil.rmtree(job.folder, ignore_errors=True)

    def expire(self) -> None:
        now = time.time()
        for job in self.all():
            if job.finished is not None and now - job.finished > self.ttl:
                self.remove(job)
