"""What the Store costs in CPU per call over a bare connection, sync and async.

Throughput hides where time goes; this counts the client's CPU
(``time.process_time``, which a neighbour's load or the server's work do not
inflate) over blocks of calls of one operation, a block of the Store's and
a block of the bare connection's in turn, and takes each side's median
block (a neighbour that takes the core away still costs cache misses, and
the median leaves those blocks out). The difference is what the Store adds:
the pool's checkout and checkin, the argument checks, driving the
operation, decoding rows into pydantic models.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast

from bench.peers.base import AsyncShop, Shop
from bench.workload import SEED, Calls

OPERATIONS = ("get_product", "list_products", "add_to_cart", "get_cart", "checkout")


@dataclass
class Cost:
    """Microseconds of client CPU per call of one operation."""

    operation: str
    mode: str  # "sync" or "async"
    bare_us: float
    store_us: float

    @property
    def over_us(self) -> float:
        """What the Store adds per call."""
        return self.store_us - self.bare_us


def _calls(
    calls: Calls, shop: Shop | AsyncShop, op: str, count: int, seed: int
) -> list[Callable[[], object]]:
    make = calls.maker(shop, op)
    rng = random.Random(f"{SEED}-cpu-{op}-{seed}")
    made = [make(rng) for _ in range(count)]
    return [call for call in made if call is not None]


def sync_costs(
    store: Shop, bare: Shop, calls: Calls, *, block: int = 200, rounds: int = 10
) -> list[Cost]:
    """Per operation, ``rounds`` blocks of ``block`` calls on each, alternating."""
    costs = []
    for op in OPERATIONS:
        per_call: tuple[list[float], list[float]] = ([], [])
        for number in range(rounds):
            for side in (number % 2, 1 - number % 2):  # who goes first alternates
                todo = _calls(calls, (bare, store)[side], op, block, number)
                t0 = time.process_time()
                for call in todo:
                    call()
                per_call[side].append((time.process_time() - t0) / len(todo) * 1e6)
        costs.append(_cost(op, "sync", per_call))
    return costs


async def async_costs(
    store: AsyncShop, bare: AsyncShop, calls: Calls, *, block: int = 200, rounds: int = 10
) -> list[Cost]:
    """:func:`sync_costs` for the async peers: one task, awaiting each call in turn."""
    costs = []
    for op in OPERATIONS:
        per_call: tuple[list[float], list[float]] = ([], [])
        for number in range(rounds):
            for side in (number % 2, 1 - number % 2):
                todo = _calls(calls, (bare, store)[side], op, block, number)
                t0 = time.process_time()
                for call in todo:
                    await cast("Awaitable[object]", call())
                per_call[side].append((time.process_time() - t0) / len(todo) * 1e6)
        costs.append(_cost(op, "async", per_call))
    return costs


def _cost(op: str, mode: str, per_call: tuple[list[float], list[float]]) -> Cost:
    return Cost(op, mode, statistics.median(per_call[0]), statistics.median(per_call[1]))


def render(costs: list[Cost]) -> str:
    """A Markdown table: CPU per call, bare and Store, and the difference."""
    lines = [
        "| operation | mode | bare connection us/call | Store us/call | Store over bare us |",
        "|---|---|---:|---:|---:|",
    ]
    lines += [
        f"| {c.operation} | {c.mode} | {c.bare_us:.1f} | {c.store_us:.1f} | {c.over_us:+.1f} |"
        for c in costs
    ]
    return "\n".join(lines)
