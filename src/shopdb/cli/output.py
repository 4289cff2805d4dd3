"""Small formatting helpers for short, aligned command output."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime


def table(rows: Sequence[Sequence[str]]) -> Iterator[str]:
    """Rows as left-aligned columns separated by two spaces."""
    if not rows:
        return
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        yield "  ".join(cells).rstrip()


def duration(seconds: float) -> str:
    """``12 ms`` or ``3.4 s``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.1f} s"


def when(moment: datetime | None) -> str:
    """A timestamp in UTC to the second, or ``applied (time unknown)``."""
    if moment is None:
        return "applied (time unknown)"
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
