"""The error a file that cannot be read or written raises: images (:class:`tessera.io.image.ImageIOError`)
and videos (:class:`tessera.io.video.VideoError`) alike."""

from __future__ import annotations

import os
from pathlib import Path


class FileIOError(Exception):
    """A file could not be read or written. ``str(err)`` is ``"<path>: <reason>"``, one line."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(path, reason)  # both args kept so the error pickles across processes
        self.path = Path(path)
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"
