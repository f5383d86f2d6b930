"""Destinations, links and sync logs in the catalog, on SQLite and PostgreSQL (issue 5
points 2, 4, 6, 7, 9)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from cryptography.fernet import Fernet

from segmint.catalog import open_catalog
from segmint.catalog.db import Catalog
from segmint.catalog.models import Audience
from segmint.errors import Conflict, InvalidInput, NotFound
from segmint.sync import catalog as sync_catalog
from segmint.sync.catalog import (
    InstantSyncTooSoon,
    SyncOutcome,
    check_instant_sync,
    claim_instant_sync,
    configure_destination,
    create_destination,
    default_identifier_mapping,
    destination_credentials,
    disable_destination,
    failure_outcome,
    finish_sync_log,
    get_destination,
    get_link,
    instant_sync_wait,
    link_audience,
    list_destinations,
    list_links,
    list_sync_logs,
    mark_auth_expired,
    reauthenticate_destination,
    record_link_deleted,
    start_sync_log,
    unlink_audience,
    update_link,
)
from segmint.sync.errors import AuthExpired
from segmint.sync.secrets import SecretBox

T0 = datetime(2026, 11, 30, 9, 0)
TOKEN = "EAAB-plaintext-token-1234"


@pytest.fixture
def catalog(catalog_url: str) -> Iterator[Catalog]:
    opened = open_catalog(catalog_url)
    yield opened
    opened.dispose()


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(Fernet.generate_key())


def make_audience(catalog: Catalog, name: str = "buyers") -> int:
    with catalog.session() as session:
        row = Audience(name=name, status="active", created_at=T0, created_by="test", updated_at=T0)
        session.add(row)
        session.flush()
        return row.id


def test_credentials_are_encrypted_in_the_database_and_reads_are_redacted(
    catalog: Catalog, box: SecretBox
) -> None:
    info = create_destination(
        catalog, box, "Meta main", "meta", {"access_token": TOKEN}, {"ad_account_id": "act_1"}
    )
    with catalog.engine.connect() as con:
        stored = con.exec_driver_sql("SELECT credentials FROM destinations").scalar_one()
    assert TOKEN.encode() not in bytes(stored)
    assert TOKEN not in repr(info) and TOKEN not in repr(get_destination(catalog, info.id))
    assert get_destination(catalog, "Meta main").credentials == "********"
    assert destination_credentials(catalog, box, "Meta main") == {"access_token": TOKEN}


def test_destination_lifecycle(catalog: Catalog, box: SecretBox) -> None:
    create_destination(catalog, box, "TikTok", "tiktok", {"token": "a"}, now=T0)
    with pytest.raises(Conflict, match="exists"):
        create_destination(catalog, box, "TikTok", "tiktok", {"token": "b"})
    later = T0 + timedelta(hours=1)
    configured = configure_destination(
        catalog, "TikTok", {"advertiser_id": "42", "x": 1}, now=later
    )
    assert configured.config == {"advertiser_id": "42", "x": 1} and configured.updated_at == later
    assert configure_destination(catalog, "TikTok", {"x": None}).config == {"advertiser_id": "42"}

    expired = mark_auth_expired(catalog, "TikTok")
    assert expired.status == "auth_expired"
    assert expired.last_error == (
        "Error Fetching Data: the destination's authentication has expired — "
        "re-authenticate in Destinations → TikTok → Configuration Settings"
    )
    again = reauthenticate_destination(catalog, box, "TikTok", {"token": "new"})
    assert (again.status, again.last_error) == ("active", None)
    assert destination_credentials(catalog, box, "TikTok") == {"token": "new"}
    assert disable_destination(catalog, "TikTok").status == "disabled"
    assert [d.name for d in list_destinations(catalog)] == ["TikTok"]

    create_destination(catalog, box, "Meta", "meta", {"access_token": "m"})
    with pytest.raises(Conflict, match="'Meta' exists"):
        sync_catalog.rename_destination(catalog, "TikTok", " Meta ")
    with pytest.raises(InvalidInput, match="name of 1 to 100"):
        sync_catalog.rename_destination(catalog, "TikTok", "  ")
    renamed = sync_catalog.rename_destination(catalog, "TikTok", " TikTok EU ", now=later)
    assert (renamed.name, renamed.status, renamed.updated_at) == ("TikTok EU", "disabled", later)
    assert destination_credentials(catalog, box, "TikTok EU") == {"token": "new"}
    assert [d.name for d in list_destinations(catalog)] == ["Meta", "TikTok EU"]


@pytest.mark.parametrize(
    ("name", "platform", "words"),
    [("", "meta", "name of 1 to 100"), ("ok", "myspace", "unknown platform")],
)
def test_bad_destinations_are_refused(
    catalog: Catalog, box: SecretBox, name: str, platform: str, words: str
) -> None:
    with pytest.raises(InvalidInput, match=words):
        create_destination(catalog, box, name, platform, {})


def test_unknown_destination_is_not_found(catalog: Catalog) -> None:
    with pytest.raises(NotFound, match="no destination 'nope'"):
        get_destination(catalog, "nope")


@pytest.mark.parametrize(
    ("platform", "identifiers"),
    [
        ("meta", ["email", "phone", "first_name", "last_name"]),
        ("google_ads", ["email", "phone", "crm_id"]),
        ("linkedin", ["email", "first_name", "last_name"]),
        ("tiktok", ["email", "phone"]),
        ("dv360", ["email", "phone", "device_id"]),
        ("klaviyo", ["email", "phone"]),
        ("ga4", ["client_id", "user_id"]),
    ],
)
def test_r18_default_identifier_mappings(platform: str, identifiers: list[str]) -> None:
    assert list(default_identifier_mapping(platform)) == identifiers


@pytest.mark.parametrize("platform", ["webhook", "file"])
def test_webhook_and_file_take_every_identifier(platform: str) -> None:
    assert set(default_identifier_mapping(platform)) == set(sync_catalog.IDENTIFIER_SOURCES) - {
        "client_id"
    }


def test_links_get_default_mode_and_mapping(catalog: Catalog, box: SecretBox) -> None:
    audience = make_audience(catalog)
    create_destination(catalog, box, "Meta", "meta", {"access_token": TOKEN})
    create_destination(catalog, box, "GA4", "ga4", {"api_secret": "s"})
    meta = link_audience(catalog, audience, "Meta", now=T0)
    assert (meta.mode, meta.status, meta.cursor) == ("list", "active", None)
    assert meta.identifier_mapping == {
        "email": "email",
        "phone": "phone",
        "first_name": "traits.first_name",
        "last_name": "traits.last_name",
    }
    ga4 = link_audience(catalog, audience, "GA4")
    assert ga4.mode == "event"
    assert [link.destination_name for link in list_links(catalog, audience_id=audience)] == [
        "Meta",
        "GA4",
    ]
    with pytest.raises(Conflict, match="already linked"):
        link_audience(catalog, audience, "Meta")


def test_link_refuses_modes_and_identifiers_the_platform_does_not_take(
    catalog: Catalog, box: SecretBox
) -> None:
    audience = make_audience(catalog)
    create_destination(catalog, box, "LinkedIn", "linkedin", {"token": "t"})
    with pytest.raises(InvalidInput, match="takes list sync") as mode_error:
        link_audience(catalog, audience, "LinkedIn", mode="event")
    assert mode_error.value.path == "mode"
    with pytest.raises(InvalidInput, match="does not accept the identifier 'phone'"):
        link_audience(catalog, audience, "LinkedIn", identifier_mapping={"phone": "phone"})
    with pytest.raises(NotFound):
        link_audience(catalog, 999, "LinkedIn")
    link = link_audience(catalog, audience, "LinkedIn", identifier_mapping={"email": "email"})
    changed = update_link(
        catalog, link.id, identifier_mapping={"email": "traits.work_email"}, remote_audience_id="7"
    )
    assert changed.identifier_mapping == {"email": "traits.work_email"}
    assert changed.remote_audience_id == "7"


def test_unlink_keeps_the_remote_audience_and_delete_is_recorded(
    catalog: Catalog, box: SecretBox
) -> None:
    audience = make_audience(catalog)
    create_destination(catalog, box, "Meta", "meta", {"access_token": TOKEN})
    first = link_audience(catalog, audience, "Meta")
    update_link(catalog, first.id, remote_audience_id="2385")
    unlinked = unlink_audience(catalog, first.id, now=T0)
    assert (unlinked.status, unlinked.remote_audience_id, unlinked.ended_at) == (
        "unlinked",
        "2385",
        T0,
    )
    assert list_links(catalog, audience_id=audience) == []
    with pytest.raises(Conflict, match="is unlinked"):
        unlink_audience(catalog, first.id)

    second = link_audience(catalog, audience, "Meta")  # relinking is allowed after unlink
    deleted = record_link_deleted(catalog, second.id)
    assert deleted.status == "deleted"
    ended = list_links(catalog, destination="Meta", include_ended=True)
    assert [link.status for link in ended] == ["unlinked", "deleted"]


def test_sync_logs_are_listed_per_audience_newest_first(catalog: Catalog, box: SecretBox) -> None:
    audience, other = make_audience(catalog), make_audience(catalog, "other")
    create_destination(catalog, box, "Meta", "meta", {"access_token": TOKEN})
    link = link_audience(catalog, audience, "Meta")
    link_audience(catalog, other, "Meta")

    ok = start_sync_log(catalog, link.id, "refresh", now=T0)
    finish_sync_log(
        catalog,
        ok,
        SyncOutcome(
            "succeeded", added=10, removed=2, skipped_reasons={"no identifier": 3, "bad email": 1}
        ),
        now=T0 + timedelta(seconds=5),
    )
    failed = start_sync_log(catalog, link.id, "instant", now=T0 + timedelta(hours=1))
    entry = finish_sync_log(catalog, failed, failure_outcome(AuthExpired("Meta"), "Meta"))

    logs = list_sync_logs(catalog, audience)
    assert [log.id for log in logs] == [failed, ok]
    assert (logs[1].added, logs[1].removed, logs[1].skipped) == (10, 2, 4)
    assert logs[1].skipped_reasons == {"bad email": 1, "no identifier": 3}
    assert entry.status == "failed" and entry.error_class == "AuthExpired"
    assert entry.error_message is not None and "Error Fetching Data" in entry.error_message
    assert entry.remedy is not None and "Destinations → Meta → Configuration" in entry.remedy
    assert list_sync_logs(catalog, other) == []


@pytest.mark.parametrize(
    ("elapsed", "left"),
    [
        (timedelta(minutes=18), "12 minutes"),
        (timedelta(minutes=29, seconds=30), "1 minute"),
        (timedelta(seconds=1), "30 minutes"),
    ],
)
def test_tiktok_refuses_instant_sync_within_30_minutes(elapsed: timedelta, left: str) -> None:
    with pytest.raises(InstantSyncTooSoon) as caught:
        check_instant_sync("tiktok", T0, T0 + elapsed)
    assert caught.value.message == (
        f"TikTok allows one Instant Sync every 30 minutes; try again in {left}"
    )
    assert caught.value.retry_after == timedelta(minutes=30) - elapsed


@pytest.mark.parametrize(
    ("platform", "last", "now"),
    [
        ("tiktok", None, T0),
        ("tiktok", T0, T0 + timedelta(minutes=30)),
        ("meta", T0, T0 + timedelta(seconds=1)),
    ],
)
def test_instant_sync_allowed(platform: str, last: datetime | None, now: datetime) -> None:
    assert instant_sync_wait(platform, last, now) is None
    check_instant_sync(platform, last, now)


def test_claiming_instant_syncs_records_the_time(catalog: Catalog, box: SecretBox) -> None:
    audience = make_audience(catalog)
    create_destination(catalog, box, "TikTok", "tiktok", {"token": "t"})
    link = link_audience(catalog, audience, "TikTok")
    claim_instant_sync(catalog, link.id, now=T0)
    with pytest.raises(InstantSyncTooSoon, match="try again in 20 minutes"):
        claim_instant_sync(catalog, link.id, now=T0 + timedelta(minutes=10))
    assert get_link(catalog, link.id).last_instant_sync_at == T0
    later = T0 + timedelta(minutes=31)
    assert claim_instant_sync(catalog, link.id, now=later).last_instant_sync_at == later
