"""Where the generated shop's customers live: locale, time zone, currency, IP blocks, phones.

The IP blocks are real /16 networks that geoip2fast maps to the country in full, and the
phone prefixes are ones `phonenumbers` reports valid for any subscriber digits (tests check
both), so enrichment and identifier validation see believable input.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PhonePlan:
    """How mobile numbers of a country look.

    ``prefixes`` start the national significant number and are followed by ``digits`` random
    digits; ``groups`` split the national number for display; ``trunk`` is the national
    dialling prefix (``0`` in most of Europe, empty where there is none).
    """

    calling_code: str
    prefixes: tuple[str, ...]
    digits: int
    groups: tuple[int, ...]
    trunk: str = ""
    first_digit_2_to_9: bool = False


@dataclass(frozen=True, slots=True)
class Country:
    """One country of the customer base."""

    code: str
    weight: float
    locales: tuple[tuple[str, float, str], ...]  # (locale, weight, name pool)
    timezones: tuple[tuple[str, int], ...]  # (tz database name, UTC offset in hours)
    currency: str
    networks: tuple[str, ...]  # /16 prefixes "a.b"
    phone: PhonePlan
    cities: tuple[str, ...]
    mobile_share: float


COUNTRIES: tuple[Country, ...] = (
    Country(
        "US",
        34,
        (("en-US", 0.93, "en"), ("es-US", 0.07, "es")),
        (
            ("America/New_York", -5),
            ("America/Chicago", -6),
            ("America/Denver", -7),
            ("America/Los_Angeles", -8),
        ),
        "USD",
        (
            "73.22",
            "73.170",
            "24.4",
            "67.160",
            "71.200",
            "108.20",
            "174.52",
            "68.40",
            "76.100",
            "50.200",
            "99.100",
        ),
        PhonePlan(
            "1",
            (
                "212",
                "415",
                "312",
                "617",
                "206",
                "303",
                "512",
                "646",
                "718",
                "310",
                "404",
                "305",
                "702",
                "214",
            ),
            7,
            (3, 3, 4),
            first_digit_2_to_9=True,
        ),
        (
            "New York",
            "Los Angeles",
            "Chicago",
            "Houston",
            "Seattle",
            "Austin",
            "Boston",
            "Denver",
            "Miami",
            "San Francisco",
        ),
        0.55,
    ),
    Country(
        "CA",
        6,
        (("en-CA", 0.75, "en"), ("fr-CA", 0.25, "fr")),
        (("America/Toronto", -5), ("America/Vancouver", -8), ("America/Edmonton", -7)),
        "CAD",
        ("24.114", "99.230", "70.26", "174.112", "184.144", "142.112", "69.156"),
        PhonePlan(
            "1",
            ("416", "604", "514", "403", "613", "647", "778", "905"),
            7,
            (3, 3, 4),
            first_digit_2_to_9=True,
        ),
        ("Toronto", "Montréal", "Vancouver", "Calgary", "Ottawa"),
        0.5,
    ),
    Country(
        "GB",
        10,
        (("en-GB", 1.0, "en"),),
        (("Europe/London", 0),),
        "GBP",
        ("86.1", "86.150", "2.24", "31.48", "92.40", "109.150"),
        PhonePlan(
            "44",
            ("771", "772", "773", "774", "775", "777", "790", "792", "795", "797"),
            7,
            (4, 6),
            trunk="0",
        ),
        ("London", "Manchester", "Birmingham", "Leeds", "Glasgow", "Bristol"),
        0.55,
    ),
    Country(
        "DE",
        8,
        (("de-DE", 1.0, "de"),),
        (("Europe/Berlin", 1),),
        "EUR",
        ("87.130", "84.130", "91.40", "93.200", "79.200", "217.80", "88.64"),
        PhonePlan("49", ("151", "160", "170", "171", "152", "176", "157"), 8, (3, 8), trunk="0"),
        ("Berlin", "Hamburg", "München", "Köln", "Frankfurt am Main", "Stuttgart"),
        0.5,
    ),
    Country(
        "FR",
        7,
        (("fr-FR", 1.0, "fr"),),
        (("Europe/Paris", 1),),
        "EUR",
        ("82.65", "86.200", "92.150", "78.120", "88.160", "109.10"),
        PhonePlan(
            "33",
            ("60", "61", "62", "64", "65", "66", "67", "68", "75", "77"),
            7,
            (1, 2, 2, 2, 2),
            trunk="0",
        ),
        ("Paris", "Lyon", "Marseille", "Toulouse", "Nantes", "Lille"),
        0.55,
    ),
    Country(
        "NL",
        4,
        (("nl-NL", 1.0, "nl"),),
        (("Europe/Amsterdam", 1),),
        "EUR",
        ("77.165", "84.25", "83.80", "62.45", "94.208"),
        PhonePlan("31", ("61", "62", "63", "64", "65", "66", "68"), 7, (1, 8), trunk="0"),
        ("Amsterdam", "Rotterdam", "Utrecht", "Den Haag", "Eindhoven"),
        0.5,
    ),
    Country(
        "ES",
        5,
        (("es-ES", 1.0, "es"),),
        (("Europe/Madrid", 1),),
        "EUR",
        ("88.10", "83.40", "80.30", "79.150", "95.120", "81.40"),
        PhonePlan("34", ("6",), 8, (3, 2, 2, 2)),
        ("Madrid", "Barcelona", "Valencia", "Sevilla", "Bilbao", "Málaga"),
        0.6,
    ),
    Country(
        "IT",
        5,
        (("it-IT", 1.0, "it"),),
        (("Europe/Rome", 1),),
        "EUR",
        ("79.10", "87.10", "93.40", "151.40", "2.40", "82.50"),
        PhonePlan("39", ("320", "333", "347", "349", "380", "393", "366"), 7, (3, 3, 4)),
        ("Roma", "Milano", "Napoli", "Torino", "Bologna", "Firenze"),
        0.6,
    ),
    Country(
        "BR",
        6,
        (("pt-BR", 1.0, "pt"),),
        (("America/Sao_Paulo", -3),),
        "BRL",
        ("189.10", "179.100", "187.50", "191.200"),
        PhonePlan(
            "55", ("119", "219", "319", "419", "519", "619", "719", "819", "479"), 8, (2, 5, 4)
        ),
        ("São Paulo", "Rio de Janeiro", "Belo Horizonte", "Curitiba", "Porto Alegre"),
        0.7,
    ),
    Country(
        "IN",
        7,
        (("en-IN", 0.85, "in"), ("hi-IN", 0.15, "in")),
        (("Asia/Kolkata", 5),),
        "INR",
        ("49.36", "117.200", "106.200", "223.180", "157.40", "182.70"),
        PhonePlan(
            "91", ("98", "99", "97", "96", "70", "80", "90", "81", "88"), 8, (5, 5), trunk="0"
        ),
        ("Mumbai", "Bengaluru", "Delhi", "Hyderabad", "Chennai", "Pune"),
        0.8,
    ),
    Country(
        "AU",
        4,
        (("en-AU", 1.0, "en"),),
        (("Australia/Sydney", 10), ("Australia/Melbourne", 10), ("Australia/Perth", 8)),
        "AUD",
        ("1.120", "101.170", "110.140", "58.160", "124.170"),
        PhonePlan("61", ("40", "41", "42", "43", "46"), 7, (3, 3, 3), trunk="0"),
        ("Sydney", "Melbourne", "Brisbane", "Perth", "Adelaide"),
        0.55,
    ),
    Country(
        "JP",
        4,
        (("ja-JP", 1.0, "ja"),),
        (("Asia/Tokyo", 9),),
        "JPY",
        ("126.10", "60.40", "118.0", "219.100", "114.150", "153.200"),
        PhonePlan(
            "81",
            ("901", "902", "903", "905", "906", "701", "702", "703", "801"),
            7,
            (2, 4, 4),
            trunk="0",
        ),
        ("東京", "大阪", "横浜", "名古屋", "札幌", "福岡"),
        0.7,
    ),
)


def random_ip(rng: random.Random, country: Country) -> str:
    """A public IPv4 address inside one of the country's networks (host part 1-254)."""
    rnd = rng.random
    network = country.networks[int(rnd() * len(country.networks))]
    return f"{network}.{int(rnd() * 256)}.{1 + int(rnd() * 254)}"


def random_phone(rng: random.Random, country: Country) -> str:
    """A valid mobile number of the country, written the way people type it: E.164, with
    the calling code and spaces or dashes, or in national form."""
    plan = country.phone
    digits = f"{rng.randrange(10**plan.digits):0{plan.digits}d}"
    if plan.first_digit_2_to_9:
        digits = str(2 + int(rng.random() * 8)) + digits[1:]
    national = plan.prefixes[int(rng.random() * len(plan.prefixes))] + digits
    parts = []
    start = 0
    for size in plan.groups:
        parts.append(national[start : start + size])
        start += size
    style = rng.random()
    if style < 0.4:
        return f"+{plan.calling_code}{national}"
    if plan.calling_code == "1":
        if style < 0.65:
            return f"+1 {parts[0]}-{parts[1]}-{parts[2]}"
        if style < 0.9:
            return f"({parts[0]}) {parts[1]}-{parts[2]}"
        return ".".join(parts)
    if plan.calling_code == "55" and style >= 0.7:
        return f"({parts[0]}) {parts[1]}-{parts[2]}"
    if style < 0.7:
        return f"+{plan.calling_code} {' '.join(parts)}"
    return plan.trunk + " ".join(parts)
