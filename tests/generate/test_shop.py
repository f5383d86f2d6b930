"""The shop generator: deterministic, Segment-spec messages, a believable shop."""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import phonenumbers
import pytest
from geoip2fast import GeoIP2Fast
from ua_parser import parse as parse_user_agent

from segmint.collect.enrich import Enricher
from segmint.collect.geo import GeoLocator
from segmint.collect.validate import validate_message
from segmint.errors import InvalidInput
from segmint.generate import GeneratorStats, estimate_events, generate_events
from segmint.generate.catalog import PRODUCTS
from segmint.generate.geography import COUNTRIES, Country, random_ip, random_phone
from segmint.generate.names import NAME_POOLS, local_part, pick_pair

END = datetime(2025, 11, 30, tzinfo=UTC)
USERS = 2000
DAYS = 30


@pytest.fixture(scope="module")
def run() -> tuple[list[dict[str, Any]], GeneratorStats]:
    stats = GeneratorStats()
    messages = list(generate_events(USERS, DAYS, seed=42, end=END, stats=stats))
    return messages, stats


@pytest.fixture(scope="module")
def messages(run: tuple[list[dict[str, Any]], GeneratorStats]) -> list[dict[str, Any]]:
    return run[0]


@pytest.fixture(scope="module")
def identifies(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m["type"] == "identify"]


def _parse(ts: str) -> datetime:
    assert ts.endswith("Z"), ts
    return datetime.fromisoformat(ts[:-1] + "+00:00")


def _person_of(messages: list[dict[str, Any]]) -> dict[str, str]:
    """anonymousId -> userId where known, else the anonymousId itself."""
    person = {m["anonymousId"]: m["anonymousId"] for m in messages}
    for m in messages:
        if "userId" in m:
            person[m["anonymousId"]] = m["userId"]
    return person


# ---- determinism and arguments ------------------------------------------------------------


def test_same_seed_gives_identical_messages() -> None:
    first = json.dumps(list(generate_events(200, 14, seed=7, end=END)))
    second = json.dumps(list(generate_events(200, 14, seed=7, end=END)))
    assert first == second


def test_different_seeds_give_different_messages() -> None:
    first = list(generate_events(200, 14, seed=7, end=END))
    second = list(generate_events(200, 14, seed=8, end=END))
    assert first != second
    assert {m["messageId"] for m in first}.isdisjoint(m["messageId"] for m in second)


def test_naive_end_is_utc_and_aware_end_is_converted() -> None:
    naive = list(generate_events(50, 7, seed=1, end=datetime(2025, 11, 30)))
    paris = timezone(timedelta(hours=1))
    aware = list(generate_events(50, 7, seed=1, end=datetime(2025, 11, 30, 1, tzinfo=paris)))
    assert naive == list(generate_events(50, 7, seed=1, end=END)) == aware


def test_default_end_is_start_of_today_utc() -> None:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    latest = max(_parse(m["timestamp"]) for m in generate_events(100, 2, seed=1))
    assert today - timedelta(days=2) < latest <= today


@pytest.mark.parametrize(
    ("users", "days", "field"), [(-1, 30, "users"), (10, 0, "days"), (10, -3, "days")]
)
def test_bad_arguments_raise_invalid_input(users: int, days: int, field: str) -> None:
    with pytest.raises(InvalidInput) as error:
        generate_events(users, days, end=END)
    assert error.value.path == field


def test_zero_users_give_no_messages() -> None:
    assert list(generate_events(0, 30, end=END)) == []


# ---- Segment spec -------------------------------------------------------------------------


def test_every_message_passes_basic_segment_checks(messages: list[dict[str, Any]]) -> None:
    start = END - timedelta(days=DAYS)
    for m in messages:
        assert m["type"] in {"track", "identify", "page"}
        assert m["anonymousId"]
        assert isinstance(m.get("userId", ""), str)
        assert start <= _parse(m["timestamp"]) <= END
        assert _parse(m["sentAt"]) >= _parse(m["timestamp"])
        assert len(m["messageId"]) == 36
        assert m["context"]["library"]["name"] == "analytics.js"
        if m["type"] == "track":
            assert isinstance(m["event"], str) and m["event"]
            assert isinstance(m["properties"], dict)
        elif m["type"] == "page":
            assert m["name"] and m["properties"]["url"].startswith("https://")
            assert m["context"]["page"]["url"] == m["properties"]["url"]
        else:
            assert isinstance(m["traits"], dict) and m["userId"]
    json.dumps(messages)


def test_message_ids_are_unique(messages: list[dict[str, Any]]) -> None:
    assert len({m["messageId"] for m in messages}) == len(messages)


def test_messages_of_a_browser_are_in_time_order(messages: list[dict[str, Any]]) -> None:
    last: dict[str, str] = {}
    for m in messages:
        previous = last.get(m["anonymousId"], "")
        assert m["timestamp"] >= previous, m
        last[m["anonymousId"]] = m["timestamp"]


def test_user_id_appears_on_a_browser_only_after_an_identify(
    messages: list[dict[str, Any]],
) -> None:
    identified: set[str] = set()
    for m in messages:
        if m["type"] == "identify":
            identified.add(m["anonymousId"])
        elif "userId" in m:
            assert m["anonymousId"] in identified


# ---- the shop -----------------------------------------------------------------------------


def test_funnel_narrows_from_views_to_orders(messages: list[dict[str, Any]]) -> None:
    events = Counter(m["event"] for m in messages if m["type"] == "track")
    assert events["order_completed"] > 0
    assert events["order_completed"] < events["checkout_started"]
    assert events["checkout_started"] < events["added_to_cart"]
    assert events["added_to_cart"] < events["product_viewed"] / 3
    for name in ("signed_up", "newsletter_subscribed", "search", "removed_from_cart"):
        assert events[name] > 0, name


def test_some_checkouts_are_abandoned(messages: list[dict[str, Any]]) -> None:
    person = _person_of(messages)
    ordered = {m["userId"] for m in messages if m.get("event") == "order_completed"}
    started = {person[m["anonymousId"]] for m in messages if m.get("event") == "checkout_started"}
    assert ordered and ordered <= started
    assert len(started - ordered) > len(started) / 4


def test_orders_carry_products_revenue_and_sometimes_a_coupon(
    messages: list[dict[str, Any]],
) -> None:
    orders = [m["properties"] for m in messages if m.get("event") == "order_completed"]
    assert len({o["order_id"] for o in orders}) == len(orders)
    for order in orders:
        assert isinstance(order["revenue"], float)
        assert order["products"] and all(p["quantity"] >= 1 for p in order["products"])
        assert order["total"] >= order["revenue"] - 0.01
    usd = [o for o in orders if o["currency"] == "USD"]
    assert any(o["revenue"] > 500 for o in usd)
    assert any("coupon" in o for o in orders)
    assert len({o["currency"] for o in orders}) >= 4


def test_product_views_describe_catalog_products(messages: list[dict[str, Any]]) -> None:
    catalog = {p.product_id: p for p in PRODUCTS}
    views = [m["properties"] for m in messages if m.get("event") == "product_viewed"]
    for view in views:
        product = catalog[view["product_id"]]
        assert view["name"] == product.name
        assert float(view["price"]) == product.prices[view["currency"]]
    assert any(isinstance(v["price"], str) for v in views)  # an oddity real data has
    assert any("brand" not in v for v in views)
    assert len({v["category"] for v in views}) == 8


def test_catalog_has_200_distinct_products() -> None:
    assert len(PRODUCTS) == 200
    assert len({p.name for p in PRODUCTS}) == len({p.slug for p in PRODUCTS}) == 200


def test_landing_pages_carry_utm_campaigns_and_click_ids(messages: list[dict[str, Any]]) -> None:
    searches = [m["context"]["page"]["search"] for m in messages if m["type"] == "page"]
    sources = Counter(
        part.split("=")[1] for s in searches for part in s[1:].split("&") if "utm_source=" in part
    )
    assert {"google", "facebook", "tiktok", "newsletter", "bing", "linkedin"} <= set(sources)
    for click_id in ("gclid=", "fbclid=", "ttclid=", "msclkid=", "li_fat_id="):
        assert any(click_id in s for s in searches), click_id
    campaigns = [m["context"]["campaign"] for m in messages if "campaign" in m["context"]]
    assert {"black_friday_2025", "spring_sale", "retargeting_q3"} <= {c["name"] for c in campaigns}
    referrers = {m["properties"].get("referrer") for m in messages if m["type"] == "page"}
    assert "https://www.google.com/" in referrers


def test_activity_is_skewed_towards_few_heavy_users(messages: list[dict[str, Any]]) -> None:
    person = _person_of(messages)
    counts = sorted(Counter(person[m["anonymousId"]] for m in messages).values(), reverse=True)
    top = counts[: len(counts) // 10]
    assert sum(top) > 0.4 * sum(counts)
    assert counts[len(counts) // 2] <= 12  # while most come once or twice


def test_sessions_follow_the_daily_rhythm(messages: list[dict[str, Any]]) -> None:
    us = [m for m in messages if m["context"]["timezone"] == "America/New_York"]
    local_hours = Counter((_parse(m["timestamp"]).hour - 5) % 24 for m in us)
    assert sum(local_hours[h] for h in (19, 20, 21)) > 3 * sum(local_hours[h] for h in (2, 3, 4))


# ---- identity -----------------------------------------------------------------------------


def test_about_sixty_percent_of_users_identify(
    run: tuple[list[dict[str, Any]], GeneratorStats], messages: list[dict[str, Any]]
) -> None:
    stats = run[1]
    assert stats.users == USERS and stats.messages == len(messages)
    assert 0.55 < stats.identified_users / USERS < 0.65
    assert len({m["userId"] for m in messages if "userId" in m}) == stats.identified_users
    person = _person_of(messages)
    never_identified = {a for a, p in person.items() if a == p}
    assert len(never_identified) > 0.3 * USERS


def test_identifies_come_before_and_after_browsing(messages: list[dict[str, Any]]) -> None:
    first_message: dict[str, dict[str, Any]] = {}
    for m in messages:
        first_message.setdefault(m["anonymousId"], m)
    starts_with_identify = sum(1 for m in first_message.values() if m["type"] == "identify")
    identified = {m["anonymousId"] for m in messages if m["type"] == "identify"}
    assert 0.1 * len(identified) < starts_with_identify < 0.5 * len(identified)


def test_some_users_identify_on_two_browsers(
    run: tuple[list[dict[str, Any]], GeneratorStats], identifies: list[dict[str, Any]]
) -> None:
    browsers = defaultdict(set)
    for m in identifies:
        browsers[m["userId"]].add(m["anonymousId"])
    two = sum(1 for ids in browsers.values() if len(ids) == 2)
    assert two == run[1].two_device_users > 0.03 * len(browsers)


def test_each_user_has_one_unique_email(identifies: list[dict[str, Any]]) -> None:
    emails = defaultdict(set)
    for m in identifies:
        if "email" in m["traits"]:
            emails[m["userId"]].add(m["traits"]["email"].lower())
    assert all(len(e) == 1 for e in emails.values())
    all_emails = [next(iter(e)) for e in emails.values()]
    assert len(set(all_emails)) == len(all_emails)
    assert all(e.count("@") == 1 and "." in e.split("@")[1] for e in all_emails)


@pytest.mark.parametrize("pool", sorted(NAME_POOLS))
def test_email_local_parts_stay_unique_past_the_name_pairs(pool: str) -> None:
    names = NAME_POOLS[pool]
    seen = set()
    for k in range(names.pairs * 2 + 50):
        first, last, round_ = pick_pair(names, k, offset=12345)
        seen.add(local_part(names.first[first][0], names.last[last], round_, "._"[k % 2]))
    assert len(seen) == names.pairs * 2 + 50


def test_first_names_do_not_repeat_across_pools() -> None:
    firsts = [n.ascii for pool in NAME_POOLS.values() for n, _ in pool.first]
    assert len(firsts) == len(set(firsts))
    assert all(n.isalpha() and n.isascii() for n in firsts)


def test_traits_look_like_a_shop_customer(identifies: list[dict[str, Any]]) -> None:
    full = [m["traits"] for m in identifies if "first_name" in m["traits"]]
    assert full
    for traits in full:
        assert traits["plan"] in {"free", "plus", "premium"}
        _parse(traits["created_at"])
        if "birthday" in traits:
            datetime.strptime(traits["birthday"], "%Y-%m-%d")
        if "age" in traits:
            assert 18 <= traits["age"] <= 80
    keys = Counter(k for traits in full for k in traits)
    for key in ("phone", "gender", "birthday", "age", "address", "last_name"):
        assert 0 < keys[key] < len(full), key
    names = {t["first_name"] for t in full} | {t.get("last_name", "") for t in full}
    assert any(not n.isascii() for n in names)  # José, Zoë, 山田 ...


def test_phones_are_valid_for_the_users_country(identifies: list[dict[str, Any]]) -> None:
    phones = [
        (m["traits"]["phone"], m["context"]["locale"]) for m in identifies if "phone" in m["traits"]
    ]
    assert len(phones) > 100
    for phone, locale in phones:
        region = locale.split("-")[1]
        number = phonenumbers.parse(phone, region)
        assert phonenumbers.is_valid_number(number), phone
        assert phonenumbers.region_code_for_number(number) == region, phone


@pytest.mark.parametrize("country", COUNTRIES, ids=lambda c: c.code)
def test_phone_plans_only_make_valid_numbers(country: Country) -> None:
    rng = random.Random(country.code)
    for _ in range(300):
        number = phonenumbers.parse(random_phone(rng, country), country.code)
        assert phonenumbers.is_valid_number(number)


# ---- devices and places -------------------------------------------------------------------


def test_ips_locate_to_the_users_country(messages: list[dict[str, Any]]) -> None:
    geo = GeoIP2Fast()
    countries: Counter[str] = Counter()
    for m in messages[::7]:
        context = m["context"]
        country = geo.lookup(context["ip"]).country_code
        assert country == context["locale"].split("-")[1], context
        countries[country] += 1
    assert len(countries) == 12
    assert countries.most_common(1)[0][0] == "US"


@pytest.mark.parametrize("country", COUNTRIES, ids=lambda c: c.code)
def test_ip_networks_belong_to_their_country(country: Country) -> None:
    geo = GeoIP2Fast()
    rng = random.Random(country.code)
    for _ in range(500):
        assert geo.lookup(random_ip(rng, country)).country_code == country.code


def test_several_browsers_and_devices_appear(messages: list[dict[str, Any]]) -> None:
    agents = {m["context"]["userAgent"] for m in messages}
    families = {parse_user_agent(ua).user_agent.family for ua in agents}  # type: ignore[union-attr]
    assert {"Chrome", "Firefox", "Safari", "Edge", "Mobile Safari", "Samsung Internet"} <= families
    oses = {parse_user_agent(ua).os.family for ua in agents}  # type: ignore[union-attr]
    assert {"Windows", "Mac OS X", "Linux", "iOS", "Android"} <= oses


# ---- size ---------------------------------------------------------------------------------


def test_message_count_grows_linearly_with_users() -> None:
    # A short window keeps the heavy tail (noise) small.
    small = sum(1 for _ in generate_events(1000, 7, seed=5, end=END))
    large = sum(1 for _ in generate_events(4000, 7, seed=5, end=END))
    assert 3.6 < large / small < 4.4


@pytest.mark.parametrize("days", [1, 7, 30])
def test_estimate_is_close_to_the_real_count(days: int) -> None:
    actual = sum(1 for _ in generate_events(2000, days, seed=3, end=END))
    assert abs(estimate_events(2000, days) - actual) < 0.15 * actual


# ---- through collection -------------------------------------------------------------------


def test_collection_accepts_and_enriches_every_message() -> None:
    enricher = Enricher(GeoLocator())
    received = datetime(2025, 11, 30, 0, 0, 5)
    sources: Counter[str | None] = Counter()
    for raw in generate_events(300, 14, seed=9, end=END):
        enrichment = enricher.enrich(validate_message(raw, received_at=received))
        assert enrichment.country == raw["context"]["locale"].split("-")[1]
        assert enrichment.browser and enrichment.device_type in {"desktop", "mobile", "tablet"}
        sources[enrichment.utm_source] += 1
    assert len(sources) > 4
