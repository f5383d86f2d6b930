"""Enricher: each derived column from the context shapes Segment clients really send."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from segmint.collect.enrich import Enricher, meta_fbc, normalize_locale, parse_device
from segmint.collect.geo import GeoLocator
from segmint.collect.messages import ENRICHMENT_FIELDS, Enrichment, Message

TIMESTAMP = datetime(2024, 5, 1, 12, 30, 0)
TIMESTAMP_MS = 1714566600000  # TIMESTAMP as Unix milliseconds (UTC)

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.118 Safari/537.36"
)
SAFARI_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15"
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1"
)
IPAD_SAFARI = (
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/16.6 Mobile/15E148 Safari/604.1"
)
ANDROID_PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Mobile Safari/537.36"
)
ANDROID_TABLET = (
    "Mozilla/5.0 (Linux; Android 12; SM-T870) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/24.0 Chrome/117.0.0.0 Safari/537.36"
)
FIREFOX_ANDROID_TABLET = "Mozilla/5.0 (Android 13; Tablet; rv:125.0) Gecko/125.0 Firefox/125.0"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
GOOGLEBOT_SMARTPHONE = (
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/124.0.6367.118 Mobile Safari/537.36 (compatible; Googlebot/2.1; "
    "+http://www.google.com/bot.html)"
)
CURL = "curl/8.4.0"


def make_message(
    type: str = "track",
    *,
    context: dict[str, Any] | None = None,
    properties: dict[str, Any] | None = None,
    traits: dict[str, Any] | None = None,
) -> Message:
    return Message(
        message_id="m-1",
        type=type,
        event="Signed Up" if type == "track" else type,
        timestamp=TIMESTAMP,
        received_at=TIMESTAMP,
        anonymous_id="anon-1",
        context=context or {},
        properties=properties or {},
        traits=traits or {},
    )


def enrich(message: Message, geo: GeoLocator | None = None) -> Enrichment:
    return Enricher(geo).enrich(message)


def page_context(url: str | None = None, **page: Any) -> dict[str, Any]:
    if url is not None:
        page["url"] = url
    return {"page": page}


def utm(enrichment: Enrichment) -> tuple[str | None, ...]:
    return (
        enrichment.utm_source,
        enrichment.utm_medium,
        enrichment.utm_campaign,
        enrichment.utm_term,
        enrichment.utm_content,
    )


def test_empty_context_gives_empty_enrichment() -> None:
    assert enrich(make_message()) == Enrichment()


# --- UTM -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        pytest.param(
            make_message(
                context={
                    "campaign": {
                        "source": "google",
                        "medium": "cpc",
                        "name": "spring",
                        "term": "running shoes",
                        "content": "ad-1",
                    }
                }
            ),
            ("google", "cpc", "spring", "running shoes", "ad-1"),
            id="campaign-context",
        ),
        pytest.param(
            make_message(
                context=page_context(
                    "https://shop.example/p?utm_source=newsletter&utm_medium=email"
                    "&utm_campaign=may&utm_term=shoes&utm_content=hero"
                )
            ),
            ("newsletter", "email", "may", "shoes", "hero"),
            id="page-url",
        ),
        pytest.param(
            make_message(
                context=page_context(
                    search="?utm_source=meta&utm_medium=paid_social&utm_campaign=x"
                )
            ),
            ("meta", "paid_social", "x", None, None),
            id="page-search",
        ),
        pytest.param(
            # analytics.js: a canonical URL without the query, the real query in search.
            make_message(
                context=page_context("https://shop.example/p", search="?utm_source=tiktok")
            ),
            ("tiktok", None, None, None, None),
            id="canonical-url-then-search",
        ),
        pytest.param(
            make_message(
                context=page_context(
                    "https://shop.example/p?utm_source=url", search="?utm_source=search&utm_term=t"
                )
            ),
            ("url", None, None, "t", None),
            id="url-wins-search-fills-gaps",
        ),
        pytest.param(
            make_message(
                "page",
                properties={"url": "https://shop.example/?utm_source=bing&utm_medium=cpc"},
            ),
            ("bing", "cpc", None, None, None),
            id="page-call-properties-url",
        ),
        pytest.param(
            make_message("page", properties={"search": "?utm_campaign=summer"}),
            (None, None, "summer", None, None),
            id="page-call-properties-search",
        ),
        pytest.param(
            make_message("track", properties={"url": "https://shop.example/?utm_source=bing"}),
            (None, None, None, None, None),
            id="track-properties-are-not-a-page",
        ),
        pytest.param(
            make_message(
                context={
                    "campaign": {"source": "campaign"},
                    **page_context("https://x.example/?utm_source=url&utm_medium=cpc"),
                }
            ),
            ("campaign", None, None, None, None),
            id="campaign-wins-over-url-for-all-five",
        ),
        pytest.param(
            make_message(
                context={
                    "campaign": {"source": "  ", "name": ""},
                    **page_context("https://x.example/?utm_source=url"),
                }
            ),
            ("url", None, None, None, None),
            id="blank-campaign-falls-back-to-url",
        ),
        pytest.param(
            make_message(
                context=page_context(
                    "https://x.example/?utm_campaign=spring%20sale&utm_term=caf%C3%A9+cr%C3%A8me"
                    "&utm_content=a%2Bb%26c&utm_source=%20padded%20"
                )
            ),
            ("padded", None, "spring sale", "café crème", "a+b&c"),
            id="percent-decoding-and-trim",
        ),
        pytest.param(
            make_message(
                context=page_context("https://x.example/?utm_source=&utm_medium=+&utm_campaign")
            ),
            (None, None, None, None, None),
            id="empty-values-are-none",
        ),
        pytest.param(
            make_message(context=page_context("https://x.example/?utm_source=a&utm_source=b")),
            ("a", None, None, None, None),
            id="first-repeated-value",
        ),
        pytest.param(
            make_message(context={"campaign": {"name": "q3", "term": 42}}),
            (None, None, "q3", "42", None),
            id="numbers-become-text",
        ),
        pytest.param(
            make_message(context={"campaign": "utm_source=x", "page": "https://x.example/?a"}),
            (None, None, None, None, None),
            id="wrong-shapes-are-ignored",
        ),
        pytest.param(
            make_message(context=page_context("https://x.example/p#utm_source=fragment")),
            (None, None, None, None, None),
            id="fragment-is-not-query",
        ),
    ],
)
def test_utm(message: Message, expected: tuple[str | None, ...]) -> None:
    assert utm(enrich(message)) == expected


# --- click ids -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["gclid", "fbclid", "ttclid", "li_fat_id", "msclkid", "wbraid", "gbraid"]
)
@pytest.mark.parametrize(
    "where",
    [
        lambda query: make_message(context=page_context(f"https://x.example/p?a=1&{query}")),
        lambda query: make_message(context=page_context(search=f"?{query}")),
        lambda query: make_message("page", properties={"url": f"https://x.example/?{query}"}),
    ],
    ids=["page-url", "page-search", "page-call-url"],
)
def test_click_id_from_query(name: str, where: Any) -> None:
    enrichment = enrich(where(f"{name}=Cj0KCQ-abc_123"))
    assert getattr(enrichment, name) == "Cj0KCQ-abc_123"
    others = {"gclid", "fbclid", "ttclid", "li_fat_id", "msclkid", "wbraid", "gbraid"} - {name}
    assert all(getattr(enrichment, other) is None for other in others)


def test_click_id_in_referrer_is_not_taken() -> None:
    message = make_message(context=page_context(referrer="https://x.example/?gclid=abc"))
    assert enrich(message).gclid is None


# --- cookies ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        pytest.param(
            {
                "cookies": {
                    "_fbp": "fb.1.1700000000000.123",
                    "_fbc": "fb.1.1.abc",
                    "_ga": "GA1.1.9.8",
                }
            },
            ("fb.1.1700000000000.123", "fb.1.1.abc", "GA1.1.9.8"),
            id="context-cookies",
        ),
        pytest.param(
            {"fbp": "fb.1.2.p", "fbc": "fb.1.2.c", "ga": "GA1.2.3.4"},
            ("fb.1.2.p", "fb.1.2.c", "GA1.2.3.4"),
            id="top-level-context-keys",
        ),
        pytest.param(
            {"cookies": {"_fbp": "from-cookies"}, "fbp": "from-key", "ga": "ga-key"},
            ("from-cookies", None, "ga-key"),
            id="cookies-win-over-keys",
        ),
        pytest.param(
            {"cookies": {"_fbp": " ", "_ga": None}}, (None, None, None), id="blank-cookies"
        ),
        pytest.param(
            {
                "cookies": {"_fbc": "fb.1.1.existing"},
                **page_context("https://x.example/?fbclid=IwAR1"),
            },
            (None, "fb.1.1.existing", None),
            id="fbc-cookie-wins-over-fbclid",
        ),
        pytest.param(
            page_context("https://x.example/?fbclid=IwAR1"),
            (None, f"fb.1.{TIMESTAMP_MS}.IwAR1", None),
            id="fbc-derived-from-fbclid",
        ),
    ],
)
def test_cookies(context: dict[str, Any], expected: tuple[str | None, ...]) -> None:
    enrichment = enrich(make_message(context=context))
    assert (enrichment.fbp, enrichment.fbc, enrichment.ga) == expected


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (datetime(1970, 1, 1, 0, 0, 1, 500999), "fb.1.1500.abc"),
        (TIMESTAMP, f"fb.1.{TIMESTAMP_MS}.abc"),
        (
            datetime(2024, 5, 1, 14, 30, tzinfo=timezone(timedelta(hours=2))),
            f"fb.1.{TIMESTAMP_MS}.abc",
        ),
    ],
)
def test_meta_fbc_uses_event_time_in_milliseconds(timestamp: datetime, expected: str) -> None:
    assert meta_fbc("abc", timestamp) == expected


# --- page ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        pytest.param(
            make_message(
                context=page_context(
                    "https://x.example/shoes?utm_source=a",
                    path="/shoes",
                    referrer="https://google.com/",
                )
            ),
            ("https://x.example/shoes?utm_source=a", "/shoes", "https://google.com/"),
            id="context-page",
        ),
        pytest.param(
            make_message(context=page_context("https://x.example/a/b?q=1")),
            ("https://x.example/a/b?q=1", "/a/b", None),
            id="path-from-url",
        ),
        pytest.param(
            make_message(context=page_context("https://x.example")),
            ("https://x.example", None, None),
            id="url-without-path",
        ),
        pytest.param(
            make_message(
                "page",
                properties={
                    "url": "https://x.example/p",
                    "path": "/p",
                    "referrer": "https://ref.example/",
                },
            ),
            ("https://x.example/p", "/p", "https://ref.example/"),
            id="page-call-properties",
        ),
        pytest.param(
            make_message(
                "page",
                context=page_context("https://x.example/ctx"),
                properties={"url": "https://x.example/props"},
            ),
            ("https://x.example/ctx", "/ctx", None),
            id="context-page-wins",
        ),
        pytest.param(make_message(), (None, None, None), id="no-page"),
    ],
)
def test_page_fields(message: Message, expected: tuple[str | None, ...]) -> None:
    enrichment = enrich(message)
    assert (enrichment.page_url, enrichment.page_path, enrichment.referrer) == expected


# --- user agent ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [
        pytest.param(CHROME_WINDOWS, ("Chrome", "124.0", "Windows", "10", "desktop"), id="chrome"),
        pytest.param(SAFARI_MAC, ("Safari", "17.4", "Mac OS X", "10.15", "desktop"), id="safari"),
        pytest.param(FIREFOX_LINUX, ("Firefox", "125.0", "Linux", None, "desktop"), id="firefox"),
        pytest.param(
            IPHONE_SAFARI, ("Mobile Safari", "17.4", "iOS", "17.4", "mobile"), id="iphone"
        ),
        pytest.param(IPAD_SAFARI, ("Mobile Safari", "16.6", "iOS", "16.6", "tablet"), id="ipad"),
        pytest.param(
            ANDROID_PHONE, ("Chrome Mobile", "124.0", "Android", "14", "mobile"), id="android"
        ),
        pytest.param(
            ANDROID_TABLET,
            ("Samsung Internet", "24.0", "Android", "12", "tablet"),
            id="android-tablet",
        ),
        pytest.param(
            FIREFOX_ANDROID_TABLET,
            ("Firefox Mobile", "125.0", "Android", "13", "tablet"),
            id="firefox-android-tablet",
        ),
        pytest.param(GOOGLEBOT, ("Googlebot", "2.1", None, None, "bot"), id="googlebot"),
        pytest.param(
            GOOGLEBOT_SMARTPHONE,
            ("Googlebot", "2.1", "Android", "6.0", "bot"),
            id="googlebot-smartphone",
        ),
        pytest.param(CURL, ("curl", "8.4", None, None, "other"), id="curl"),
        pytest.param("???", (None, None, None, None, "other"), id="unparseable"),
    ],
)
def test_user_agent(user_agent: str, expected: tuple[str | None, ...]) -> None:
    enrichment = enrich(make_message(context={"userAgent": user_agent}))
    assert enrichment.user_agent == user_agent
    assert (
        enrichment.browser,
        enrichment.browser_version,
        enrichment.os,
        enrichment.os_version,
        enrichment.device_type,
    ) == expected


@pytest.mark.parametrize("user_agent", ["", "   ", None, 12])
def test_empty_user_agent_gives_no_device_fields(user_agent: Any) -> None:
    enrichment = enrich(make_message(context={"userAgent": user_agent}))
    assert (
        enrichment.user_agent,
        enrichment.browser,
        enrichment.browser_version,
        enrichment.os,
        enrichment.os_version,
        enrichment.device_type,
    ) == (None, None, None, None, None, None)


def test_user_agent_parse_is_cached() -> None:
    assert parse_device(CHROME_WINDOWS) is parse_device(CHROME_WINDOWS)


# --- locale and time zone ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "locale", "language"),
    [
        ("en-US", "en-US", "en"),
        ("fr_FR", "fr-FR", "fr"),
        ("EN-us", "en-US", "en"),
        ("de", "de", "de"),
        ("fil-PH", "fil-PH", "fil"),
        ("zh-hant-tw", "zh-Hant-TW", "zh"),
        ("sr_Latn", "sr-Latn", "sr"),
        ("es-419", "es-419", "es"),
        ("en_US.UTF-8", "en-US", "en"),
        ("de_DE@euro", "de-DE", "de"),
        (" pt-BR ", "pt-BR", "pt"),
        # Malformed: kept as given, no language.
        ("english", "english", None),
        ("C", "C", None),
        ("e", "e", None),
        ("en-", "en-", None),
        ("12-34", "12-34", None),
    ],
)
def test_locale(given: str, locale: str, language: str | None) -> None:
    assert normalize_locale(given) == (locale, language)
    enrichment = enrich(make_message(context={"locale": given}))
    assert (enrichment.locale, enrichment.language) == (locale, language)


@pytest.mark.parametrize("given", ["", "  ", None, ["en-US"]])
def test_missing_locale(given: Any) -> None:
    enrichment = enrich(make_message(context={"locale": given}))
    assert (enrichment.locale, enrichment.language) == (None, None)


def test_timezone_and_ip_are_copied() -> None:
    context = {"timezone": " Europe/Amsterdam ", "ip": "192.168.0.1"}
    enrichment = enrich(make_message(context=context))
    assert (enrichment.timezone, enrichment.ip) == ("Europe/Amsterdam", "192.168.0.1")


# --- location --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def geo(tmp_path_factory: pytest.TempPathFactory) -> GeoLocator:
    """A locator over a City .mmdb that places 81.2.69.0/24 in London."""
    path = tmp_path_factory.mktemp("geo") / "City.mmdb"
    writer = MMDBWriter(ip_version=4, database_type="GeoIP2-City", languages=["en"])
    record = {
        "country": {"iso_code": "GB", "names": {"en": "United Kingdom"}},
        "subdivisions": [{"iso_code": "ENG", "names": {"en": "England"}}],
        "city": {"names": {"en": "London"}},
    }
    writer.insert_network(IPSet(["81.2.69.0/24"]), record)
    writer.to_db_file(str(path))
    return GeoLocator(path)


LONDON_IP = "81.2.69.142"
ADDRESS = {"street": "1 Main St", "city": "Austin", "state": "TX", "country": "United States"}


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        pytest.param(
            make_message(
                "identify",
                context={
                    "ip": LONDON_IP,
                    "location": {"country": "fr", "region": "Île-de-France", "city": "Paris"},
                    "traits": {"address": ADDRESS},
                },
                traits={"address": ADDRESS},
            ),
            ("FR", "Île-de-France", "Paris"),
            id="context-location-first",
        ),
        pytest.param(
            make_message(
                context={"ip": LONDON_IP, "location": {"city": "Lyon", "latitude": 45.7}},
            ),
            (None, None, "Lyon"),
            id="location-all-from-one-source",
        ),
        pytest.param(
            make_message("identify", context={"ip": LONDON_IP}, traits={"address": ADDRESS}),
            ("US", "TX", "Austin"),
            id="identify-address-trait",
        ),
        pytest.param(
            make_message(
                "identify",
                context={"ip": LONDON_IP, "traits": {"address": {"country": "DE"}}},
                traits={"address": {"country": "Canada", "state": "QC", "city": "Montréal"}},
            ),
            ("CA", "QC", "Montréal"),
            id="identify-traits-before-context-traits",
        ),
        pytest.param(
            make_message(
                "track",
                context={"ip": LONDON_IP, "traits": {"address": {"country": "Deutschland"}}},
            ),
            ("Deutschland", None, None),
            id="context-traits-address-unknown-name-kept",
        ),
        pytest.param(
            make_message("group", context={"ip": LONDON_IP}, traits={"address": {"country": "US"}}),
            ("GB", "England", "London"),
            id="group-traits-are-the-company-not-the-user",
        ),
        pytest.param(
            make_message(
                context={"ip": LONDON_IP, "location": {"country": ""}, "traits": {"address": {}}}
            ),
            ("GB", "England", "London"),
            id="ip-when-nothing-stated",
        ),
        pytest.param(
            make_message(context={"ip": "8.8.8.8"}),
            ("US", None, None),
            id="ip-country-only-outside-city-db",
        ),
        pytest.param(make_message(context={"ip": "10.1.2.3"}), (None, None, None), id="private"),
        pytest.param(make_message(context={"ip": "nonsense"}), (None, None, None), id="invalid"),
        pytest.param(make_message(context={"ip": 12345}), (None, None, None), id="not-a-string"),
        pytest.param(make_message(), (None, None, None), id="nothing"),
    ],
)
def test_location_precedence(
    geo: GeoLocator, message: Message, expected: tuple[str | None, ...]
) -> None:
    enrichment = enrich(message, geo)
    assert (enrichment.country, enrichment.region, enrichment.city) == expected


def test_without_a_locator_the_ip_is_not_located() -> None:
    enrichment = enrich(make_message(context={"ip": LONDON_IP}))
    assert (enrichment.ip, enrichment.country, enrichment.city) == (LONDON_IP, None, None)


def test_ip_country_from_bundled_data_without_city_db() -> None:
    enrichment = enrich(make_message(context={"ip": "193.0.6.139"}), GeoLocator())
    assert (enrichment.country, enrichment.region, enrichment.city) == ("NL", None, None)


# --- everything at once ----------------------------------------------------------------------


def test_browser_page_call_is_fully_enriched(geo: GeoLocator) -> None:
    message = make_message(
        "page",
        context={
            "ip": LONDON_IP,
            "userAgent": IPHONE_SAFARI,
            "locale": "en-GB",
            "timezone": "Europe/London",
            "page": {
                "url": "https://shop.example/sale?utm_source=ig&utm_medium=social&fbclid=F1",
                "path": "/sale",
                "referrer": "https://instagram.com/",
            },
            "cookies": {"_fbp": "fb.1.1.2", "_ga": "GA1.1.3.4"},
        },
    )
    assert enrich(message, geo) == Enrichment(
        utm_source="ig",
        utm_medium="social",
        fbclid="F1",
        fbp="fb.1.1.2",
        fbc=f"fb.1.{TIMESTAMP_MS}.F1",
        ga="GA1.1.3.4",
        page_url="https://shop.example/sale?utm_source=ig&utm_medium=social&fbclid=F1",
        page_path="/sale",
        referrer="https://instagram.com/",
        ip=LONDON_IP,
        user_agent=IPHONE_SAFARI,
        browser="Mobile Safari",
        browser_version="17.4",
        os="iOS",
        os_version="17.4",
        device_type="mobile",
        locale="en-GB",
        language="en",
        country="GB",
        region="England",
        city="London",
        timezone="Europe/London",
    )


def test_every_enrichment_field_is_covered_by_this_module() -> None:
    # A new column in Enrichment must get a rule here (and a test above).
    assert set(ENRICHMENT_FIELDS) == {
        *("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"),
        *("gclid", "fbclid", "ttclid", "li_fat_id", "msclkid", "wbraid", "gbraid"),
        *("fbp", "fbc", "ga", "page_url", "page_path", "referrer", "ip", "user_agent"),
        *("browser", "browser_version", "os", "os_version", "device_type"),
        *("locale", "language", "country", "region", "city", "timezone"),
    }


# --- whatever the context holds ----------------------------------------------------------------

# Text with what URL parsers and query splitters trip on: brackets, percent signs, separators.
_AWKWARD_TEXT = st.text(alphabet=st.sampled_from("ab:/?#&=%[]@ .+\x00é"), max_size=30)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _AWKWARD_TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_AWKWARD_TEXT, children),
    max_leaves=8,
)
_URLISH = st.builds(
    "".join,
    st.lists(
        st.sampled_from(
            [
                "https://",
                "shop.example",
                "]",
                "[",
                "/",
                "?",
                "utm_source=x",
                "&",
                "#",
                "%zz",
                "::1",
                "gclid=g",
            ]
        ),
        max_size=8,
    ),
)
_FIELD = st.one_of(_URLISH, _JSON)
_CONTEXT = st.fixed_dictionaries(
    {},
    optional={
        "page": st.fixed_dictionaries(
            {}, optional={k: _FIELD for k in ("url", "search", "path", "referrer")}
        )
        | _JSON,
        "campaign": st.dictionaries(st.sampled_from(["source", "name", "medium"]), _FIELD) | _JSON,
        "cookies": st.dictionaries(st.sampled_from(["_fbp", "_fbc", "_ga"]), _FIELD) | _JSON,
        **{k: _FIELD for k in ("userAgent", "locale", "ip", "timezone", "fbc", "ga")},
        "location": st.dictionaries(st.sampled_from(["country", "region", "city"]), _FIELD) | _JSON,
        "traits": _JSON,
    },
)


@settings(max_examples=300, deadline=None)
@given(
    context=_CONTEXT,
    kind=st.sampled_from(["track", "page", "identify"]),
    properties=st.dictionaries(st.sampled_from(["url", "search", "path"]), _FIELD),
)
def test_enrichment_never_fails_and_both_ways_agree(
    context: dict[str, Any], kind: str, properties: dict[str, Any]
) -> None:
    # Enrichment runs after the API answered 200: raising there would lose the message.
    message = make_message(kind, context=context, properties=properties)
    one = Enricher().enrich(message)
    (row,) = Enricher().enrich_rows([message])
    assert tuple(getattr(one, name) for name in ENRICHMENT_FIELDS) == row


def test_a_page_url_urlsplit_refuses_keeps_its_query() -> None:
    url = "https://shop.example.com]/sale?utm_source=news&gclid=G1#top"
    enrichment = enrich(make_message(context=page_context(url)))
    assert (enrichment.page_url, enrichment.page_path) == (url, None)
    assert (enrichment.utm_source, enrichment.gclid) == ("news", "G1")
