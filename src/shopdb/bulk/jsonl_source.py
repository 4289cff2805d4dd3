"""JSON Lines: one object per line, each checked and sent with ``write_row``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any, BinaryIO

from shopdb.bulk.common import CHUNK_SIZE, COLUMNS, MAX_RECORD, REQUIRED, Batch, Problems
from shopdb.bulk.values import JSON_CHECKS, json_whole

if TYPE_CHECKING:
    from psycopg import sql


def open_jsonl(
    file: BinaryIO, problems: Problems
) -> tuple[sql.SQL | sql.Composed, Iterator[Batch]]:
    from psycopg import sql

    statement = sql.SQL(
        "COPY products (name, description, price, inventory_count) FROM STDIN"
    )  # text format: write_row() escapes every value
    return statement, _jsonl_batches(file, problems)


def _jsonl_batches(file: BinaryIO, problems: Problems) -> Iterator[Batch]:
    records: list[tuple[Any, ...]] = []
    size = 0
    for line, (raw, length) in enumerate(_bounded_lines(file), 1):
        size += length
        record = _json_record(raw, line, problems)
        if record is not None:
            records.append(record)
        if len(records) >= 1000 or size >= CHUNK_SIZE:
            yield Batch(size, len(records), records=records)
            records, size = [], 0
    yield Batch(size, len(records), records=records)


def _bounded_lines(file: BinaryIO) -> Iterator[tuple[bytes, int]]:
    """Each line (cut after :data:`MAX_RECORD` + 1 bytes) and its full length."""
    while line := file.readline(MAX_RECORD + 1):
        length = len(line)
        if length > MAX_RECORD and not line.endswith(b"\n"):
            while more := file.readline(CHUNK_SIZE):
                length += len(more)
                if more.endswith(b"\n"):
                    break
        yield line, length


def _json_record(raw: bytes, line: int, problems: Problems) -> tuple[Any, ...] | None:
    obj = _json_object(raw, line, problems)
    if obj is None:
        return None
    before = problems.count
    for key in obj:
        if key not in COLUMNS:
            problems.add(line, key[:60], "is not a known field")
    for key in REQUIRED:
        if key not in obj:
            problems.add(line, key, "is missing")
    for key, check in JSON_CHECKS.items():
        if key in obj and (problem := check(obj[key])):
            problems.add(line, key, problem)
    if problems.count != before:
        return None
    # Checked: the price is a string such as "19.99", the count an integer (3.0 is 3).
    count = json_whole(obj["inventory_count"])
    return (obj["name"], obj.get("description"), Decimal(obj["price"]), count)


def _json_object(raw: bytes, line: int, problems: Problems) -> dict[str, Any] | None:
    """The line's object; None for a blank line, or after recording why it is not one."""
    try:
        return _parse_json_line(raw, first=line == 1)
    except _BadLine as exc:
        problems.add(line, None, str(exc))
        return None


class _BadLine(Exception):
    """A JSON line that holds no object; the message says why."""


def _parse_json_line(raw: bytes, *, first: bool) -> dict[str, Any] | None:
    if len(raw) > MAX_RECORD:
        raise _BadLine(f"is longer than {MAX_RECORD >> 20} MiB")
    try:
        text = raw.decode("utf-8")
        if first:
            text = text.removeprefix("\ufeff")
        if not text.strip():
            return None  # a blank line holds no product
        obj = json.loads(
            text, parse_float=Decimal, parse_constant=Decimal, object_pairs_hook=_unique_keys
        )
    except UnicodeDecodeError as exc:
        raise _BadLine(f"is not valid UTF-8 (byte {exc.start + 1})") from None
    except json.JSONDecodeError as exc:
        raise _BadLine(f"is not valid JSON ({exc.msg} at column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:
        raise _BadLine(f"is not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise _BadLine("must be a JSON object")
    return obj


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise ValueError("a key appears twice")
        seen.add(key)
    return dict(pairs)
