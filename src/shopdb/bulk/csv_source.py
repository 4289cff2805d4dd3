"""CSV: records in chunks of about a megabyte, checked fast, forwarded as they are."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, BinaryIO

from shopdb.bulk.common import CHUNK_SIZE, COLUMNS, MAX_RECORD, REQUIRED, Batch, Problems
from shopdb.bulk.values import CSV_CHECKS, SUSPECT
from shopdb.limits import DESCRIPTION_MAX, PRODUCT_NAME_MAX
from shopdb.limits import name_characters_problem as product_name_problem

if TYPE_CHECKING:
    from psycopg import sql

# Python's csv module and PostgreSQL's COPY read RFC 4180 CSV the same way and
# differ outside it (a quote inside an unquoted field, a line end other than
# the header's, a line holding only "\."), so a record must be RFC 4180 with
# the header's line end before its bytes are sent.
_FIELD = r'(?:"(?:[^"]|"")*+"|[^",\r\n]*+)'
_LINE = re.compile(r"[^\n]*\n|[^\n]+")


def _column_of(value: str) -> re.Pattern[str]:
    # One value, or several joined by NUL (which no checked chunk holds).
    return re.compile(f"(?:{value}\x00)*+{value}")


# The quick checks accept a subset of what the row-by-row checks accept.
# A price is written as limits.PRICE_PATTERN says (below 1,000,000,000, at most two
# decimal places, no sign, exponent, space or leading zero).
_QUICK_PRICES = _column_of(r"(?:0|[1-9][0-9]{0,8}+)(?:\.[0-9]{1,2}+)?+")
_QUICK_COUNTS = _column_of(r"[0-9]{1,9}+")


@dataclass(frozen=True)
class _Layout:
    names: tuple[str, ...]
    positions: dict[str, int]
    eol: str


def open_csv(file: BinaryIO, problems: Problems) -> tuple[sql.SQL | sql.Composed, Iterator[Batch]]:
    chunks = _record_chunks(file)
    first = next(chunks, b"")
    end = _first_record_end(first)
    header, rest = first[:end], first[end:]
    layout = _csv_header(header, problems)
    checker = _CsvChecker(layout, problems, first_line=1 + _line_count(header))
    body = chain([rest] if rest else [], chunks)
    # The header goes too, so that the server's line numbers are the file's.
    batches = chain([Batch(len(header), 0, header)], map(checker.check, body))
    return _csv_statement(layout.names), batches


def _csv_statement(names: tuple[str, ...]) -> sql.Composed:
    from psycopg import sql

    options = "FORMAT csv, HEADER true, ENCODING 'UTF8'"
    if "description" in names:
        options += ", FORCE_NULL (description)"  # "" is NULL too, as an empty cell
    return sql.SQL("COPY products ({}) FROM STDIN WITH ({})").format(
        sql.SQL(", ").join(map(sql.Identifier, names)), sql.SQL(options)
    )


def _csv_header(raw: bytes, problems: Problems) -> _Layout:
    text = raw.decode("utf-8", "surrogateescape").removeprefix("\ufeff")
    eol = "\r\n" if text.endswith("\r\n") else "\n"
    if not text.strip():
        problems.add(1, None, "there is no header: the first line must name the columns")
        return _Layout((), {}, eol)
    try:
        cells = next(csv.reader(io.StringIO(text, newline="\n"), strict=True))
    except csv.Error as exc:
        problems.add(1, None, f"the header is not valid CSV ({exc})")
        return _Layout((), {}, eol)
    names = tuple(cell.strip().lower() for cell in cells)
    positions: dict[str, int] = {}
    for index, name in enumerate(names):
        if name not in COLUMNS:
            expected = ", ".join(COLUMNS)
            problems.add(1, None, f"column {index + 1} is not a known column (expected {expected})")
        elif name in positions:
            problems.add(1, None, f"column {name!r} appears twice")
        else:
            positions[name] = index
    missing = [name for name in REQUIRED if name not in positions]
    if missing:
        problems.add(
            1, None, f"missing column{'s' if len(missing) > 1 else ''}: {', '.join(missing)}"
        )
    return _Layout(names, positions, eol)


class _CsvChecker:
    """Checks chunks of records in file order, counting lines."""

    def __init__(self, layout: _Layout, problems: Problems, first_line: int) -> None:
        self.layout = layout
        self.problems = problems
        self.line = first_line
        self.width = len(layout.names)
        record = ",".join([_FIELD] * self.width)
        eol = re.escape(layout.eol)
        self.chunk_shape = re.compile(f"(?:{record}{eol})*+(?:{record})?")
        self.record_shape = re.compile(f"{record}(?:{eol})?")
        self.name = layout.positions.get("name")
        self.description = layout.positions.get("description")
        self.price = layout.positions.get("price")
        self.count = layout.positions.get("inventory_count")

    def check(self, chunk: bytes) -> Batch:
        first_line = self.line
        self.line += _line_count(chunk)
        if not self.width:  # no usable header: the rows cannot be read
            return Batch(len(chunk), 0)
        rows = self._quick(chunk)
        if rows is None:
            rows = self._row_by_row(chunk, first_line)
        return Batch(len(chunk), rows, chunk)

    def _quick(self, chunk: bytes) -> int | None:
        """The number of rows when the whole chunk is surely valid, else None."""
        values = self._quick_values(chunk)
        if not values:
            return None
        width = self.width
        if self.name is not None:
            names = values[self.name :: width]
            if max(map(len, names)) > PRODUCT_NAME_MAX or any(map(product_name_problem, names)):
                return None
        descriptions = values[self.description :: width] if self.description is not None else []
        if descriptions and max(map(len, descriptions)) > DESCRIPTION_MAX:
            return None
        if self.description is not None and "\r" in "\x00".join(values[self.description :: width]):
            return None  # a CR inside a description (CR LF line ends are not values)
        prices = "\x00".join(values[self.price :: width]) if self.price is not None else "0"
        counts = "\x00".join(values[self.count :: width]) if self.count is not None else "0"
        if not (_QUICK_PRICES.fullmatch(prices) and _QUICK_COUNTS.fullmatch(counts)):
            return None
        return len(values) // width

    def _quick_values(self, chunk: bytes) -> list[str] | None:
        """Every value of the chunk, row after row, when its text and shape are valid."""
        if b"\x00" in chunk:
            return None
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if SUSPECT.search(text) or not self.chunk_shape.fullmatch(text):
            return None
        try:
            return list(chain.from_iterable(csv.reader(io.StringIO(text, newline="\n"))))
        except csv.Error:
            return None

    def _row_by_row(self, chunk: bytes, line: int) -> int:
        """Check each record of the chunk, recording every problem; return the row count."""
        lines = _LINE.findall(chunk.decode("utf-8", "surrogateescape"))
        taken: list[str] = []

        def feed() -> Iterator[str]:
            for text in lines:
                taken.append(text)
                yield text

        reader = csv.reader(feed(), strict=True)
        rows = 0
        while True:
            try:
                values: list[str] | None = next(reader)
                error = ""
            except StopIteration:
                return rows
            except csv.Error as exc:
                values, error = None, str(exc)
            self._record("".join(taken), values, line, error)
            line += len(taken)
            taken.clear()
            rows += 1

    def _record(self, raw: str, values: list[str] | None, line: int, error: str) -> None:
        add = self.problems.add
        if values is None:
            add(line, None, f"is not valid CSV ({error})")
            return
        if not values:
            add(line, None, "is empty (a record on every line, or none)")
            return
        if len(values) != self.width:
            found = f"{len(values)} field{'s' if len(values) != 1 else ''}"
            add(line, None, f"has {found}; the header has {self.width}")
            return
        if not self.record_shape.fullmatch(raw):
            add(line, None, self._shape_problem(raw))
        for column, index in self.layout.positions.items():
            problem = CSV_CHECKS[column](values[index])
            if problem:
                add(line, column, problem)

    def _shape_problem(self, raw: str) -> str:
        crlf = raw.endswith("\r\n")
        if self.layout.eol == "\n" and crlf:
            return "ends with CR LF, but the header ends with LF (use one kind of line end)"
        if self.layout.eol == "\r\n" and raw.endswith("\n") and not crlf:
            return "ends with LF, but the header ends with CR LF (use one kind of line end)"
        if '"' in raw:
            return (
                "has a double quote inside a field that does not start with one "
                '(quote the whole field and double the quote: "say ""hi""")'
            )
        return "has a carriage return outside quotes"


def _record_chunks(file: BinaryIO) -> Iterator[bytes]:
    """The file in pieces of about :data:`CHUNK_SIZE` that end where a record ends."""
    pending = b""
    while data := file.read(CHUNK_SIZE):
        buffer = pending + data if pending else data
        cut = _last_record_end(buffer)
        if not cut and len(buffer) > MAX_RECORD:
            # An unclosed quote, or a record too long: cut at a line end so
            # memory stays bounded; the checks then report the line.
            cut = buffer.rfind(b"\n") + 1 or len(buffer)
        if cut:
            yield buffer[:cut]
        pending = buffer[cut:]
    if pending:
        yield pending


def _last_record_end(buffer: bytes) -> int:
    # A line end closes a record when it is outside quotes, that is after an
    # even number of quote characters (a doubled quote counts twice): how
    # PostgreSQL finds records too.
    end = buffer.rfind(b"\n")
    if end < 0:
        return 0
    quotes = buffer.count(b'"', 0, end)
    while quotes % 2:
        previous = buffer.rfind(b"\n", 0, end)
        if previous < 0:
            return 0
        quotes -= buffer.count(b'"', previous, end)
        end = previous
    return end + 1


def _first_record_end(buffer: bytes) -> int:
    start = quotes = 0
    while (end := buffer.find(b"\n", start)) >= 0:
        quotes += buffer.count(b'"', start, end)
        if quotes % 2 == 0:
            return end + 1
        start = end + 1
    return len(buffer)


def _line_count(chunk: bytes) -> int:
    return chunk.count(b"\n") + (0 if not chunk or chunk.endswith(b"\n") else 1)
