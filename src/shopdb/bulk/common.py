"""What the bulk import's readers and loader share: limits, batches, problems."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from shopdb.errors import RowProblem

Format = Literal["csv", "jsonl"]
#: Called with the number of bytes of the file read since the last call.
Progress = Callable[[int], None]

#: The columns a file may have; only ``description`` may be left out.
COLUMNS = ("name", "description", "price", "inventory_count")
REQUIRED = ("name", "price", "inventory_count")
#: The formats each file extension stands for.
EXTENSIONS: dict[str, Format] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
#: Most problems an :class:`~shopdb.errors.ImportFailed` lists (it counts them all).
MAX_PROBLEMS = 20
#: Longest CSV record or JSON line, in bytes.
MAX_RECORD = 16 << 20
CHUNK_SIZE = 1 << 20


class Invalid(Exception):
    """A bad row was found: stop sending, roll back."""


@dataclass
class Batch:
    """A piece of the file: its size in bytes, its rows, and what to send for them."""

    size: int
    rows: int
    data: bytes | None = None
    records: list[tuple[Any, ...]] | None = None


class Problems:
    """The problems found so far: the first :data:`MAX_PROBLEMS`, and how many in all."""

    def __init__(self) -> None:
        self.first: list[RowProblem] = []
        self.count = 0

    def add(self, line: int, field: str | None, reason: str) -> None:
        self.count += 1
        if len(self.first) < MAX_PROBLEMS:
            self.first.append(RowProblem(line, field, reason))


def ignore(_: int) -> None:
    """A :data:`Progress` that shows nothing."""
