"""The Typer app every command module registers with, and the console all of them print to."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(
    name="tessera",
    help=(
        "Find, restore and add mosaics (pixelation), blurs and holes in images.\n\n"
        "Restoration is imagination, not recovery: a restored face is not the person who was hidden."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)


@app.callback()
def _root() -> None:
    """Find, restore and add mosaics (pixelation), blurs and holes in images.

    Restoration is imagination, not recovery: a restored face is not the person who was hidden.
    """

