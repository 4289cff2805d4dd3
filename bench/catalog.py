"""A realistic catalog for the search benchmark: names and descriptions people would search.

Same arguments, same rows (``random.Random(seed)``). A product is a *kind*
(about 240 of them, some far more common than others, as in a real shop:
Zipf-like), made by one of 60 invented brands, in one of 36 colours and
often of one of 26 materials ("stainless steel", "solid oak"), with a
variant ("1.7 L", "set of 4"). Its description is two or three sentences
built from phrases about the kind, its material and care, 15 to 40 words.
Prices are log-normal around 35.00 (0.99 to 4,999.99); one product in six is
out of stock.

    rows = products(1_000_000, seed=0)  # an iterator of COPY text lines
"""

from __future__ import annotations

import random
from collections.abc import Iterator

KINDS = (
    "kettle", "toaster", "blender", "mixer", "juicer", "grinder", "scale", "mug", "cup",
    "teapot", "bowl", "plate", "platter", "tray", "jug", "carafe", "tumbler", "glass",
    "flask", "bottle", "lunchbox", "saucepan", "frying pan", "wok", "skillet", "casserole",
    "stockpot", "roasting tin", "baking sheet", "colander", "sieve", "whisk", "spatula",
    "ladle", "knife", "knife block", "cutting board", "peeler", "grater", "corkscrew",
    "chopping board", "apron", "oven glove", "tea towel", "tablecloth", "napkin", "placemat",
    "coaster", "candle", "lantern", "lamp", "floor lamp", "desk lamp", "pendant light",
    "mirror", "clock", "wall clock", "alarm clock", "vase", "planter", "plant pot",
    "picture frame", "cushion", "pillow", "throw", "blanket", "duvet", "quilt", "sheet",
    "pillowcase", "mattress", "mattress topper", "towel", "bath mat", "bathrobe",
    "shower curtain", "soap dish", "toothbrush holder", "laundry basket", "basket",
    "storage box", "shelf", "bookcase", "sideboard", "wardrobe", "dresser", "nightstand",
    "bedside table", "coffee table", "dining table", "desk", "chair", "office chair",
    "armchair", "stool", "bench", "sofa", "footstool", "rug", "doormat", "curtain",
    "blind", "coat hook", "coat stand", "umbrella stand", "umbrella", "backpack", "rucksack",
    "suitcase", "holdall", "tote bag", "handbag", "wallet", "purse", "belt", "scarf",
    "hat", "beanie", "gloves", "socks", "jumper", "cardigan", "hoodie", "t-shirt", "shirt",
    "blouse", "dress", "skirt", "jeans", "trousers", "shorts", "jacket", "coat", "raincoat",
    "boots", "trainers", "sandals", "slippers", "watch", "bracelet", "necklace", "earrings",
    "ring", "sunglasses", "headphones", "earbuds", "speaker", "radio", "charger", "cable",
    "power bank", "phone case", "tablet stand", "keyboard", "mouse", "mouse mat", "monitor",
    "webcam", "microphone", "router", "smart plug", "light bulb", "extension lead", "torch",
    "notebook", "journal", "diary", "planner", "pen", "pencil", "marker", "highlighter",
    "stapler", "scissors", "ruler", "calculator", "file", "binder", "envelope", "sticker",
    "puzzle", "board game", "jigsaw", "teddy bear", "doll", "building blocks", "kite",
    "ball", "football", "tennis racket", "yoga mat", "dumbbell", "kettlebell", "skipping rope",
    "water bottle", "bike light", "bike lock", "helmet", "tent", "sleeping bag", "camping stove",
    "cool box", "hammock", "picnic blanket", "deckchair", "parasol", "barbecue", "watering can",
    "hose", "trowel", "spade", "rake", "secateurs", "bird feeder", "plant stand",
    "shampoo", "conditioner", "soap", "hand cream", "lip balm", "candle holder", "diffuser",
    "hair dryer", "straightener", "razor", "toothbrush", "comb", "hairbrush", "sponge",
    "dish rack", "bin", "recycling bin", "ironing board", "iron", "vacuum cleaner", "mop",
    "broom", "dustpan", "fan", "heater", "humidifier", "dehumidifier", "air purifier",
)  # fmt: skip
_PREFIXES = (
    "Nord", "Alto", "Bright", "Cedar", "Dune", "Ember", "Fjord", "Grove", "Harbour", "Iris",
    "Juniper", "Kestrel", "Linden", "Maple", "Nimbus", "Oak", "Pebble", "Quill", "Raven",
    "Sable", "Thistle", "Umber", "Vale", "Willow", "Yarrow", "Zephyr", "Arbor", "Birch",
    "Copper", "Drift",
)  # fmt: skip
_SUFFIXES = ("haven", "wood", "line", "stone", "field", "works", "craft", "home", "lab", "form")
#: 60 invented brands: every fifth prefix+suffix pair.
BRANDS = tuple(f"{a}{b}" for a in _PREFIXES for b in _SUFFIXES)[::5]
COLOURS = (
    "black", "white", "grey", "charcoal", "navy", "blue", "sky blue", "teal", "green",
    "olive", "sage", "mint", "yellow", "mustard", "orange", "coral", "red", "burgundy",
    "pink", "blush", "purple", "lilac", "brown", "tan", "beige", "cream", "ivory", "gold",
    "silver", "copper", "bronze", "natural", "walnut", "oak", "terracotta", "rainbow",
)  # fmt: skip
MATERIALS = (
    "stainless steel", "cast iron", "aluminium", "copper", "ceramic", "porcelain",
    "stoneware", "glass", "bamboo", "solid oak", "walnut", "pine", "rattan", "wicker",
    "organic cotton", "cotton", "linen", "wool", "merino wool", "cashmere", "leather",
    "recycled plastic", "silicone", "marble", "concrete", "velvet",
)  # fmt: skip
ADJECTIVES = (
    "classic", "modern", "vintage", "compact", "large", "small", "mini", "extra large",
    "lightweight", "heavy duty", "premium", "essential", "deluxe", "slim", "foldable",
    "portable", "wireless", "rechargeable", "cordless", "smart", "quiet", "fast", "eco",
    "handmade", "hand painted", "minimalist", "rustic", "nordic", "industrial", "retro",
    "soft", "warm", "cosy", "waterproof", "insulated", "non-stick", "adjustable", "stackable",
)  # fmt: skip
VARIANTS = (
    "set of 2", "set of 4", "set of 6", "pack of 3", "1 L", "1.7 L", "500 ml", "350 ml",
    "30 cm", "45 cm", "60 cm", "small", "medium", "large", "XL", "double", "king size",
    "single", "2 pack", "twin pack", "gift set", "refill", "travel size", "family size",
)  # fmt: skip
OPENINGS = (
    "A {adjective} {kind} in {colour} {material}.",
    "Our {adjective} {kind}, made from {material}.",
    "This {kind} is {adjective} and built from {material}.",
    "The {kind} you reach for every day, in {colour}.",
    "A {colour} {kind} with a {adjective} look.",
    "Meet the {adjective} {kind} from {brand}.",
)
FEATURES = (
    "Designed in {city} and made to last for years.",
    "Easy to clean and dishwasher safe.",
    "Wipe clean with a damp cloth.",
    "Machine washable at 40 degrees.",
    "Comes flat packed with everything you need to assemble it.",
    "Fits neatly into small spaces and stores away in seconds.",
    "Backed by a two year guarantee.",
    "Sustainably sourced and fully recyclable packaging.",
    "A customer favourite with thousands of five star reviews.",
    "Hand finished so no two are exactly alike.",
    "Keeps drinks hot for twelve hours and cold for twenty four.",
    "Charges over USB-C in under two hours.",
    "Gentle on skin and free from harsh chemicals.",
    "Perfect as a gift for birthdays, weddings and housewarmings.",
    "Pairs well with the rest of the {brand} range.",
    "Ships in two days in plastic free packaging.",
    "Tested by our team in real homes for six months.",
    "Suitable for indoor and outdoor use.",
    "Lightweight enough to take on holiday.",
    "Works with gas, electric and induction hobs.",
    "Includes a soft carry pouch.",
    "Now with a longer cable and a brighter light.",
    "Limited edition colour while stocks last.",
    "Made in small batches by independent makers.",
)  # fmt: skip
CITIES = ("Copenhagen", "Leeds", "Lisbon", "Kyoto", "Oslo", "Portland", "Bristol", "Milan")


def _zipf_weights(count: int, exponent: float = 0.8) -> list[float]:
    return [1 / (rank**exponent) for rank in range(1, count + 1)]


def products(count: int, seed: int = 0) -> Iterator[str]:
    """COPY text lines (name, description, price, inventory_count) for ``count`` products."""
    rng = random.Random(seed)
    kinds = list(KINDS)
    rng.shuffle(kinds)  # which kinds are common is part of the seed
    kind_weights = _zipf_weights(len(kinds))
    colour_weights = _zipf_weights(len(COLOURS), 0.6)
    batch = 10_000
    made = 0
    while made < count:
        n = min(batch, count - made)
        chosen = rng.choices(kinds, kind_weights, k=n)
        colours = rng.choices(COLOURS, colour_weights, k=n)
        for kind, colour in zip(chosen, colours, strict=True):
            brand = rng.choice(BRANDS)
            material = rng.choice(MATERIALS)
            adjective = rng.choice(ADJECTIVES)
            parts = [brand]
            if rng.random() < 0.5:
                parts.append(adjective)
            if rng.random() < 0.4:
                parts.append(material)
            if rng.random() < 0.6:
                parts.append(colour)
            parts.append(kind)
            if rng.random() < 0.5:
                parts.append(rng.choice(VARIANTS))
            name = " ".join(parts)
            name = name[0].upper() + name[1:]
            values = {
                "adjective": adjective,
                "kind": kind,
                "colour": colour,
                "material": material,
                "brand": brand,
                "city": rng.choice(CITIES),
            }
            sentences = [rng.choice(OPENINGS).format(**values)]
            sentences += [f.format(**values) for f in rng.sample(FEATURES, rng.randint(1, 3))]
            description = " ".join(sentences) if rng.random() > 0.05 else "\\N"
            price = min(max(rng.lognormvariate(3.55, 1.1), 0.99), 4999.99)
            stock = 0 if rng.random() < 1 / 6 else rng.randint(1, 500)
            yield f"{name}\t{description}\t{price:.2f}\t{stock}\n"
        made += n
