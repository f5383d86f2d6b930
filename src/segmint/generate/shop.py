"""A deterministic, fast generator of Segment-spec messages from a simulated online shop.

``generate_events(users, days, seed, end)`` simulates each visitor in turn: a country (with
locale, time zone, currency, IP), one or two browsers (each with its own anonymous id), a
number of sessions drawn from a heavy-tailed distribution and spread over the window with
daily and weekly seasonality, and in each session a walk through the shop: a landing page
carrying the traffic source's UTM parameters and click id, product and category pages,
searches, cart, checkout and orders, sign-ups and identify calls.

Speed matters more than elegance here (benchmarks generate 10M messages): one
``random.Random``, lookup tables instead of weighted sampling, timestamps formatted from
precomputed pieces, and message ids from a counter instead of ``uuid4()``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, TypeVar

from segmint.errors import InvalidInput
from segmint.generate.catalog import CATEGORIES, PRODUCTS, popularity_table
from segmint.generate.geography import COUNTRIES, Country, random_ip, random_phone
from segmint.generate.names import NAME_POOLS, TYPO_DOMAINS, NamePool, local_part, pick_pair
from segmint.generate.traffic import (
    CONTENT_PAGES,
    COUPONS,
    FIRST_VISIT_MIX,
    LIBRARY_VERSIONS,
    RETURN_VISIT_MIX,
    SEARCH_QUERIES,
    SHOP_TITLE,
    SHOP_URL,
    SIGNUP_METHODS,
    SOURCES,
    USER_AGENTS,
    Source,
    click_id,
    weighted_table,
)

Message = dict[str, Any]
T = TypeVar("T")

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
IDENTIFIED_SHARE = 0.6
TWO_DEVICE_SHARE = 0.3  # of identified visitors with at least two sessions
SESSION_RATE_MEDIAN = 0.01  # sessions per visitor per day (median; the mean is ~5x)
SESSION_RATE_SIGMA = 1.8  # lognormal spread: over 30 days the top 10% make ~half the events
MAX_SESSIONS_PER_DAY = 6.0
MAX_STEPS = 60

# Share of sessions by local hour (0-23) and by weekday (Monday first).
_HOUR_WEIGHTS = (2, 1, 1, 1, 1, 2, 4, 6, 8, 9, 9, 10, 11, 10, 9, 9, 10, 11, 13, 15, 16, 14, 9, 5)
_WEEKDAY_WEIGHTS = (1.0, 0.97, 0.97, 1.0, 1.05, 1.15, 1.2)
_PRODUCT_PAGES = [(f"/p/{p.slug}", f"{p.name} | {SHOP_TITLE}") for p in PRODUCTS]
_CATEGORY_PAGES = {c: (f"/c/{c}", f"{c.capitalize()} | {SHOP_TITLE}") for c in CATEGORIES}
_LOW_HEX = [f"{i:03x}" for i in range(4096)]
_PLANS = ("free",) * 70 + ("plus",) * 22 + ("premium",) * 8


@dataclass(slots=True)
class GeneratorStats:
    """What a generation run produced; filled in as the iterator is consumed."""

    users: int = 0
    identified_users: int = 0
    two_device_users: int = 0
    sessions: int = 0
    messages: int = 0
    orders: int = 0


@dataclass(slots=True)
class _Device:
    """One browser of a visitor: its anonymous id, the context it sends, whether it has
    been identified (analytics.js then adds the userId to every message)."""

    anonymous_id: str
    context: dict[str, Any]
    mobile: bool
    identified: bool = False


@dataclass(slots=True)
class _Visitor:
    """A visitor's state across sessions."""

    index: int
    country: Country
    currency: str
    locale: str
    pool: NamePool
    favorite: str
    destined: bool  # will identify at some point
    user_id: str | None = None  # set once identified on any device
    traits: dict[str, Any] = field(default_factory=dict)
    cart: list[tuple[int, int]] = field(default_factory=list)
    cart_id: str = ""
    subscribed: bool = False
    orders: int = 0


def generate_events(
    users: int,
    days: int,
    seed: int = 0,
    end: datetime | None = None,
    stats: GeneratorStats | None = None,
) -> Iterator[Message]:
    """Yield the Segment-spec messages (dicts ready for ``json.dumps``) of ``users``
    visitors of an online shop over the ``days`` days before ``end``.

    Same arguments, same messages. Every timestamp lies in ``[end - days, end]``; messages
    come visitor by visitor, chronological per visitor but not globally. ``end`` defaults
    to the start of today (UTC), so pass it to reproduce a data set on another day; naive
    datetimes are taken as UTC. Nested ``context`` objects (``library``, ``campaign``,
    ``page``) may be shared between messages: copy before mutating. ``stats``, if given,
    is filled in as messages are consumed.
    """
    if users < 0:
        raise InvalidInput(f"users must be 0 or more, got {users}", path="users")
    if days < 1:
        raise InvalidInput(f"days must be 1 or more, got {days}", path="days")
    if end is None:
        end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    elif end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    end_ms = int(end.timestamp() * 1000)
    simulation = _ShopSimulation(seed, days, end_ms, stats or GeneratorStats())
    return simulation.run(users)


def estimate_events(users: int, days: int) -> int:
    """Roughly how many messages ``generate_events(users, days)`` yields (within ~15% for a
    few thousand users or more; the heavy tail makes small runs vary more)."""
    return round(users * (1.6 + 7.4 * _expected_sessions(days)))


def _expected_sessions(days: int) -> float:
    # E[max(1, min(cap, rate) * days)] for the lognormal rate, by quadrature over z ~ N(0, 1).
    total = 0.0
    steps = 400
    for i in range(steps):
        z = -6.0 + 12.0 * (i + 0.5) / steps
        weight = math.exp(-z * z / 2) / math.sqrt(2 * math.pi) * 12.0 / steps
        rate = min(MAX_SESSIONS_PER_DAY, SESSION_RATE_MEDIAN * math.exp(SESSION_RATE_SIGMA * z))
        total += weight * max(1.0, rate * days)
    return total


@cache
def _time_of_day() -> tuple[list[str], list[str]]:
    """``HH:MM:SS`` for every second of a day and ``.mmmZ`` for every millisecond."""
    seconds = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86_400)]
    millis = [f".{ms:03d}Z" for ms in range(1000)]
    return seconds, millis


@cache
def _category_tables() -> dict[str, list[int]]:
    table = popularity_table()
    return {c: [i for i in table if PRODUCTS[i].category == c] for c in CATEGORIES}


class _ShopSimulation:
    """Holds the random stream, the lookup tables and the counters of one run."""

    def __init__(self, seed: int, days: int, end_ms: int, stats: GeneratorStats) -> None:
        self.rng = random.Random(seed)
        self.rnd = self.rng.random
        self.days = days
        self.end_ms = end_ms
        self.start_ms = end_ms - days * DAY_MS
        # Sessions stop 10 s before the end: the last messages of a step land just after it.
        self.stop_ms = end_ms - 10_000
        self.stats = stats
        self.seconds, self.millis = _time_of_day()
        first_day = self.start_ms // DAY_MS - 1
        self.first_day = first_day
        self.day_prefix = [
            (datetime(1970, 1, 1) + timedelta(days=d)).strftime("%Y-%m-%dT")
            for d in range(first_day, end_ms // DAY_MS + 2)
        ]
        prefix = f"{self.rng.getrandbits(80):020x}"
        self.id_prefix = f"{prefix[:8]}-{prefix[8:12]}-4{prefix[13:16]}-a{prefix[17:20]}-"
        self.counter = 0
        self.id_high = f"{self.id_prefix}{0:09x}"
        self.order_counter = 0
        self.pool_counts = dict.fromkeys(NAME_POOLS, 0)
        self.pool_offsets = {k: self.rng.getrandbits(32) for k in NAME_POOLS}
        self.countries = weighted_table({c.code: c.weight for c in COUNTRIES})
        self.country_by_code = {c.code: c for c in COUNTRIES}
        self.first_sources = weighted_table(FIRST_VISIT_MIX)
        self.return_sources = weighted_table(RETURN_VISIT_MIX)
        self.popular = popularity_table()
        self.by_category = _category_tables()
        self.hours = [h for h, w in enumerate(_HOUR_WEIGHTS) for _ in range(w)]
        self.day_table = self._day_table()
        self.product_props: dict[tuple[int, str], dict[str, Any]] = {}
        tables = random.Random(99)  # fixed: these shape the data, the seed picks from them
        # Time on a page: 3 s plus an exponential with a 40 s mean.
        self.send_delays = [20 + int(tables.random() * 900) for _ in range(4096)]
        self.think = [3000 + int(tables.expovariate(1 / 40_000)) for _ in range(1024)]
        self.ages = [18 + int(tables.betavariate(2.0, 4.0) * 62) for _ in range(1000)]
        self.end_year = (datetime(1970, 1, 1) + timedelta(milliseconds=end_ms)).year

    def _day_table(self) -> list[int]:
        table = []
        for d in range(self.days):
            weekday = ((self.start_ms + d * DAY_MS) // DAY_MS + 3) % 7  # 1970-01-01 = Thursday
            table.extend([d] * round(_WEEKDAY_WEIGHTS[weekday] * 20))
        return table

    # ---- small helpers on the hot path -------------------------------------------------

    def _ts(self, t: int) -> str:
        day, rem = divmod(t, DAY_MS)
        sec, ms = divmod(rem, 1000)
        return self.day_prefix[day - self.first_day] + self.seconds[sec] + self.millis[ms]

    def _message(
        self,
        out: list[Message],
        kind: str,
        t: int,
        device: _Device,
        visitor: _Visitor,
        context: dict[str, Any],
        key: str,
        value: Any,
        properties: dict[str, Any] | None = None,
    ) -> None:
        """Append a message of ``kind`` with ``key: value`` (``event``, ``name`` or ``traits``)
        and the fields every message has; sentAt is 20 ms to 1 s after the timestamp."""
        counter = self.counter = self.counter + 1
        low = counter & 0xFFF
        if not low:  # the id's upper digits change every 4096 messages
            self.id_high = f"{self.id_prefix}{counter >> 12:09x}"
        # Inlined _ts (twice): this runs for every message.
        day, rem = divmod(t, DAY_MS)
        sec, ms = divmod(rem, 1000)
        date = self.day_prefix[day - self.first_day]
        seconds = self.seconds
        sent_ms = ms + self.send_delays[low]
        if sent_ms < 1000:
            sent = date + seconds[sec] + self.millis[sent_ms]
        elif sec < 86_399:
            sent = date + seconds[sec + 1] + self.millis[sent_ms - 1000]
        else:
            sent = self._ts(t - ms + sent_ms)
        message: Message = {
            "type": kind,
            "messageId": self.id_high + _LOW_HEX[low],
            "timestamp": date + seconds[sec] + self.millis[ms],
            "sentAt": sent,
            "anonymousId": device.anonymous_id,
            key: value,
            "context": context,
        }
        if properties is not None:
            message["properties"] = properties
        if device.identified:
            message["userId"] = visitor.user_id
        out.append(message)

    def _uuid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"

    # ---- visitors ----------------------------------------------------------------------

    def run(self, users: int) -> Iterator[Message]:
        """Simulate the visitors one after the other, yielding their messages."""
        stats = self.stats
        for index in range(users):
            messages = self._visitor(index)
            stats.users += 1
            stats.messages += len(messages)
            yield from messages

    def _visitor(self, index: int) -> list[Message]:
        rng = self.rng
        rnd = rng.random
        country = self.country_by_code[self.countries[int(rnd() * len(self.countries))]]
        locale, pool_key = _pick_locale(rnd(), country)
        tz, offset = country.timezones[int(rnd() * len(country.timezones))]
        visitor = _Visitor(
            index=index,
            country=country,
            currency=country.currency,
            locale=locale,
            pool=NAME_POOLS[pool_key],
            favorite=CATEGORIES[int(rnd() * len(CATEGORIES))],
            destined=rnd() < IDENTIFIED_SHARE,
        )
        starts = self._session_starts(offset)
        main = self._device(visitor, tz, starts[0], mobile=rnd() < country.mobile_share)
        second: _Device | None = None
        if visitor.destined and len(starts) >= 2 and rnd() < TWO_DEVICE_SHARE:
            second = self._device(visitor, tz, starts[1], mobile=not main.mobile)
        returning = rnd() < 0.25  # logs in at the very start of the first session
        plan_session = 0 if returning else min(len(starts) - 1, int(rnd() ** 2 * len(starts)))
        plan_step = 0 if returning else 1 + int(rnd() * 5)
        if returning and visitor.destined:
            created = starts[0] - int((30 + rnd() * 900) * DAY_MS)
            visitor.traits["created_at"] = _iso(created)

        out: list[Message] = []
        last = self.start_ms
        for number, start in enumerate(starts):
            start = max(start, last + 30 * 60_000)
            if start >= self.stop_ms:
                break
            device = main
            identify_at = -1
            if visitor.destined and not main.identified and number >= plan_session:
                identify_at = plan_step if number == plan_session else 0
            elif (
                second is not None
                and main.identified
                and rnd() < (0.4 if second.identified else 0.7)
            ):
                device = second
                if not second.identified:
                    identify_at = 0 if rnd() < 0.5 else 1 + int(rnd() * 3)
            last = self._session(out, visitor, device, start, number, identify_at)
        if visitor.destined and visitor.user_id is None:
            # Sessions ran into the end of the window before the planned identify.
            self._identify(out, visitor, main, min(last + 1000, self.end_ms), "login")
        if visitor.user_id is not None:
            self.stats.identified_users += 1
        if second is not None and second.identified:
            self.stats.two_device_users += 1
        return out

    def _session_starts(self, offset_hours: int) -> list[int]:
        rng = self.rng
        rnd = rng.random
        rate = SESSION_RATE_MEDIAN * rng.lognormvariate(0.0, SESSION_RATE_SIGMA)
        expected = min(MAX_SESSIONS_PER_DAY, rate) * self.days
        count = max(1, int(expected + rnd()))
        days, hours = self.day_table, self.hours
        starts = []
        for _ in range(count):
            day = days[int(rnd() * len(days))]
            local = day * DAY_MS + hours[int(rnd() * len(hours))] * HOUR_MS + int(rnd() * HOUR_MS)
            t = self.start_ms + local - offset_hours * HOUR_MS
            if t < self.start_ms:
                t += DAY_MS
            if t >= self.end_ms:
                t -= DAY_MS
            starts.append(min(max(t, self.start_ms), self.stop_ms - 1))
        starts.sort()
        return starts

    def _device(self, visitor: _Visitor, tz: str, first_visit: int, *, mobile: bool) -> _Device:
        """A browser with its anonymous id and the context it sends; most carry the Google
        Analytics cookie and many Meta's ``_fbp``, set on the first visit."""
        rnd = self.rnd
        kind = ("tablet" if rnd() < 0.12 else "mobile") if mobile else "desktop"
        agents = USER_AGENTS[kind]
        context = {
            "ip": random_ip(self.rng, visitor.country),
            "userAgent": agents[int(rnd() * len(agents))],
            "locale": visitor.locale,
            "timezone": tz,
            "library": {
                "name": "analytics.js",
                "version": LIBRARY_VERSIONS[int(rnd() * len(LIBRARY_VERSIONS))],
            },
        }
        if rnd() < 0.7:
            cookies = {"_ga": f"GA1.1.{self.rng.getrandbits(30)}.{first_visit // 1000}"}
            if rnd() < 0.8:
                cookies["_fbp"] = f"fb.1.{first_visit}.{self.rng.getrandbits(30)}"
            context["cookies"] = cookies
        return _Device(self._uuid(), context, mobile)

    # ---- identity ----------------------------------------------------------------------

    def _identify(
        self, out: list[Message], visitor: _Visitor, device: _Device, t: int, how: str
    ) -> None:
        """Identify ``device``: a new account (``signup``/``checkout``: full traits), a login
        on another browser (``login``: email only), or a refresh of traits (``refresh``)."""
        if visitor.user_id is None:
            visitor.user_id = str(100_001 + visitor.index)
            visitor.traits = self._traits(visitor, t)
            traits = dict(visitor.traits)
        elif how == "refresh":
            traits = {}
            if self.rnd() < 0.3:
                visitor.traits["plan"] = _PLANS[int(self.rnd() * len(_PLANS))]
                traits = {"plan": visitor.traits["plan"]}
        else:
            traits = {"email": visitor.traits["email"]}
        device.identified = True
        self._message(out, "identify", t, device, visitor, device.context, "traits", traits)

    def _traits(self, visitor: _Visitor, t: int) -> dict[str, Any]:
        rnd = self.rnd
        pool = visitor.pool
        k = self.pool_counts[pool.key]
        self.pool_counts[pool.key] = k + 1
        first_index, last_index, round_ = pick_pair(pool, k, self.pool_offsets[pool.key])
        (first, gender), last = pool.first[first_index], pool.last[last_index]
        local = local_part(first, last, round_, "." if rnd() < 0.8 else "_")
        domain = pool.domains[int(rnd() * len(pool.domains))]
        if rnd() < 0.005:
            domain = TYPO_DOMAINS.get(domain, domain)
        if rnd() < 0.03:  # people type capitals; the address is the same
            local = ".".join(part.capitalize() for part in local.split("."))
        first_name, last_name = first.display, last.display
        if pool.key == "ja" and rnd() < 0.5:
            first_name, last_name = first.ascii.capitalize(), last.ascii.capitalize()
        if rnd() < 0.02:
            first_name = first_name.lower()
        traits: dict[str, Any] = {
            "email": f"{local}@{domain}",
            "first_name": first_name,
            "last_name": last_name,
            "plan": _PLANS[int(rnd() * len(_PLANS))],
            "created_at": visitor.traits.get("created_at") or self._ts(t),
        }
        if rnd() < 0.03:
            del traits["last_name"]
        if rnd() < 0.7:
            traits["phone"] = random_phone(self.rng, visitor.country)
        if rnd() < 0.5:
            traits["gender"] = gender if rnd() < 0.98 else "non_binary"
        age = _pick(rnd, self.ages)
        if rnd() < 0.4:
            year = self.end_year - age - 1
            traits["birthday"] = f"{year}-{1 + int(rnd() * 12):02d}-{1 + int(rnd() * 28):02d}"
        elif rnd() < 0.33:
            traits["age"] = age
        if rnd() < 0.3:
            city = visitor.country.cities[int(rnd() * len(visitor.country.cities))]
            traits["address"] = {"city": city, "country": visitor.country.code}
        return traits

    # ---- sessions ----------------------------------------------------------------------

    def _session(
        self,
        out: list[Message],
        visitor: _Visitor,
        device: _Device,
        t: int,
        number: int,
        identify_at: int,
    ) -> int:
        """Append one session's messages; return the time of its last message."""
        self.stats.sessions += 1
        rng = self.rng
        rnd = rng.random
        stop = self.stop_ms
        think = self.think
        base = device.context
        if device.mobile and rnd() < 0.5:  # mobile networks hand out new addresses
            base = {**base, "ip": random_ip(rng, visitor.country)}
        if device.identified and identify_at < 0 and rnd() < 0.08:
            self._identify(out, visitor, device, t, "refresh")
            t += 200
        elif identify_at == 0:
            self._identify(out, visitor, device, t, "login")
            t += 300

        sources = self.first_sources if number == 0 else self.return_sources
        source = SOURCES[sources[int(rnd() * len(sources))]]
        page, context, product = self._landing(visitor, device, source, base)
        referrer = page["url"]
        self._land(out, visitor, device, context, t, product)

        step = 0
        while step < MAX_STEPS:
            step += 1
            t += think[int(rnd() * 1024)]
            if t >= stop:
                return stop
            if step == identify_at and not device.identified:
                t = self._signup(out, visitor, device, t, base, referrer) + 1500
            if rnd() < 0.2 + 0.1 * (step > 8):
                break
            if product >= 0 and rnd() < 0.13:
                t += 500 + int(rnd() * 4000)
                self._add_to_cart(out, visitor, device, context, t, product)
                if rnd() < 0.45:
                    t += 2000 + int(rnd() * 10_000)
                    t, referrer, done = self._cart_and_checkout(
                        out, visitor, device, base, t, referrer
                    )
                    if done:
                        break
                    product = -1
                    continue
            r = rnd()
            product = -1
            if r < 0.5:
                category = visitor.favorite if rnd() < 0.5 else ""
                product = self._pick_product(category)
                page, context = self._product_page(out, visitor, device, base, t, product, referrer)
            elif r < 0.67:
                category = visitor.favorite if rnd() < 0.5 else _pick(rnd, CATEGORIES)
                path, title = _CATEGORY_PAGES[category]
                page, context = self._page(
                    out, visitor, device, base, t, "Category", path, title, referrer
                )
            elif r < 0.77:
                page, context = self._search(out, visitor, device, base, t, referrer, context)
            elif r < 0.84:
                page, context = self._page(
                    out, visitor, device, base, t, "Home", "/", SHOP_TITLE, referrer
                )
            elif r < 0.9 and visitor.cart:
                t, referrer, done = self._cart_and_checkout(out, visitor, device, base, t, referrer)
                if done:
                    break
                continue
            elif r < 0.93 and device.identified and not visitor.subscribed:
                visitor.subscribed = True
                self._message(
                    out,
                    "track",
                    t,
                    device,
                    visitor,
                    context,
                    "event",
                    "newsletter_subscribed",
                    {
                        "list_id": "weekly_deals",
                        "source": _pick(rnd, ("footer", "popup", "checkout")),
                    },
                )
                continue
            elif r < 0.96 and visitor.cart:
                product_index, _ = visitor.cart.pop()
                self._message(
                    out,
                    "track",
                    t,
                    device,
                    visitor,
                    context,
                    "event",
                    "removed_from_cart",
                    {
                        "product_id": PRODUCTS[product_index].product_id,
                        "cart_id": visitor.cart_id,
                    },
                )
                continue
            else:
                path, title = _pick(rnd, CONTENT_PAGES)
                page, context = self._page(
                    out,
                    visitor,
                    device,
                    base,
                    t,
                    "Content",
                    path,
                    f"{title} | {SHOP_TITLE}",
                    referrer,
                )
            referrer = page["url"]
        if identify_at > 0 and not device.identified and t < stop:
            # Left before reaching the planned step: sign up on the way out.
            t = self._signup(out, visitor, device, t, base, referrer)
        return min(t, stop)

    def _landing(
        self, visitor: _Visitor, device: _Device, source: Source, base: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any], int]:
        """The landing page's ``context.page`` (URL with UTM parameters and click id), the
        context of the messages sent from it and its product (-1 if not a product page)."""
        rnd = self.rnd
        paid = source.click_id is not None
        r = rnd()
        product = -1
        if r < (0.5 if paid else 0.25):
            landing = "product"
            product = self._pick_product(visitor.favorite)
            path = f"/p/{PRODUCTS[product].slug}"
        elif r < 0.75:
            landing = "category"
            path = f"/c/{visitor.favorite}"
        else:
            landing = "home"
            path = "/"
        params: list[str] = []
        campaign: dict[str, str] = {}
        if source.utm_source is not None and source.utm_medium is not None:
            name = _pick(rnd, source.campaigns)
            campaign = {"name": name, "source": source.utm_source, "medium": source.utm_medium}
            params = [
                f"utm_source={source.utm_source}",
                f"utm_medium={source.utm_medium}",
                f"utm_campaign={name}",
            ]
            if source.has_term:
                term = _pick(rnd, SEARCH_QUERIES[visitor.favorite])
                campaign["term"] = term
                params.append(f"utm_term={term.replace(' ', '+')}")
            if source.contents:
                content = _pick(rnd, source.contents)
                campaign["content"] = content
                params.append(f"utm_content={content}")
        if source.click_id is not None:
            parameter = source.click_id
            if parameter == "gclid" and "iPhone" in device.context["userAgent"] and rnd() < 0.4:
                parameter = "gbraid" if rnd() < 0.5 else "wbraid"
            params.append(f"{parameter}={click_id(self.rng, parameter)}")
        search = "?" + "&".join(params) if params else ""
        if landing == "home":
            title = SHOP_TITLE
        elif product >= 0:
            title = f"{PRODUCTS[product].name} | {SHOP_TITLE}"
        else:
            title = f"{visitor.favorite.capitalize()} | {SHOP_TITLE}"
        page = {
            "path": path,
            "referrer": _pick(rnd, source.referrers),
            "search": search,
            "title": title,
            "url": f"{SHOP_URL}{path}{search}",
        }
        context = {**base, "page": page}
        if campaign and rnd() < 0.7:  # the rest leave UTM extraction to the page URL
            context["campaign"] = campaign
        return page, context, product

    def _land(
        self,
        out: list[Message],
        visitor: _Visitor,
        device: _Device,
        context: dict[str, Any],
        t: int,
        product: int,
    ) -> None:
        """Send the landing page view, plus product_viewed on a product page."""
        page = context["page"]
        name = "Home" if page["path"] == "/" else "Product" if product >= 0 else "Category"
        self._message(out, "page", t, device, visitor, context, "name", name, dict(page))
        if product >= 0:
            properties = self._product_properties(product, visitor.currency)
            self._message(
                out,
                "track",
                t + 400,
                device,
                visitor,
                context,
                "event",
                "product_viewed",
                properties,
            )

    def _pick_product(self, category: str) -> int:
        table = self.by_category[category] if category else self.popular
        return table[int(self.rnd() * len(table))]

    def _page(
        self,
        out: list[Message],
        visitor: _Visitor,
        device: _Device,
        base: dict[str, Any],
        t: int,
        name: str,
        path: str,
        title: str,
        referrer: str,
        search: str = "",
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        page = {
            "path": path,
            "referrer": referrer,
            "search": search,
            "title": title,
            "url": f"{SHOP_URL}{path}{search}",
        }
        context = base.copy()
        context["page"] = page
        properties = page.copy()
        if self.rnd() < 0.03:  # some sites do not send the referrer
            del properties["referrer"]
        self._message(out, "page", t, device, visitor, context, "name", name, properties)
        return page, context

    def _product_properties(self, product: int, currency: str) -> dict[str, Any]:
        key = (product, currency)
        template = self.product_props.get(key)
        if template is None:
            p = PRODUCTS[product]
            template = {
                "product_id": p.product_id,
                "sku": p.sku,
                "name": p.name,
                "category": p.category,
                "brand": p.brand,
                "price": p.prices[currency],
                "currency": currency,
            }
            self.product_props[key] = template
        properties = template.copy()
        r = self.rnd()
        if r < 0.02:  # a price sent as a string
            properties["price"] = f"{properties['price']:.2f}"
        elif r < 0.06:  # brand not sent
            del properties["brand"]
        return properties

    def _product_page(
        self,
        out: list[Message],
        visitor: _Visitor,
        device: _Device,
        base: dict[str, Any],
        t: int,
        product: int,
        referrer: str,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        path, title = _PRODUCT_PAGES[product]
        page, context = self._page(out, visitor, device, base, t, "Product", path, title, referrer)
        properties = self._product_properties(product, visitor.currency)
        self._message(
            out, "track", t + 300, device, visitor, context, "event", "product_viewed", properties
        )
        return page, context

    def _search(
        self,
        out: list[Message],
        visitor: _Visitor,
        device: _Device,
        base: dict[str, Any],
        t: int,
        referrer: str,
        context: dict[str, Any],
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        rnd = self.rnd
        category = visitor.favorite if rnd() < 0.6 else _pick(rnd, CATEGORIES)
        query = _pick(rnd, SEARCH_QUERIES[category])
        self._message(
            out, "track", t, device, visitor, context, "event", "search", {"query": query}
        )
        return self._page(
            out,
            visitor,
            device,
            base,
            t + 600,
            "Search Results",
            "/search",
            f"Search: {query} | {SHOP_TITLE}",
            referrer,
            "?q=" + query.replace(" ", "+"),
        )

    def _add_to_cart(
        self,
        out: list[Message],
        visitor: _Visitor,
        device: _Device,
        context: dict[str, Any],
        t: int,
        product: int,
    ) -> None:
        rnd = self.rnd
        if not visitor.cart:
            visitor.cart_id = f"{self.rng.getrandbits(64):016x}"
        r = rnd()
        quantity = 1 if r < 0.85 else 2 if r < 0.95 else 3
        visitor.cart.append((product, quantity))
        price: float | str = PRODUCTS[product].prices[visitor.currency]
        if rnd() < 0.02:
            price = f"{price:.2f}"
        self._message(
            out,
            "track",
            t,
            device,
            visitor,
            context,
            "event",
            "added_to_cart",
            {
                "product_id": PRODUCTS[product].product_id,
                "price": price,
                "quantity": quantity,
                "cart_id": visitor.cart_id,
                "currency": visitor.currency,
            },
        )

    def _cart_and_checkout(
        self,
        out: list[Message],
        visitor: _Visitor,
        device: _Device,
        base: dict[str, Any],
        t: int,
        referrer: str,
    ) -> tuple[int, str, bool]:
        """Cart page, then maybe checkout and an order. Returns the time of the last message,
        the last URL and whether the session ends here."""
        rnd = self.rnd
        page, context = self._page(
            out, visitor, device, base, t, "Cart", "/cart", f"Cart | {SHOP_TITLE}", referrer
        )
        if rnd() >= 0.5 or not visitor.cart:
            return t, page["url"], False
        t += 5000 + int(rnd() * 30_000)
        page, context = self._page(
            out,
            visitor,
            device,
            base,
            t,
            "Checkout",
            "/checkout",
            f"Checkout | {SHOP_TITLE}",
            page["url"],
        )
        currency = visitor.currency
        value = sum(PRODUCTS[i].prices[currency] * q for i, q in visitor.cart)
        self._message(
            out,
            "track",
            t + 500,
            device,
            visitor,
            context,
            "event",
            "checkout_started",
            {
                "cart_id": visitor.cart_id,
                "value": round(value, 2),
                "currency": currency,
                "product_count": len(visitor.cart),
            },
        )
        if not visitor.destined or rnd() >= 0.55:
            return t + 500, page["url"], rnd() < 0.6  # abandoned checkout
        t += 30_000 + int(rnd() * 240_000)
        if t >= self.stop_ms:
            return t, page["url"], True
        if not device.identified:
            # Guest checkout (new customer) or sign-in at checkout (known customer).
            self._identify(out, visitor, device, t, "checkout")
            t += 800
        self._order(out, visitor, device, base, t, page["url"], value)
        return t + 700, page["url"], rnd() < 0.7

    def _order(
        self,
        out: list[Message],
        visitor: _Visitor,
        device: _Device,
        base: dict[str, Any],
        t: int,
        referrer: str,
        value: float,
    ) -> None:
        rnd = self.rnd
        currency = visitor.currency
        _, context = self._page(
            out,
            visitor,
            device,
            base,
            t,
            "Order Confirmation",
            "/checkout/confirmation",
            f"Thank you | {SHOP_TITLE}",
            referrer,
        )
        self.order_counter += 1
        visitor.orders += 1
        self.stats.orders += 1
        scale = (
            1.0
            if currency in ("USD", "CAD", "AUD", "GBP", "EUR")
            else ({"BRL": 5.0, "INR": 83.0, "JPY": 150.0}[currency])
        )
        properties: dict[str, Any] = {
            "order_id": f"{1_000_000 + self.order_counter}",
            "currency": currency,
        }
        discount = 0.0
        if rnd() < 0.2:
            properties["coupon"] = _pick(rnd, COUPONS)
            discount = round(value * (0.1 + 0.1 * rnd()), 2)
            properties["discount"] = discount
        revenue = round(value - discount, 2)
        shipping = 0.0 if value >= 50 * scale else round(4.99 * scale, 2)
        tax = round(revenue * 0.08, 2) if visitor.country.code in ("US", "CA") else 0.0
        properties["revenue"] = revenue
        properties["shipping"] = shipping
        properties["tax"] = tax
        properties["total"] = round(revenue + shipping + tax, 2)
        properties["products"] = [
            {
                "product_id": PRODUCTS[i].product_id,
                "sku": PRODUCTS[i].sku,
                "name": PRODUCTS[i].name,
                "category": PRODUCTS[i].category,
                "price": PRODUCTS[i].prices[currency],
                "quantity": q,
            }
            for i, q in visitor.cart
        ]
        self._message(
            out, "track", t + 700, device, visitor, context, "event", "order_completed", properties
        )
        visitor.cart = []

    def _signup(
        self,
        out: list[Message],
        visitor: _Visitor,
        device: _Device,
        t: int,
        base: dict[str, Any],
        referrer: str,
    ) -> int:
        """A new customer creates an account (signed_up, then identify); a known customer on
        this browser just logs in (identify). Returns the time of the last message."""
        if visitor.user_id is not None:
            self._identify(out, visitor, device, t, "login")
            return t
        _, context = self._page(
            out,
            visitor,
            device,
            base,
            t,
            "Sign Up",
            "/account/register",
            f"Create account | {SHOP_TITLE}",
            referrer,
        )
        # Filling in the form takes a while, but never past the end of the window.
        t += min(20_000 + int(self.rnd() * 60_000), max(0, self.stop_ms - t))
        self._message(
            out,
            "track",
            t,
            device,
            visitor,
            context,
            "event",
            "signed_up",
            {
                "method": _pick(self.rnd, SIGNUP_METHODS),
            },
        )
        self._identify(out, visitor, device, t + 300, "signup")
        return t + 300


def _iso(t: int) -> str:
    """Any epoch-milliseconds time as ISO-8601 UTC (the slow path, for times outside the
    window such as an old account's creation)."""
    moment = datetime(1970, 1, 1) + timedelta(milliseconds=t)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t % 1000:03d}Z"


def _pick(rnd: Callable[[], float], options: Sequence[T]) -> T:
    return options[int(rnd() * len(options))]


def _pick_locale(r: float, country: Country) -> tuple[str, str]:
    for locale, weight, pool in country.locales:
        if r < weight:
            return locale, pool
        r -= weight
    locale, _, pool = country.locales[-1]
    return locale, pool
