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


def check_choice(field: str, value, choices) -> None:
    """ConfigError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(field, f"must be one of {', '.join(map(str, choices))}, got {value!r}")


def check_number(field: str, value: float | None, lo: float, hi: float, *, open_lo: bool = False) -> None:
    """ConfigError unless ``value`` (None passes) is a finite number in [lo, hi] ((lo, hi] with open_lo)."""
    import math

    if value is None:
        return
    if not math.isfinite(value) or value > hi or (value <= lo if open_lo else value < lo):
        span = f"{'(' if open_lo else '['}{lo:g}, {hi:g}]"
        raise ConfigError(field, f"must be a finite number in {span}, got {value!r}")
