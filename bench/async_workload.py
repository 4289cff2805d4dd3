"""The benchmark's operations for ``async def`` code: N tasks on one event loop.

The same calls as the threads of :func:`bench.workload.measure` (the same
:class:`~bench.workload.Calls`, random streams and :class:`~bench.workload.Result`),
driven by tasks instead of threads, so a sync and an async implementation
measured in one cell answer the same requests.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import cast

from bench.peers.base import AsyncShop
from bench.workload import SEED, Calls, Result


async def measure_async(
    shop: AsyncShop,
    calls: Calls,
    operation: str,
    tasks: int,
    *,
    warmup: float,
    duration: float,
) -> Result:
    """Run ``operation`` on ``tasks`` tasks: ``warmup`` s unrecorded, then ``duration`` s."""
    make = calls.maker(shop, operation)
    result = Result(shop.name, operation, tasks, 0, 0.0)
    rngs = [random.Random(f"{SEED}-{operation}-{index}") for index in range(tasks)]
    warm_until = time.perf_counter() + warmup
    await asyncio.gather(*(_loop(make, rng, warm_until, None, Counter()) for rng in rngs))
    # Every task starts measuring together, after every warm-up call has returned, and
    # stops when the threads of measure() do: 0.2 s + duration after the warm-up's end.
    began = time.perf_counter()
    until = warm_until + 0.2 + duration
    parts = await asyncio.gather(*(_measured(make, rng, until) for rng in rngs))
    result.seconds = time.perf_counter() - began
    for latencies, errors in parts:
        result.latencies_ns.extend(latencies)
        result.errors.update(errors)
    result.ops = len(result.latencies_ns)
    result.slice_rates = [result.rate]
    return result


async def _measured(
    make: Callable[[random.Random], Callable[[], object] | None], rng: random.Random, until: float
) -> tuple[list[int], Counter[str]]:
    latencies: list[int] = []
    errors: Counter[str] = Counter()
    await _loop(make, rng, until, latencies, errors)
    return latencies, errors


async def _loop(
    make: Callable[[random.Random], Callable[[], object] | None],
    rng: random.Random,
    until: float,
    latencies: list[int] | None,
    errors: Counter[str],
) -> None:
    clock = time.perf_counter
    ns = time.perf_counter_ns
    while clock() < until:
        call = make(rng)
        if call is None:
            return  # the supply of fresh carts ran out
        t0 = ns()
        try:
            await cast("Awaitable[object]", call())
        except Exception as exc:  # counted and reported, never hidden
            errors[type(exc).__name__] += 1
        if latencies is not None:
            latencies.append(ns() - t0)
