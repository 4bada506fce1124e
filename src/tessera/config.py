"""What every command's frozen config shares: the error a bad field raises.

A config dataclass validates its fields in ``__post_init__`` and raises :class:`ConfigError` naming
the field; the CLI turns it into a usage error on the flag of the same name (``cell_range`` ->
``--cell-range``), the web API into a 400.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A config field whose value is not allowed. ``field``: the field's name."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
