"""Enrichment: the columns collection derives from a message's context — UTM parameters,
ad click ids, ad cookies, page, user agent, locale and location.

``Enricher.enrich`` is pure apart from cached lookups (user agent, IP): the per-message
reference, returning an :class:`Enrichment`. ``Enricher.enrich_rows`` computes the same values
for a whole batch as plain tuples (in ``ENRICHMENT_FIELDS`` order), which is what the collector
stores: it remembers the derived page/UTM/click-id values per distinct page (URL, search,
path, referrer), the technology per user agent and the location per IP, so a repeated input
costs a dictionary lookup instead of a parse.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ua_parser import parse as parse_user_agent

from segmint.collect.geo import GeoLocator, GeoResult, normalize_country
from segmint.collect.messages import Enrichment, Message

# context.campaign key -> Enrichment field (Segment names the campaign itself "name").
CAMPAIGN_FIELDS = {
    "source": "utm_source",
    "medium": "utm_medium",
    "name": "utm_campaign",
    "term": "utm_term",
    "content": "utm_content",
}
UTM_FIELDS = tuple(CAMPAIGN_FIELDS.values())
# Ad platforms' click ids, by query parameter (= Enrichment field) name: Google (gclid,
# wbraid, gbraid), Meta (fbclid), TikTok (ttclid), LinkedIn (li_fat_id), Microsoft (msclkid).
CLICK_ID_FIELDS = ("gclid", "fbclid", "ttclid", "li_fat_id", "msclkid", "wbraid", "gbraid")
# Enrichment field -> first-party cookie that carries it.
COOKIE_FIELDS = {"fbp": "_fbp", "fbc": "_fbc", "ga": "_ga"}

# User agents repeat heavily (a few thousand distinct ones cover most traffic) and a parse
# costs tens of microseconds to milliseconds; a hit costs a dict lookup.
USER_AGENT_CACHE_SIZE = 4096
# Per-Enricher caches of the batch path: distinct pages (URL, search, path, referrer) and IPs.
# A full cache is emptied rather than evicted entry by entry: cheap, and still bounded.
PAGE_CACHE_SIZE = 65_536
IP_CACHE_SIZE = 65_536

EnrichmentRow = tuple[str | None, ...]
"""An enrichment as a tuple of its values in ``ENRICHMENT_FIELDS`` order."""

DEVICE_TYPES = ("desktop", "mobile", "tablet", "bot", "other")


class Enricher:
    """Derives an ``Enrichment`` from a message. ``geo`` locates the IP address when the
    message carries no location of its own; without it, location comes from the message only."""

    def __init__(self, geo: GeoLocator | None = None) -> None:
        self.geo = geo
        self._pages: dict[tuple[str | None, ...], _PageValues] = {}
        self._agents: dict[str, tuple[str | None, ...]] = {}
        self._places: dict[str, tuple[str | None, str | None, str | None]] = {}

    def enrich_rows(self, messages: list[Message]) -> list[EnrichmentRow]:
        """The enrichment of each message as a tuple in ``ENRICHMENT_FIELDS`` order: the same
        values as ``enrich``, computed with per-batch shortcuts (see the module docstring)."""
        return [self._row(message) for message in messages]

    def _row(self, message: Message) -> EnrichmentRow:
        context = message.context
        get = context.get
        page = get("page")
        if not isinstance(page, dict):
            page = _EMPTY
        props = message.properties if message.type == "page" else _EMPTY
        key = (
            _text(page.get("url")) or _text(props.get("url")),
            _text(page.get("search")) or _text(props.get("search")),
            _text(page.get("path")) or _text(props.get("path")),
            _text(page.get("referrer")) or _text(props.get("referrer")),
        )
        pages = self._pages
        derived = pages.get(key)
        if derived is None:
            if len(pages) >= PAGE_CACHE_SIZE:
                pages.clear()
            derived = pages[key] = _page_values(*key)
        page_fields, utm, clicks = derived

        campaign = get("campaign")
        if campaign and isinstance(campaign, dict):
            from_campaign = (
                _campaign_text(campaign.get("source")),
                _campaign_text(campaign.get("medium")),
                _campaign_text(campaign.get("name")),
                _campaign_text(campaign.get("term")),
                _campaign_text(campaign.get("content")),
            )
            if any(from_campaign):
                utm = from_campaign

        cookies = get("cookies")
        if not isinstance(cookies, dict):
            cookies = _EMPTY
        fbc = _text(cookies.get("_fbc")) or _text(get("fbc"))
        if fbc is None and clicks[1] is not None:
            fbc = meta_fbc(clicks[1], message.timestamp)
        cookie_values = (_text(cookies.get("_fbp")) or _text(get("fbp")), fbc)
        ga = _text(cookies.get("_ga")) or _text(get("ga"))

        user_agent = _text(get("userAgent"))
        if user_agent is None:
            agent: tuple[str | None, ...] = _NO_AGENT
        else:
            agent = self._agents.get(user_agent)  # type: ignore[assignment]
            if agent is None:
                if len(self._agents) >= USER_AGENT_CACHE_SIZE:
                    self._agents.clear()
                info = parse_device(user_agent)
                agent = self._agents[user_agent] = (
                    user_agent,
                    info.browser,
                    info.browser_version,
                    info.os,
                    info.os_version,
                    info.device_type,
                )

        locale = _text(get("locale"))
        locale_pair = normalize_locale(locale) if locale is not None else _NO_LOCALE
        ip = _text(get("ip"))
        place: tuple[str | None, str | None, str | None] | None = None
        if (
            "location" in context
            or "traits" in context
            or (message.type == "identify" and "address" in message.traits)
        ):
            stated = _message_location(message)
            if stated is not None:
                place = (stated.country, stated.region, stated.city)
        if place is None:
            place = self._place(ip)
        return (
            *utm,
            *clicks,
            *cookie_values,
            ga,
            *page_fields,
            ip,
            *agent,
            *locale_pair,
            *place,
            _text(get("timezone")),
        )

    def _place(self, ip: str | None) -> tuple[str | None, str | None, str | None]:
        if self.geo is None or ip is None:
            return _NO_PLACE
        place = self._places.get(ip)
        if place is None:
            if len(self._places) >= IP_CACHE_SIZE:
                self._places.clear()
            found = self.geo.lookup(ip)
            place = self._places[ip] = (found.country, found.region, found.city)
        return place

    def enrich(self, message: Message) -> Enrichment:
        """Every derived column of ``message``; fields with nothing to derive from are None.
        Never raises on odd context shapes: a field of the wrong type counts as absent."""
        context = message.context
        enrichment = Enrichment()
        page = _page_fields(message)
        enrichment.page_url = page.url
        enrichment.page_path = page.path
        enrichment.referrer = page.referrer
        params = _query_params(page.queries)
        _set_utm(enrichment, _mapping(context.get("campaign")), params)
        if params:
            for name in CLICK_ID_FIELDS:
                setattr(enrichment, name, _first(params, name))
        _set_cookies(enrichment, context, message.timestamp)
        _set_user_agent(enrichment, _text(context.get("userAgent")))
        locale = _text(context.get("locale"))
        if locale is not None:
            enrichment.locale, enrichment.language = normalize_locale(locale)
        enrichment.timezone = _text(context.get("timezone"))
        enrichment.ip = _text(context.get("ip"))
        location = _message_location(message) or self._ip_location(enrichment.ip)
        enrichment.country, enrichment.region, enrichment.city = (
            location.country,
            location.region,
            location.city,
        )
        return enrichment

    def _ip_location(self, ip: str | None) -> GeoResult:
        if self.geo is None or ip is None:
            return GeoResult()
        return self.geo.lookup(ip)


_EMPTY: dict[str, Any] = {}
_NO_AGENT: tuple[None, ...] = (None,) * 6
_NO_LOCALE: tuple[None, None] = (None, None)
_NO_PLACE: tuple[None, None, None] = (None, None, None)
_NO_UTM: tuple[None, ...] = (None,) * 5
_NO_CLICKS: tuple[None, ...] = (None,) * 7


# --- page, UTM, click ids --------------------------------------------------------------------


@dataclass(slots=True)
class _Page:
    url: str | None
    path: str | None
    referrer: str | None
    queries: tuple[str, ...]


def _page_fields(message: Message) -> _Page:
    """URL, path, referrer and the query strings to read parameters from.

    ``context.page`` is what analytics.js sends with every call; a page call's own
    properties (url, path, referrer, search) stand in for each field it lacks."""
    page = _mapping(message.context.get("page"))
    props = message.properties if message.type == "page" else {}
    url = _text(page.get("url")) or _text(props.get("url"))
    search = _text(page.get("search")) or _text(props.get("search"))
    path = _text(page.get("path")) or _text(props.get("path"))
    referrer = _text(page.get("referrer")) or _text(props.get("referrer"))
    url_query = None
    if url is not None and ("?" in url or path is None):
        # Only split the URL when it has something we need from it.
        url_query, url_path = _split_url(url)
        path = path or url_path
    # The URL's query first, then ``search``: analytics.js puts the canonical URL (often
    # without the query) in page.url but the browser's real query in page.search.
    search_query = search.lstrip("?") if search else None
    queries = tuple(dict.fromkeys(q for q in (url_query, search_query) if q))
    return _Page(url, path, referrer, queries)


_PageValues = tuple[
    tuple[str | None, str | None, str | None], tuple[str | None, ...], tuple[str | None, ...]
]


def _page_values(
    url: str | None, search: str | None, path: str | None, referrer: str | None
) -> _PageValues:
    """(page_url, page_path, referrer), the UTM values of the query string and the click ids,
    from a page's resolved fields: the rules of ``_page_fields`` and ``_set_utm``."""
    url_query = None
    if url is not None and ("?" in url or path is None):
        url_query, url_path = _split_url(url)
        path = path or url_path
    search_query = search.lstrip("?") if search else None
    queries = tuple(dict.fromkeys(q for q in (url_query, search_query) if q))
    params = _query_params(queries)
    if not params:
        return (url, path, referrer), _NO_UTM, _NO_CLICKS
    return (
        (url, path, referrer),
        tuple(_first(params, name) for name in UTM_FIELDS),
        tuple(_first(params, name) for name in CLICK_ID_FIELDS),
    )


def _split_url(url: str) -> tuple[str | None, str | None]:
    """A page URL's query string and path (None for what it lacks). A URL that ``urlsplit``
    refuses (``https://shop.example]/``: a bracket outside an IPv6 host) keeps its query,
    everything between the first ``?`` and ``#``, and has no path: enrichment never fails a
    message the API accepted."""
    try:
        parts = urlsplit(url)
    except ValueError:
        query = url.partition("?")[2].partition("#")[0]
        return query or None, None
    return parts.query or None, parts.path or None


def _query_params(queries: tuple[str, ...]) -> dict[str, list[str]]:
    """Parameters of the query strings, percent-decoded ('+' is a space); for a name in
    several strings the first string wins."""
    if not queries:
        return {}
    params = parse_qs(queries[0])
    for query in queries[1:]:
        for name, values in parse_qs(query).items():
            params.setdefault(name, values)
    return params


def _first(params: Mapping[str, list[str]], name: str) -> str | None:
    """The first non-blank value of a parameter, trimmed."""
    for value in params.get(name, ()):
        value = value.strip()
        if value:
            return value
    return None


def _set_utm(
    enrichment: Enrichment, campaign: Mapping[str, Any], params: Mapping[str, list[str]]
) -> None:
    """UTM values from ``context.campaign`` when it holds any, else from the page query.
    All five come from one source, so a campaign never mixes with another's URL."""
    if campaign:
        from_campaign = {
            field: _campaign_text(campaign.get(key)) for key, field in CAMPAIGN_FIELDS.items()
        }
        if any(from_campaign.values()):
            for field, value in from_campaign.items():
                setattr(enrichment, field, value)
            return
    if params:
        for field in UTM_FIELDS:
            setattr(enrichment, field, _first(params, field))


# --- cookies -----------------------------------------------------------------------------------


def _set_cookies(enrichment: Enrichment, context: Mapping[str, Any], timestamp: datetime) -> None:
    """``_fbp``/``_fbc``/``_ga`` from ``context.cookies``, else ``context.fbp``/``fbc``/``ga``.

    Without an ``_fbc`` cookie but with an ``fbclid`` in the URL, fbc is built the way Meta's
    pixel builds the cookie: ``fb.1.<event time in ms>.<fbclid>``."""
    cookies = _mapping(context.get("cookies"))
    for field, cookie in COOKIE_FIELDS.items():
        setattr(enrichment, field, _text(cookies.get(cookie)) or _text(context.get(field)))
    if enrichment.fbc is None and enrichment.fbclid is not None:
        enrichment.fbc = meta_fbc(enrichment.fbclid, timestamp)


def meta_fbc(fbclid: str, timestamp: datetime) -> str:
    """Meta's ``fbc`` value for a click id seen at ``timestamp`` (naive UTC): subdomain index 1
    (the registrable domain), then the time in milliseconds, then the click id."""
    if timestamp.tzinfo is not None:
        timestamp = timestamp.astimezone(UTC).replace(tzinfo=None)
    # Integer arithmetic: a float of the epoch seconds can be off by a millisecond.
    milliseconds = (timestamp - _EPOCH) // timedelta(milliseconds=1)
    return f"fb.1.{milliseconds}.{fbclid}"


_EPOCH = datetime(1970, 1, 1)


# --- user agent --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserAgentInfo:
    """What a user agent string says about the browser, OS and kind of device."""

    browser: str | None = None
    browser_version: str | None = None
    os: str | None = None
    os_version: str | None = None
    device_type: str | None = None


def _set_user_agent(enrichment: Enrichment, user_agent: str | None) -> None:
    if user_agent is None:
        return
    enrichment.user_agent = user_agent
    info = parse_device(user_agent)
    enrichment.browser, enrichment.browser_version = info.browser, info.browser_version
    enrichment.os, enrichment.os_version = info.os, info.os_version
    enrichment.device_type = info.device_type


# ua-parser's families for operating systems of phones; a tablet is told apart first.
_MOBILE_OS = frozenset(
    {"iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS", "Firefox OS", "Symbian OS"}
    | {"Tizen", "Sailfish", "webOS", "Bada", "MeeGo", "HarmonyOS", "Windows Mobile"}
)
_DESKTOP_OS = frozenset(
    {"Windows", "Mac OS X", "Linux", "Ubuntu", "Chrome OS", "Fedora", "Debian", "FreeBSD"}
    | {"OpenBSD", "NetBSD", "Solaris", "Red Hat", "SUSE", "Mint", "Gentoo", "Arch Linux"}
)
_TABLET_DEVICE = re.compile(r"iPad|Kindle|Tablet|Nexus (?:7|9|10)\b", re.IGNORECASE)


@lru_cache(maxsize=USER_AGENT_CACHE_SIZE)
def parse_device(user_agent: str) -> UserAgentInfo:
    """Browser family, browser version (major.minor), OS family, OS version and device type
    (one of ``DEVICE_TYPES``) of a user agent string, using ua-parser's families
    ("Chrome", "Mobile Safari", "Mac OS X", "iOS" ...); cached per string."""
    result = parse_user_agent(user_agent)
    agent, os, device = result.user_agent, result.os, result.device
    browser = agent.family if agent is not None and agent.family != "Other" else None
    os_family = os.family if os is not None and os.family != "Other" else None
    return UserAgentInfo(
        browser=browser,
        browser_version=_version(agent.major, agent.minor) if browser and agent else None,
        os=os_family,
        os_version=_version(os.major, os.minor) if os_family and os else None,
        device_type=_device_type(user_agent, os_family, device.family if device else None),
    )


def _version(major: str | None, minor: str | None) -> str | None:
    if not major:
        return None
    return f"{major}.{minor}" if minor else major


def _device_type(user_agent: str, os_family: str | None, device_family: str | None) -> str:
    """Form factor from ua-parser's device and OS families plus the UA's own tokens.

    Android tablets are the Android agents without "Mobile" (Google's rule for Chrome). iPads
    on iPadOS 13+ send a Mac user agent and count as desktops: nothing in the string differs."""
    if device_family == "Spider":  # ua-parser's family for crawlers and bots
        return "bot"
    if (device_family and _TABLET_DEVICE.search(device_family)) or (
        os_family == "Android" and "Mobile" not in user_agent
    ):
        return "tablet"
    if "Tablet" in user_agent and os_family in _MOBILE_OS:
        return "tablet"
    if os_family in _MOBILE_OS or "Mobi" in user_agent:
        return "mobile"
    if os_family in _DESKTOP_OS:
        return "desktop"
    return "other"


# --- locale ------------------------------------------------------------------------------------

# language[-Script][-REGION][-variants...]; "_" as separator too (POSIX / Java style).
_LOCALE = re.compile(
    r"(?P<language>[A-Za-z]{2,3})"
    r"(?:[-_](?P<script>[A-Za-z]{4}))?"
    r"(?:[-_](?P<region>[A-Za-z]{2}|[0-9]{3}))?"
    r"(?P<rest>(?:[-_][A-Za-z0-9]{1,8})*)"
)


@lru_cache(maxsize=256)
def normalize_locale(locale: str) -> tuple[str, str | None]:
    """(locale, language): "en_us" → ("en-US", "en"), "zh-hant-tw" → ("zh-Hant-TW", "zh").

    A POSIX suffix ("en_US.UTF-8", "de_DE@euro") is dropped. A locale that is not
    language[-Script][-REGION][-variant] is kept as given (trimmed) with language None."""
    text = locale.strip()
    match = _LOCALE.fullmatch(re.split(r"[.@]", text, maxsplit=1)[0])
    if match is None:
        return text, None
    language = match["language"].lower()
    parts = [language]
    if match["script"]:
        parts.append(match["script"].title())
    if match["region"]:
        parts.append(match["region"].upper())
    if match["rest"]:
        parts.extend(part.lower() for part in re.split(r"[-_]", match["rest"][1:]))
    return "-".join(parts), language


# --- location ----------------------------------------------------------------------------------


def _message_location(message: Message) -> GeoResult | None:
    """Location the message states itself: ``context.location`` first, then the user's
    address trait (an identify call's traits, then ``context.traits``). None when neither
    has a country, region or city; the three always come from one source."""
    location = _mapping(message.context.get("location"))
    found = _location(location.get("country"), location.get("region"), location.get("city"))
    if found is not None:
        return found
    # A group call's traits describe the group (a company), not the user: not theirs to use.
    trait_sources = (message.traits,) if message.type == "identify" else ()
    for traits in (*trait_sources, _mapping(message.context.get("traits"))):
        address = _mapping(traits.get("address"))
        region = address.get("state") or address.get("region")
        found = _location(address.get("country"), region, address.get("city"))
        if found is not None:
            return found
    return None


def _location(country: Any, region: Any, city: Any) -> GeoResult | None:
    country_text, region_text, city_text = _text(country), _text(region), _text(city)
    if country_text is None and region_text is None and city_text is None:
        return None
    return GeoResult(
        normalize_country(country_text) if country_text else None, region_text, city_text
    )


# --- helpers -----------------------------------------------------------------------------------


def _mapping(value: Any) -> Mapping[str, Any]:
    # Parsed JSON: objects are dicts (a cheaper check than the Mapping ABC on the hot path).
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    """A trimmed non-empty string, else None (a value of another type counts as absent)."""
    return (value.strip() or None) if isinstance(value, str) else None


def _campaign_text(value: Any) -> str | None:
    """Like ``_text``, but numbers are written out: a campaign term or id may be 42."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return _text(value)
