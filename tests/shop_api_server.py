"""The reference service (examples/shop_api) as a real uvicorn process on a free port.

Tests talk to it with httpx over TCP, as any client would: no ASGI shortcut.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
#: The key the test servers sign tokens with (so a test can forge an expired one).
SECRET = "test-secret-of-the-shop-api"
#: How long the server may take to open its pool and answer /health.
READY_SECONDS = 60


@dataclass(frozen=True)
class Service:
    """A running service: where it listens and the log its process writes."""

    url: str
    log: Path

    def output(self) -> str:
        """What the server printed so far (for a failing test's message)."""
        return self.log.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running_service(database_url: str, workdir: Path) -> Iterator[Service]:
    """``python -m examples.shop_api`` on ``database_url``; stopped when the block ends."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "SHOPDB_"))}
    env.update(DATABASE_URL=database_url, SHOP_API_SECRET=SECRET, PYTHONUNBUFFERED="1")
    log = workdir / f"shop_api_{port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "examples.shop_api", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    service = Service(f"http://127.0.0.1:{port}", log)
    try:
        _wait_until_ready(service, process)
        yield service
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)


def _wait_until_ready(service: Service, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the service exited ({process.returncode}):\n{service.output()}")
        try:
            if httpx.get(f"{service.url}/health", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(
        f"the service did not answer /health in {READY_SECONDS} s:\n{service.output()}"
    )
