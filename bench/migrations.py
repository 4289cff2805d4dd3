"""``make bench-migrations``: what shopdb's migrations cost a shop that stays open.

A fresh database at 0004 gets N products and N cart_items (default
2,000,000) and N/10 users and carts by COPY; steady traffic runs beside it
(bench/migrations_traffic.py). After a baseline phase, every later migration
is applied, one phase each, then each is reverted back to 0004. Per phase:
the worst latency of reads and of writes, and the longest window in which no
statement completed. ``--variant both`` (the default) runs the whole
sequence twice in one invocation, with the earlier 0005 (one transaction,
every lock held to the end; kept as a test fixture) and with the current
one, so the two are measured on the same machine minutes apart.

Target (issue 10): worst statement latency under 500 ms at 2M rows, upgrade
and downgrade.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench.migrations_traffic import KINDS, Sample, Traffic, load
from bench.run import database_for
from shopdb.migrate import Migrator, Step

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "migrations.md"
START, END = "<!-- bench-migrations:start -->", "<!-- bench-migrations:end -->"
EARLIER_0005 = ROOT / "tests" / "fixtures" / "0005_harden_integrity.before_issue_10.py.txt"
BASE = "0004"
TARGET_MS = 500.0


@dataclass(frozen=True)
class Phase:
    """A span of the run: the baseline, or one migration applied or reverted."""

    variant: str
    name: str
    start: float
    end: float


@dataclass(frozen=True)
class Row:
    """A phase's figures."""

    phase: Phase
    statements: int
    worst_ms: dict[str, float]
    longest_gap_ms: float
    errors: int

    @property
    def worst_write_ms(self) -> float:
        """The worst of the two writes."""
        return max(v for k, v in self.worst_ms.items() if k.startswith("update"))


def _migrator(url: str, versions: Path | None) -> Migrator:
    from shopdb.config import load_settings, parse_database_url
    from shopdb.connect import Target

    settings = load_settings(migrations_dir=versions, app_migrations_dir=None)
    return Migrator(Target(parse_database_url(url)), settings)


def run_variant(variant: str, args: argparse.Namespace, versions: Path | None) -> list[Row]:
    """Load, then baseline, every upgrade and every downgrade beside traffic."""
    url = database_for(args.database, migrated=False)
    migrator = _migrator(url, versions)
    migrator.run(upto=BASE)
    started = time.perf_counter()
    load(url, args.rows, args.users)
    took = time.perf_counter() - started
    _log(f"{variant}: loaded {args.rows:,} products and cart_items in {took:.0f} s")
    phases: list[Phase] = []

    def phase(name: str, action: Callable[[], object]) -> None:
        start = time.perf_counter()
        action()
        phases.append(Phase(variant, name, start, time.perf_counter()))
        _log(f"{variant}: {name} {phases[-1].end - start:.1f} s")

    later = [m for m in migrator.scripts() if m.revision > BASE]
    with Traffic(url, args.rows, rate=args.rate, clients=args.clients, seed=args.seed) as traffic:
        phase("baseline", lambda: time.sleep(args.baseline))
        # Between migrations the traffic settles (a client held up works off
        # its backlog), so each phase shows what that migration did.
        for migration in later:
            phase(
                f"upgrade {migration.revision} {migration.name}", _up(migrator, migration.revision)
            )
            time.sleep(args.settle)
        for migration in reversed(later):
            phase(
                f"downgrade {migration.revision} {migration.name}",
                _down(migrator, migration.revision),
            )
            time.sleep(args.settle)
        phase("after", lambda: time.sleep(args.baseline / 2))
    return [_row(p, traffic.samples) for p in phases]


def _up(migrator: Migrator, revision: str) -> Callable[[], None]:
    return lambda: _exactly(migrator.run(upto=revision), revision)


def _down(migrator: Migrator, revision: str) -> Callable[[], None]:
    return lambda: _exactly(migrator.revert(1), revision)


def _exactly(steps: list[Step], revision: str) -> None:
    done = [s.migration.revision for s in steps]
    if done != [revision]:
        raise RuntimeError(f"expected to run {revision}, ran {done}")


def _row(phase: Phase, samples: list[Sample]) -> Row:
    # A statement counts in every phase its wait overlaps, so one held up by a
    # lock shows in the phase that held it up.
    inside = [s for s in samples if s.due < phase.end and s.done > phase.start]
    worst = {
        kind: 1000 * max((s.latency for s in inside if s.kind == kind), default=0.0)
        for kind in KINDS
    }
    completions = sorted(
        [phase.start, phase.end, *(s.done for s in inside if phase.start <= s.done <= phase.end)]
    )
    gap = max(b - a for a, b in itertools.pairwise(completions))
    return Row(phase, len(inside), worst, 1000 * gap, sum(1 for s in inside if s.error))


def render(rows: list[Row]) -> str:
    """A Markdown table of every phase."""
    lines = [
        "| variant | phase | s | statements | worst read ms | worst UPDATE products ms "
        "| worst UPDATE cart_items ms | longest window without a completed statement ms | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        p = r.phase
        lines.append(
            f"| {p.variant} | {p.name} | {p.end - p.start:.1f} | {r.statements:,} "
            f"| {r.worst_ms['read products']:,.0f} | {r.worst_ms['update products']:,.0f} "
            f"| {r.worst_ms['update cart_items']:,.0f} | {r.longest_gap_ms:,.0f} | {r.errors} |"
        )
    return "\n".join(lines)


def verdict(rows: list[Row]) -> str:
    """Whether the current migrations meet the target."""
    migrating = [
        r
        for r in rows
        if r.phase.variant == "current" and r.phase.name.split()[0] in {"upgrade", "downgrade"}
    ]
    if not migrating:
        return ""
    worst = max(max(r.worst_ms.values()) for r in migrating)
    met = "met" if worst < TARGET_MS else "NOT met"
    return (
        f"Target (worst statement latency under {TARGET_MS:.0f} ms while migrating, upgrade "
        f"and downgrade): {met}, worst {worst:,.0f} ms."
    )


def environment(url: str, load_before: tuple[float, ...], load_after: tuple[float, ...]) -> str:
    """The machine, the server, and how busy the machine was around the run."""
    with psycopg.connect(url) as conn:
        server = conn.execute("SHOW server_version").fetchone()
    return (
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()}; "
        f"PostgreSQL {server[0] if server else '?'} (same machine, over TCP); "
        f"Python {platform.python_version()}\n"
        f"- machine noise: load average {load_before[0]:.2f} / {load_before[1]:.2f} "
        f"(1 / 5 min) before the run, {load_after[0]:.2f} / {load_after[1]:.2f} after; "
        "the machine is shared with other work, and the baseline rows show what that "
        "costs the traffic before any migration runs\n"
        f"- measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )


def _log(message: str) -> None:
    print(f"   {message}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=2_000_000, help="products, and cart_items")
    parser.add_argument("--users", type=int, default=None, help="users and carts (default rows/10)")
    parser.add_argument("--rate", type=float, default=200.0, help="transactions/s, all clients")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--baseline", type=float, default=20.0, help="seconds before migrating")
    parser.add_argument(
        "--settle", type=float, default=5.0, help="seconds of traffic between migrations"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variant", choices=("current", "earlier", "both"), default="both")
    parser.add_argument("--database", default="shopdb_bench_migrations")
    parser.add_argument(
        "--write-docs", action="store_true", help="put the table into docs/migrations.md"
    )
    args = parser.parse_args()
    args.users = args.users or max(1, args.rows // 10)

    load_before = os.getloadavg()
    rows: list[Row] = []
    variants = ["earlier", "current"] if args.variant == "both" else [args.variant]
    with tempfile.TemporaryDirectory() as tmp:
        earlier = Path(tmp) / "versions"
        shutil.copytree(
            ROOT / "src" / "shopdb" / "migrations" / "versions",
            earlier,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        shutil.copy(EARLIER_0005, earlier / "0005_harden_integrity.py")
        for variant in variants:
            rows += run_variant(variant, args, earlier if variant == "earlier" else None)
    load_after = os.getloadavg()
    table = render(rows)
    url = _database_url(args.database)
    text = "\n\n".join(
        part for part in (table, verdict(rows), environment(url, load_before, load_after)) if part
    )
    print(text)
    if args.write_docs:
        _write_docs(text, args)


def _database_url(name: str) -> str:
    from shopdb.config import load_settings
    from shopdb.connect import libpq_url, resolve_target

    base = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL")
    server = resolve_target(base, load_settings(), announce=False)
    return libpq_url(server.url, name)


def _write_docs(text: str, args: argparse.Namespace) -> None:
    command = "make bench-migrations"
    if args.rows != 2_000_000:
        command = f"python -m bench.migrations --rows {args.rows} --write-docs"
    where = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if where:
        command = f"BENCH_DATABASE_URL=<server> {command}"
    block = (
        f"{START}\nMeasured with `{command}` ({args.rows:,} products and cart_items, "
        f"{args.users:,} users and carts; {args.clients} clients at {args.rate:.0f} "
        f"transactions/s):\n\n{text}\n{END}"
    )
    docs = DOCS.read_text()
    if START not in docs:
        raise SystemExit(f"{DOCS} has no {START} marker")
    before, rest = docs.split(START, 1)
    _, after = rest.split(END, 1)
    DOCS.write_text(before + block + after)
    _log(f"wrote {DOCS}")


if __name__ == "__main__":
    main()
