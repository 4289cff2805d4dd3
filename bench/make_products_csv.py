"""Write a deterministic products CSV for measuring ``shopdb import products``.

Same arguments, same bytes: the rows come from ``random.Random(seed)``. The
file looks like a spreadsheet export: a header, about one description in
eight quoted because it holds a comma (a few with doubled quotes), one in ten
empty (NULL), prices with two decimals.

    python -m bench.make_products_csv /tmp/products-1m.csv            # 1,000,000 rows
    python -m bench.make_products_csv /tmp/products-2m.csv --rows 2000000

Do not commit the files it writes.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Iterator
from pathlib import Path

ADJECTIVES = (
    "Red", "Blue", "Green", "Small", "Large", "Organic", "Classic", "Deluxe",
    "Compact", "Wireless", "Vintage", "Smart", "Bamboo", "Steel", "Cotton", "Ceramic",
)  # fmt: skip
NOUNS = (
    "Mug", "Lamp", "Chair", "Backpack", "Notebook", "Headphones", "Kettle", "Blanket",
    "Bottle", "Speaker", "Teapot", "Wallet", "Candle", "Pillow", "Clock", "Basket",
)  # fmt: skip
PHRASES = (
    "Made to last",
    "Ships in two days",
    "A customer favourite",
    "Dishwasher safe",
    "Limited edition",
    "Hand finished",
    "Fits most spaces",
    "Easy to clean",
)


def lines(count: int, seed: int) -> Iterator[str]:
    """The data lines, one at a time (no header)."""
    rng = random.Random(seed)
    for i in range(1, count + 1):
        name = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {i:07d}"
        kind = rng.random()
        if kind < 0.10:
            description = ""
        elif kind < 0.20:
            description = f'"{rng.choice(PHRASES)}, {rng.choice(PHRASES).lower()}"'
        elif kind < 0.22:
            description = f'"The ""{rng.choice(NOUNS).lower()}"" everyone asks for"'
        else:
            description = f"{rng.choice(PHRASES)}. {rng.choice(PHRASES)}."
        cents = rng.randint(50, 99_999)
        price = f"{cents // 100}.{cents % 100:02d}"
        inventory = rng.randint(0, 1000)
        yield f"{name},{description},{price},{inventory}\n"


def write(path: Path, count: int, seed: int) -> None:
    """Write ``count`` rows (and a header) to ``path``, in batches."""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("name,description,price,inventory_count\n")
        batch: list[str] = []
        for line in lines(count, seed):
            batch.append(line)
            if len(batch) == 10_000:
                out.write("".join(batch))
                batch.clear()
        out.write("".join(batch))


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    write(args.path, args.rows, args.seed)
    print(f"wrote {args.rows} products to {args.path} ({args.path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
