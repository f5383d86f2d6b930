"""The generated shop's product catalog: 200 products in 8 categories, priced per currency.

The catalog is the same for every seed (built from a fixed seed), so product ids, names and
prices are stable across generated data sets and can be used in demo audiences.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

PRODUCTS_PER_CATEGORY = 25

# category -> (brands, (product noun, typical USD price) pairs)
_CATEGORIES: dict[str, tuple[tuple[str, ...], tuple[tuple[str, float], ...]]] = {
    "electronics": (
        ("Sonora", "Voltix", "Nimbus", "Auralink"),
        (
            ("Wireless Earbuds", 129),
            ("Noise-Cancelling Headphones", 299),
            ("Smartwatch", 349),
            ("Bluetooth Speaker", 89),
            ("4K Action Camera", 399),
            ('Laptop 14"', 1199),
            ('Tablet 11"', 599),
            ("Mechanical Keyboard", 139),
            ("Gaming Mouse", 69),
            ("USB-C Hub", 45),
            ("Portable Charger", 39),
            ("E-Reader", 149),
            ("Mirrorless Camera", 899),
        ),
    ),
    "apparel": (
        ("Northwind", "Fjordline", "Urban Thread", "Kestrel"),
        (
            ("Merino Sweater", 119),
            ("Rain Jacket", 179),
            ("Slim Jeans", 79),
            ("Linen Shirt", 59),
            ("Hoodie", 65),
            ("T-Shirt", 25),
            ("Down Parka", 329),
            ("Chino Pants", 69),
            ("Summer Dress", 89),
            ("Wool Coat", 279),
        ),
    ),
    "shoes": (
        ("Stride", "Pacelab", "Cobbler & Co"),
        (
            ("Running Shoes", 139),
            ("Trail Runners", 149),
            ("Leather Boots", 219),
            ("Sneakers", 95),
            ("Sandals", 49),
            ("Loafers", 129),
            ("Hiking Boots", 189),
            ("Slip-Ons", 59),
        ),
    ),
    "home": (
        ("Hearth", "Lumen", "Casa Verde"),
        (
            ("Ceramic Mug Set", 34),
            ("Linen Duvet Cover", 149),
            ("Table Lamp", 89),
            ("Cast Iron Skillet", 45),
            ("Espresso Machine", 649),
            ("Throw Blanket", 59),
            ("Chef's Knife", 119),
            ("Air Purifier", 249),
            ("Robot Vacuum", 499),
        ),
    ),
    "beauty": (
        ("Glow Lab", "Petal & Pine", "Dermique"),
        (
            ("Vitamin C Serum", 38),
            ("Daily Moisturizer", 29),
            ("Repair Shampoo", 19),
            ("Eau de Parfum", 95),
            ("Lip Balm Trio", 12),
            ("Sunscreen SPF 50", 22),
            ("Ionic Hair Dryer", 179),
        ),
    ),
    "sports": (
        ("Summit", "Aquaflex", "Ironpeak"),
        (
            ("Yoga Mat", 49),
            ("Adjustable Dumbbells", 349),
            ("Road Bike Helmet", 129),
            ("2-Person Tent", 279),
            ("Insulated Bottle", 29),
            ("Fitness Tracker", 99),
            ("Climbing Harness", 69),
            ("Foam Roller", 25),
        ),
    ),
    "books": (
        ("Penrose Press", "Blue Owl Books"),
        (
            ("The Quiet Algorithm", 18),
            ("Salt and Stone", 16),
            ("A Field Guide to Clouds", 24),
            ("Midnight Kitchen", 32),
            ("The Last Lighthouse", 15),
            ("Café Stories", 14),
            ("Learning SQL the Hard Way", 39),
            ("Northern Lights", 17),
            ("The Garden Year", 28),
            ("Small Habits, Big Days", 19),
        ),
    ),
    "toys": (
        ("Brickworks", "Tiny Tinker"),
        (
            ("Building Set", 79),
            ("1000-Piece Puzzle", 24),
            ("Plush Bear", 19),
            ("RC Car", 69),
            ("Board Game", 39),
            ("Wooden Train Set", 99),
            ("Science Kit", 34),
        ),
    ),
}

_VARIANTS = ("Black", "White", "Navy", "Grey", "Olive", "Sand", "Red", "Blue")

# USD -> currency, and how prices are rounded there (charm prices, whole yen/rupees).
CURRENCY_RATES: dict[str, float] = {
    "USD": 1.0,
    "CAD": 1.36,
    "GBP": 0.79,
    "EUR": 0.92,
    "BRL": 5.0,
    "INR": 83.0,
    "AUD": 1.52,
    "JPY": 150.0,
}


@dataclass(frozen=True, slots=True)
class Product:
    """One catalog product; ``prices`` holds the shelf price per currency code."""

    product_id: str
    sku: str
    name: str
    category: str
    brand: str
    slug: str
    prices: dict[str, float]


def _charm_price(usd: float, currency: str) -> float:
    value = usd * CURRENCY_RATES[currency]
    if currency == "JPY":
        return float(max(100, round(value, -2) - 20))
    if currency == "INR":
        return float(max(99, round(value, -2) - 1))
    return round(max(1.0, round(value)) - 0.01, 2)


def _slug(text: str) -> str:
    out = "".join(ch.lower() if ch.isalnum() else "-" for ch in text)
    return "-".join(part for part in out.split("-") if part)


def _build_catalog() -> tuple[Product, ...]:
    rng = random.Random(20250101)
    products: list[Product] = []
    names: set[str] = set()
    for category, (brands, nouns) in _CATEGORIES.items():
        for i in range(PRODUCTS_PER_CATEGORY):
            noun, typical = nouns[i % len(nouns)]
            brand = brands[rng.randrange(len(brands))]
            variant = _VARIANTS[rng.randrange(len(_VARIANTS))]
            if category == "books":
                name = noun + ("", " (Hardcover)", " (Illustrated Edition)")[i // len(nouns)]
            else:
                name = f"{brand} {noun}"
                while name in names:  # a second model of the same thing: name its colour
                    variant = _VARIANTS[rng.randrange(len(_VARIANTS))]
                    name = f"{brand} {noun} - {variant}"
            names.add(name)
            usd = typical * rng.lognormvariate(0.0, 0.25)  # brands and models differ
            number = len(products) + 1
            products.append(
                Product(
                    product_id=f"prod_{1000 + number}",
                    sku=f"{category[:3].upper()}-{number:04d}-{variant[:3].upper()}",
                    name=name,
                    category=category,
                    brand=brand,
                    slug=f"{_slug(name)}-{number}",
                    prices={c: _charm_price(usd, c) for c in CURRENCY_RATES},
                )
            )
    return tuple(products)


PRODUCTS: tuple[Product, ...] = _build_catalog()
CATEGORIES: tuple[str, ...] = tuple(_CATEGORIES)


def popularity_table(size: int = 4096) -> list[int]:
    """Product indices repeated in proportion to a Zipf-like popularity (a few best sellers,
    a long tail); picking a uniform slot of the table picks a product by popularity."""
    rng = random.Random(7)
    order = list(range(len(PRODUCTS)))
    rng.shuffle(order)
    weights = [1.0 / (rank + 1) ** 0.8 for rank in range(len(order))]
    total = sum(weights)
    table: list[int] = []
    for index, weight in zip(order, weights, strict=True):
        table.extend([index] * max(1, round(weight / total * size)))
    return table
