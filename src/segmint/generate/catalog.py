"""The generated shop's product catalog: 200 products in 8 categories, priced per currency.

The catalog is the same for every seed (built from a fixed seed), so product ids, names and
prices are stable across generated data sets and can be used in demo audiences.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

PRODUCTS_PER_CATEGORY = 25

# category -> (brands, product nouns, (low, high) USD price range)
_CATEGORIES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[float, float]]] = {
    "electronics": (
        ("Sonora", "Voltix", "Nimbus", "Auralink"),
        (
            "Wireless Earbuds",
            "Noise-Cancelling Headphones",
            "Smartwatch",
            "Bluetooth Speaker",
            "4K Action Camera",
            'Laptop 14"',
            'Tablet 11"',
            "Mechanical Keyboard",
            "Gaming Mouse",
            "USB-C Hub",
            "Portable Charger",
            "E-Reader",
            "Mirrorless Camera",
        ),
        (19.0, 1499.0),
    ),
    "apparel": (
        ("Northwind", "Fjordline", "Urban Thread", "Kestrel"),
        (
            "Merino Sweater",
            "Rain Jacket",
            "Slim Jeans",
            "Linen Shirt",
            "Hoodie",
            "T-Shirt",
            "Down Parka",
            "Chino Pants",
            "Summer Dress",
            "Wool Coat",
        ),
        (15.0, 349.0),
    ),
    "shoes": (
        ("Stride", "Pacelab", "Cobbler & Co"),
        (
            "Running Shoes",
            "Trail Runners",
            "Leather Boots",
            "Sneakers",
            "Sandals",
            "Loafers",
            "Hiking Boots",
            "Slip-Ons",
        ),
        (35.0, 260.0),
    ),
    "home": (
        ("Hearth", "Lumen", "Casa Verde"),
        (
            "Ceramic Mug Set",
            "Linen Duvet Cover",
            "Table Lamp",
            "Cast Iron Skillet",
            "Espresso Machine",
            "Throw Blanket",
            "Chef's Knife",
            "Air Purifier",
            "Robot Vacuum",
        ),
        (12.0, 899.0),
    ),
    "beauty": (
        ("Glow Lab", "Petal & Pine", "Dermique"),
        (
            "Vitamin C Serum",
            "Daily Moisturizer",
            "Repair Shampoo",
            "Eau de Parfum",
            "Lip Balm Trio",
            "Sunscreen SPF 50",
            "Ionic Hair Dryer",
        ),
        (8.0, 180.0),
    ),
    "sports": (
        ("Summit", "Aquaflex", "Ironpeak"),
        (
            "Yoga Mat",
            "Adjustable Dumbbells",
            "Road Bike Helmet",
            "2-Person Tent",
            "Insulated Bottle",
            "Fitness Tracker",
            "Climbing Harness",
            "Foam Roller",
        ),
        (12.0, 699.0),
    ),
    "books": (
        ("Penrose Press", "Blue Owl Books"),
        (
            "The Quiet Algorithm",
            "Salt and Stone",
            "A Field Guide to Clouds",
            "Midnight Kitchen",
            "The Last Lighthouse",
            "Café Stories",
            "Learning SQL the Hard Way",
            "Northern Lights",
            "The Garden Year",
            "Small Habits, Big Days",
        ),
        (9.0, 45.0),
    ),
    "toys": (
        ("Brickworks", "Tiny Tinker"),
        (
            "Building Set",
            "1000-Piece Puzzle",
            "Plush Bear",
            "RC Car",
            "Board Game",
            "Wooden Train Set",
            "Science Kit",
        ),
        (9.0, 149.0),
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
    for category, (brands, nouns, (low, high)) in _CATEGORIES.items():
        for i in range(PRODUCTS_PER_CATEGORY):
            noun = nouns[i % len(nouns)]
            brand = brands[rng.randrange(len(brands))]
            variant = _VARIANTS[rng.randrange(len(_VARIANTS))]
            name = noun if category == "books" else f"{brand} {noun}"
            if category in ("apparel", "shoes", "electronics") and i >= len(nouns):
                name = f"{name} - {variant}"
            # Log-uniform prices: many cheap items, a few expensive ones.
            usd = low * (high / low) ** (rng.random() ** 1.6)
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
