"""The server's settings: one frozen dataclass, one field per ``tessera serve`` flag."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def is_loopback(host: str) -> bool:
    """True for 'localhost' and loopback IP literals (127.0.0.0/8, ::1)."""
    h = host.strip("[]").lower()
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class WebConfig:
    """host/port: where the server listens (loopback by default). max_upload_mb: largest request
    body. max_pixels: largest image decoded (width x height, checked from the header).
    workers: images processed at the same time. queue: requests that may wait for a worker; beyond
    workers + queue, work is refused with 503 and Retry-After. jobs: finished jobs whose results are
    kept for download (each for job_ttl seconds). allowed_hosts: extra host names the Host and
    Origin headers may carry (the bound host and loopback names are always allowed)."""

    host: str = "127.0.0.1"
    port: int = 8000
    max_upload_mb: float = 50.0
    max_pixels: int = 40_000_000
    workers: int = 1
    queue: int = 8
    jobs: int = 32
    job_ttl: float = 3600.0
    allowed_hosts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be within 0..65535, got {self.port}")
        if not self.host or any(c in self.host for c in "/ \t"):
            raise ValueError(f"host must be a host name or IP address, got {self.host!r}")
        if self.max_upload_mb <= 0:
            raise ValueError(f"max_upload_mb must be > 0, got {self.max_upload_mb}")
        if self.max_pixels < 1:
            raise ValueError(f"max_pixels must be at least 1, got {self.max_pixels}")
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        if self.queue < 0:
            raise ValueError(f"queue must be >= 0, got {self.queue}")
        if self.jobs < 1:
            raise ValueError(f"jobs must be at least 1, got {self.jobs}")
        if self.job_ttl <= 0:
            raise ValueError(f"job_ttl must be > 0 seconds, got {self.job_ttl}")
        object.__setattr__(self, "allowed_hosts", tuple(h.lower() for h in self.allowed_hosts))

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def public(self) -> bool:
        """True when the server listens beyond this machine (a host that is not loopback)."""
        return not is_loopback(self.host)

    def host_allowed(self, hostname: str) -> bool:
        """May a request name ``hostname`` (no port) in its Host or Origin header?

        Loopback names and IP literals are never a DNS-rebinding target; other names only when
        they are the bound host or listed in ``allowed_hosts``."""
        h = hostname.strip("[]").lower()
        if not h:
            return False
        if is_loopback(h) or h == self.host.strip("[]").lower() or h in self.allowed_hosts:
            return True
        try:
            ipaddress.ip_address(h)
        except ValueError:
            return False
        return self.public  # another IP literal reaches us only when we listen beyond loopback
