"""The official Segment Python library, pointed at our server with its ``host`` option,
sends events that are stored, enriched and resolved to the right profiles."""

from __future__ import annotations

import orjson
import pytest
from segment.analytics import Client

from tests.conftest import LiveServer

CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)


@pytest.mark.parametrize("gzip", [False, True])
def test_official_client_events_are_stored_enriched_and_resolved(
    live_server: LiveServer, gzip: bool
) -> None:
    errors: list[Exception] = []
    client = Client(
        live_server.write_key,
        host=live_server.url,
        sync_mode=True,
        gzip=gzip,
        max_retries=0,
        on_error=lambda exc, _batch: errors.append(exc),
    )
    laptop = {
        "userAgent": CHROME_MAC,
        "ip": "8.8.8.8",
        "locale": "en-US",
        "page": {
            "url": "https://shop.example/?utm_source=google&utm_medium=cpc"
            "&utm_campaign=spring_sale&gclid=Cj0KCQ"
        },
    }
    phone = {"userAgent": IPHONE, "ip": "8.8.4.4", "locale": "fr-FR"}
    # Anonymous browsing on a laptop, then sign-in there.
    client.page(anonymous_id="laptop-anon", name="Home", context=laptop)
    client.track(
        anonymous_id="laptop-anon",
        event="product_viewed",
        properties={"price": 19.99},
        context=laptop,
    )
    client.identify(
        user_id="user-1",
        anonymous_id="laptop-anon",
        traits={"email": " Ann@Example.COM ", "first_name": "Ann"},
        context=laptop,
    )
    # Later on a phone: anonymous first, then the same person signs in → profiles merge.
    client.track(anonymous_id="phone-anon", event="product_viewed", context=phone)
    client.identify(user_id="user-1", anonymous_id="phone-anon", context=phone)
    client.track(
        user_id="user-1", event="order_completed", properties={"revenue": 120.0}, context=phone
    )
    # A second person, never identified.
    client.track(anonymous_id="stranger", event="product_viewed", context=phone)
    client.flush()
    assert not errors
    live_server.stored()

    rows = live_server.runtime.warehouse.rows(
        "SELECT event, anonymous_id, profile_id, browser, device_type, utm_source, utm_campaign, "
        "gclid, language, country, context FROM events ORDER BY timestamp"
    )
    assert len(rows) == 7
    by_anon = {}
    for _event, anon, profile, *_ in rows:
        by_anon.setdefault(anon, set()).add(profile)
    person = by_anon["laptop-anon"] | by_anon["phone-anon"] | by_anon[None]
    assert len(person) == 1, "every event of user-1 belongs to one profile"
    assert by_anon["stranger"].isdisjoint(person)

    page = rows[0]
    assert page[0] == "page"
    assert page[3] == "Chrome" and page[4] == "desktop"
    assert (page[5], page[6], page[7]) == ("google", "spring_sale", "Cj0KCQ")
    assert page[8] == "en" and page[9] == "US"
    assert orjson.loads(page[10])["library"]["name"] == "analytics-python"
    order = next(r for r in rows if r[0] == "order_completed")
    assert order[4] == "mobile" and order[8] == "fr"

    ((profile_id, _user_id, email, traits, events),) = live_server.runtime.warehouse.rows(
        "SELECT profile_id, user_id, email, traits, event_count FROM profiles "
        "WHERE user_id = 'user-1'"
    )
    assert profile_id in person
    assert email == "ann@example.com"
    assert orjson.loads(traits)["first_name"] == "Ann"
    assert events == 6
    identities = dict(
        live_server.runtime.warehouse.rows(
            "SELECT id_type || ':' || id_value, profile_id FROM identities"
        )
    )
    assert identities["email:ann@example.com"] == profile_id
    assert identities["anonymous_id:phone-anon"] == profile_id
    assert identities["anonymous_id:laptop-anon"] == profile_id
