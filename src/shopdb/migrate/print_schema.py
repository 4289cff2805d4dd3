"""``shopdb print-schema``: our tables as the live database defines them, as DDL.

Built from the catalog with PostgreSQL's own ``format_type``,
``pg_get_constraintdef`` and ``pg_get_indexdef``, so what is printed is what
the server has, not what a reflection layer thinks it has.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

_COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid)
FROM pg_attribute a
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""
# Primary key, unique, check, then foreign keys, each group by name.
_CONSTRAINTS = """
SELECT conname, pg_get_constraintdef(oid)
FROM pg_constraint WHERE conrelid = %s::regclass AND contype <> 'n'
ORDER BY array_position(ARRAY['p', 'u', 'c', 'x', 'f']::"char"[], contype), conname
"""
# Indexes that no constraint created (those are printed with the table).
_INDEXES = """
SELECT pg_get_indexdef(i.indexrelid)
FROM pg_index i
WHERE i.indrelid = %s::regclass
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
ORDER BY i.indexrelid::regclass::text
"""


def live_ddl(conn: psycopg.Connection[tuple[object, ...]], tables: list[str]) -> str:
    """``CREATE TABLE`` and ``CREATE INDEX`` statements for those of ``tables`` that exist."""
    parts = []
    for table in tables:
        exists = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()
        if not exists or exists[0] is None:
            continue
        lines = []
        for name, type_, not_null, default in conn.execute(_COLUMNS, (table,)):
            line = f"    {name} {type_}"
            if not_null:
                line += " NOT NULL"
            if default is not None:
                line += f" DEFAULT {default}"
            lines.append(line)
        for name, definition in conn.execute(_CONSTRAINTS, (table,)):
            lines.append(f"    CONSTRAINT {name} {definition}")
        statement = f"CREATE TABLE {table} (\n" + ",\n".join(lines) + "\n);"
        indexes = [f"{row[0]};" for row in conn.execute(_INDEXES, (table,))]
        parts.append("\n".join([statement, *indexes]))
    return "\n\n".join(parts) + ("\n" if parts else "")
