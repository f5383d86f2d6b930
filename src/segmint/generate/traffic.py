"""How visitors reach the generated shop: browsers, traffic sources with UTM campaigns and
click ids, and what they search for."""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass

SHOP_URL = "https://shop.example.com"
SHOP_TITLE = "Example Shop"

# (user agent, device class). Real strings of current browsers.
USER_AGENTS: dict[str, tuple[str, ...]] = {
    "desktop": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/125.0.0.0 Safari/537.36",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:126.0) Gecko/20100101 Firefox/126.0",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:125.0) Gecko/20100101 Firefox/125.0",
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:124.0) Gecko/20100101 Firefox/124.0",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.4.1 Safari/605.1.15",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/125.0.0.0 Safari/537.36 Edg/125.0.0.0",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
    ),
    "mobile": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) CriOS/125.0.6422.80 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/125.0.6422.113 Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 "
        "(KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
        "Mozilla/5.0 (Android 14; Mobile; rv:126.0) Gecko/126.0 Firefox/126.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Mobile/15E148 Instagram 329.0.0.41.93 (iPhone14,5; iOS 17_4; "
        "en_US; en; scale=3.00; 1170x2532; 602436402)",
    ),
    "tablet": (
        "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.4 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
    ),
}

# analytics.js (analytics-next) versions as they appear in context.library.version.
LIBRARY_VERSIONS = ("next-1.72.0", "next-1.70.0", "npm:next-1.66.0")


@dataclass(frozen=True, slots=True)
class Source:
    """A traffic source: its UTM source/medium (None for none), the click id parameter its
    ads append, the referrer the browser reports, and the campaigns it runs."""

    key: str
    utm_source: str | None
    utm_medium: str | None
    click_id: str | None
    referrers: tuple[str, ...]
    campaigns: tuple[str, ...] = ()
    contents: tuple[str, ...] = ()
    has_term: bool = False


SOURCES: dict[str, Source] = {
    s.key: s
    for s in (
        Source(
            "google_cpc",
            "google",
            "cpc",
            "gclid",
            ("https://www.google.com/",),
            (
                "brand_search",
                "black_friday_2025",
                "spring_sale",
                "shopping_pmax",
                "generic_running_shoes",
                "summer_clearance",
            ),
            (),
            True,
        ),
        Source(
            "bing_cpc",
            "bing",
            "cpc",
            "msclkid",
            ("https://www.bing.com/",),
            ("brand_search", "spring_sale", "black_friday_2025"),
            (),
            True,
        ),
        Source(
            "facebook",
            "facebook",
            "paid_social",
            "fbclid",
            ("https://l.facebook.com/", "http://m.facebook.com/"),
            ("spring_sale", "retargeting_q3", "lookalike_buyers", "black_friday_2025"),
            ("carousel_a", "video_15s", "static_b"),
        ),
        Source(
            "instagram",
            "instagram",
            "paid_social",
            "fbclid",
            ("https://l.instagram.com/",),
            ("spring_sale", "retargeting_q3", "creator_collab"),
            ("reel_30s", "story_a"),
        ),
        Source(
            "tiktok",
            "tiktok",
            "paid_social",
            "ttclid",
            ("https://www.tiktok.com/",),
            ("spring_sale", "creator_collab", "black_friday_2025"),
            ("spark_ad", "topview"),
        ),
        Source(
            "linkedin",
            "linkedin",
            "paid_social",
            "li_fat_id",
            ("https://www.linkedin.com/",),
            ("b2b_gifting_q4", "retargeting_q3"),
            ("sponsored_post",),
        ),
        Source(
            "newsletter",
            "newsletter",
            "email",
            None,
            ("",),
            (
                "weekly_digest",
                "black_friday_2025",
                "spring_sale",
                "abandoned_cart",
                "welcome_series",
            ),
            ("hero_button", "product_grid"),
        ),
        Source(
            "affiliate",
            "partner_blog",
            "referral",
            None,
            ("https://www.wirecutter-example.com/", "https://www.reddit.com/"),
            ("gift_guide_2025",),
        ),
        Source(
            "organic",
            None,
            None,
            None,
            (
                "https://www.google.com/",
                "https://www.google.com/",
                "https://www.bing.com/",
                "https://duckduckgo.com/",
                "https://www.ecosia.org/",
            ),
        ),
        Source(
            "referral",
            None,
            None,
            None,
            (
                "https://www.reddit.com/r/BuyItForLife/",
                "https://news.ycombinator.com/",
                "https://www.pinterest.com/",
                "https://t.co/",
            ),
        ),
        Source("direct", None, None, None, ("",)),
    )
}

# Source mix of a visitor's first session, and of later (returning) sessions.
FIRST_VISIT_MIX: dict[str, float] = {
    "google_cpc": 22,
    "bing_cpc": 3,
    "facebook": 14,
    "instagram": 7,
    "tiktok": 6,
    "linkedin": 1,
    "affiliate": 3,
    "organic": 22,
    "referral": 7,
    "direct": 15,
}
RETURN_VISIT_MIX: dict[str, float] = {
    "google_cpc": 8,
    "facebook": 6,
    "instagram": 3,
    "tiktok": 2,
    "newsletter": 16,
    "organic": 20,
    "referral": 5,
    "direct": 40,
}

SEARCH_QUERIES: dict[str, tuple[str, ...]] = {
    "electronics": (
        "wireless earbuds",
        "headphones",
        "smartwatch",
        "usb c hub",
        "laptop",
        "bluetooth speaker",
        "kamera",
        "écouteurs",
    ),
    "apparel": ("rain jacket", "merino sweater", "black dress", "jeans", "hoodie", "chaqueta"),
    "shoes": ("running shoes", "sneekers", "boots", "trail runners", "zapatillas", "sandals"),
    "home": ("espresso machine", "lamp", "knife", "duvet", "air purifier", "café"),
    "beauty": ("serum", "sunscreen", "perfume", "hair dryer", "moisturizer"),
    "sports": ("yoga mat", "dumbbells", "tent", "bike helmet", "water bottle"),
    "books": ("cookbook", "sql", "gift book", "novel"),
    "toys": ("lego", "puzzle", "board game", "gift for kids", "rc car"),
}

CONTENT_PAGES: tuple[tuple[str, str], ...] = (
    ("/about", "About Us"),
    ("/help/shipping", "Shipping & Returns"),
    ("/help/faq", "FAQ"),
    ("/blog/gift-guide-2025", "The 2025 Gift Guide"),
    ("/blog/how-to-choose-running-shoes", "How to Choose Running Shoes"),
    ("/stores", "Find a Store"),
)

COUPONS: tuple[str, ...] = ("WELCOME10", "SPRING15", "BF2025", "FREESHIP", "VIP20")
SIGNUP_METHODS: tuple[str, ...] = ("email",) * 6 + ("google",) * 3 + ("apple", "facebook")


def click_id(rng: random.Random, parameter: str) -> str:
    """A click id shaped like the ones each ad platform appends to landing URLs."""
    if parameter == "msclkid":
        return f"{rng.getrandbits(128):032x}"
    if parameter == "li_fat_id":
        bits = f"{rng.getrandbits(128):032x}"
        return f"{bits[:8]}-{bits[8:12]}-{bits[12:16]}-{bits[16:20]}-{bits[20:]}"
    size = {"gclid": 66, "gbraid": 36, "wbraid": 36, "fbclid": 45, "ttclid": 42}[parameter]
    raw = base64.urlsafe_b64encode(rng.getrandbits(size * 8).to_bytes(size, "big"))
    text = raw.decode().rstrip("=")
    prefix = {"gclid": "Cj0KCQjw", "fbclid": "IwAR", "ttclid": "E.C.P."}.get(parameter, "0A")
    return prefix + text


def weighted_table(weights: dict[str, float], size: int = 1000) -> list[str]:
    """Keys repeated in proportion to their weight, for uniform O(1) weighted picks."""
    total = sum(weights.values())
    table: list[str] = []
    for key, weight in weights.items():
        table.extend([key] * max(1, round(weight / total * size)))
    return table
