"""The `tessera` command line: a thin layer that parses flags into a frozen config and
calls the library. Exit codes: 0 success, 2 usage error, 1 some files failed.

Restoration is imagination, not recovery: synthesized pixels are a plausible guess.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from rich.markup import escape

from tessera.cli import anonymize, detect, eval, export, pixelate, restore, serve, train  # noqa: F401  (each registers its command)
from tessera.cli.app import app, console
from tessera.cli.common import _one_line

__all__ = ["app", "main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: exit 0 (success), 1 (some files failed), 2 (usage error, one
    line), 130 (interrupted); never a traceback for user errors."""
    import typer
    from typer._click import exceptions as click  # typer vendors its own click

    try:
        code = app(args=list(argv) if argv is not None else None, prog_name="tessera", standalone_mode=False)
    except click.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `tessera` alone: the help, as usage
            console.print(exc.format_message(), highlight=False, markup=False)
            sys.exit(2)
        where = f"tessera {exc.ctx.command.name} --help" if exc.ctx is not None and exc.ctx.command.name else "tessera --help"
        message = " ".join(exc.format_message().split())  # one line, however the parameter was named
        console.print(f"[red]error:[/] {escape(message)} (see '{where}')", highlight=False, soft_wrap=True)
        sys.exit(2)
    except click.ClickException as exc:
        console.print(f"[red]error:[/] {escape(' '.join(exc.format_message().split()))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        console.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # a last guard: one clear line instead of a traceback
        if os.environ.get("TESSERA_DEBUG"):
            raise
        console.print(f"[red]error:[/] {escape(_one_line(exc))} (set TESSERA_DEBUG=1 for details)", highlight=False, soft_wrap=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
