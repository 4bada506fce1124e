"""The `tessera` command line: a thin layer that parses flags into a frozen config and
calls the library. Exit codes: 0 success, 2 usage error, 1 some files failed.

Restoration is imagination, not recovery: synthesized pixels are a plausible guess.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from tessera.cli import anonymize, detect, eval, export, pixelate, restore, serve, train  # noqa: F401  (each registers its command)
from tessera.cli.app import app, console
from tessera.cli.common import _one_line

__all__ = ["app", "main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: never shows a traceback for user errors."""
    try:
        app(args=list(argv) if argv is not None else None, prog_name="tessera", standalone_mode=True)
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # a last guard: one clear line instead of a traceback
        if os.environ.get("TESSERA_DEBUG"):
            raise
        console.print(f"[red]error:[/] {_one_line(exc)} (set TESSERA_DEBUG=1 for details)", highlight=False)
        sys.exit(1)

