"""Destinations, links and sync logs in the catalog, on SQLite and PostgreSQL (issue 5
points 2, 4, 6, 7, 9)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from segmint.catalog import open_catalog
from segmint.catalog.db import Catalog
from segmint.catalog.models import Audience
from segmint.errors import Conflict, InvalidInput, NotFound
from segmint.sync import catalog as sync_catalog
from segmint.sync.catalog import (
    DestinationInfo,
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
SETTINGS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "meta": ({"access_token": TOKEN}, {"ad_account_id": "act_1"}),
    "tiktok": ({"access_token": "t"}, {"advertiser_id": "1"}),
    "linkedin": ({"access_token": "t"}, {"ad_account_id": "1"}),
    "ga4": ({"measurement_id": "G-ABCDE12345", "api_secret": "s"}, {}),
}
"""Settings each platform takes, for tests about something else."""


@pytest.fixture
def catalog(catalog_url: str) -> Iterator[Catalog]:
    opened = open_catalog(catalog_url)
    yield opened
    opened.dispose()


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(Fernet.generate_key())


def connect(
    catalog: Catalog, box: SecretBox, name: str, platform: str, **kwargs: Any
) -> DestinationInfo:
    credentials, config = SETTINGS[platform]
    return create_destination(catalog, box, name, platform, credentials, config, **kwargs)


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
    connect(catalog, box, "TikTok", "tiktok", now=T0)
    with pytest.raises(Conflict, match="exists"):
        connect(catalog, box, "TikTok", "tiktok")
    later = T0 + timedelta(hours=1)
    configured = configure_destination(
        catalog, "TikTok", {"advertiser_id": "42", "phone_plus": "false"}, box=box, now=later
    )
    assert configured.config == {"advertiser_id": "42", "phone_plus": False}
    assert configured.updated_at == later
    removed = configure_destination(catalog, "TikTok", {"phone_plus": None})
    assert removed.config == {"advertiser_id": "42"}

    expired = mark_auth_expired(catalog, "TikTok")
    assert expired.status == "auth_expired"
    assert expired.last_error == (
        "Error Fetching Data: the destination's authentication has expired — "
        "re-authenticate in Destinations → TikTok → Configuration Settings"
    )
    again = reauthenticate_destination(catalog, box, "TikTok", {"access_token": "new"})
    assert (again.status, again.last_error) == ("active", None)
    assert destination_credentials(catalog, box, "TikTok") == {"access_token": "new"}
    assert disable_destination(catalog, "TikTok").status == "disabled"
    assert [d.name for d in list_destinations(catalog)] == ["TikTok"]

    connect(catalog, box, "Meta", "meta")
    with pytest.raises(Conflict, match="'Meta' exists"):
        sync_catalog.rename_destination(catalog, "TikTok", " Meta ")
    with pytest.raises(InvalidInput, match="name of 1 to 100"):
        sync_catalog.rename_destination(catalog, "TikTok", "  ")
    renamed = sync_catalog.rename_destination(catalog, "TikTok", " TikTok EU ", now=later)
    assert (renamed.name, renamed.status, renamed.updated_at) == ("TikTok EU", "disabled", later)
    assert destination_credentials(catalog, box, "TikTok EU") == {"access_token": "new"}
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
    connect(catalog, box, "Meta", "meta")
    connect(catalog, box, "GA4", "ga4")
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
    connect(catalog, box, "LinkedIn", "linkedin")
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
    connect(catalog, box, "Meta", "meta")
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
    connect(catalog, box, "Meta", "meta")
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
    connect(catalog, box, "TikTok", "tiktok")
    link = link_audience(catalog, audience, "TikTok")
    claim_instant_sync(catalog, link.id, now=T0)
    with pytest.raises(InstantSyncTooSoon, match="try again in 20 minutes"):
        claim_instant_sync(catalog, link.id, now=T0 + timedelta(minutes=10))
    assert get_link(catalog, link.id).last_instant_sync_at == T0
    later = T0 + timedelta(minutes=31)
    assert claim_instant_sync(catalog, link.id, now=later).last_instant_sync_at == later


URL = "https://hooks.example.com/segmint"
WEBHOOK = {"signing_secret": "s" * 16}
META = {"access_token": "t"}
ADS = {"access_token": "t", "developer_token": "d"}
GA4 = {"measurement_id": "G-1", "api_secret": "s"}
TMP = "{tmp}"


@pytest.mark.parametrize(
    ("platform", "credentials", "config", "path", "words"),
    [
        ("webhook", {}, {}, "config.url", "Webhook needs config.url (the receiver's"),
        ("webhook", {}, {"url": URL}, "credentials.signing_secret", "at least 16"),
        ("webhook", {"signing_secret": "s"}, {"url": URL}, "credentials.signing_secret", "short"),
        ("webhook", WEBHOOK, {"url": "ftp://x"}, "config.url", "must start with https://"),
        ("webhook", WEBHOOK, {"url": URL, "max_per_request": "lots"}, "config.max_per_request",
         'must be a whole number of at least 1, e.g. 100, not "lots"'),
        ("file", {}, {"directory": "/proc/nope/x"}, "config.directory", "cannot write to"),
        ("file", {}, {"directory": TMP, "format": "xml"}, "config.format", "csv or parquet"),
        ("file", {}, {"directory": TMP, "formt": "csv"}, "config.formt", "no setting 'formt'"),
        ("file", {"key": "k"}, {"directory": TMP}, "credentials.key", "takes no credentials"),
        ("meta", {}, {"ad_account_id": "1", "access_token": "t"}, "config.access_token",
         "put it in credentials"),
        ("meta", {**META, "ad_account_id": "1"}, {}, "credentials.ad_account_id", "in config"),
        ("meta", META, {"ad_account_id": {"x": 1}}, "config.ad_account_id", "must be text"),
        ("meta", META, {"ad_account_id": " "}, "config.ad_account_id", "is empty: give a value"),
        ("meta", {"access_token": 7}, {"ad_account_id": "1"}, "credentials.access_token", "text"),
        ("klaviyo", {"api_key": "k"}, {"client": "x"}, "config.client", "no setting 'client'"),
        ("tiktok", META, {"advertiser_id": "1", "phone_plus": "maybe"}, "config.phone_plus",
         "true or false"),
        ("google_ads", ADS, {"customer_id": "1", "upload_key_type": "EMAIL"},
         "config.upload_key_type", "one of CONTACT_INFO, CRM_ID"),
        ("google_ads", ADS, {"customer_id": "1", "consent": "[1]"}, "config.consent", "JSON"),
        ("dv360", META, {"advertiser_id": "1", "app_id": 5}, "config.app_id", "must be text"),
        # The adapter's own rules name the setting in words.
        ("dv360", META, {"advertiser_id": "1", "audience_type": "x"}, "config",
         "audience_type must be"),
        ("ga4", GA4, {"region": "us"}, "config", "GA4 region 'us' is not known: use global"),
    ],
)  # fmt: skip
def test_wrong_settings_are_named_before_anything_is_saved(
    catalog: Catalog,
    box: SecretBox,
    tmp_path: Path,
    platform: str,
    credentials: dict[str, Any],
    config: dict[str, Any],
    path: str,
    words: str,
) -> None:
    config = {key: str(tmp_path) if value == TMP else value for key, value in config.items()}
    with pytest.raises(InvalidInput, match=re.escape(words)) as caught:
        create_destination(catalog, box, "Shop", platform, credentials, config)
    assert caught.value.path == path
    assert "__init__" not in caught.value.message and "argument" not in caught.value.message
    assert list_destinations(catalog) == []


def test_settings_are_saved_typed(catalog: Catalog, box: SecretBox) -> None:
    """Text from the CLI (``--config max_per_request=250``) is read as each setting's kind."""
    hook = create_destination(
        catalog, box, "Hook", "webhook", WEBHOOK, {"url": URL, "max_per_request": "250"}
    )
    assert hook.config == {"url": URL, "max_per_request": 250}
    ads = create_destination(
        catalog,
        box,
        "Ads",
        "google_ads",
        ADS,
        {"customer_id": "1", "consent": '{"adUserData": "GRANTED"}', "login_customer_id": None},
    )
    assert ads.config == {"customer_id": "1", "consent": {"adUserData": "GRANTED"}}


def test_changed_settings_are_checked_and_a_refused_change_leaves_them(
    catalog: Catalog, box: SecretBox, tmp_path: Path
) -> None:
    exports = create_destination(catalog, box, "Exports", "file", {}, {"directory": str(tmp_path)})
    for change, path in [
        ({"format": "xml"}, "config.format"),
        ({"directory": None}, "config.directory"),
        ({"directory": "/proc/nope/x"}, "config.directory"),
        ({"access_token": "t"}, "config.access_token"),
    ]:
        with pytest.raises(InvalidInput) as caught:
            configure_destination(catalog, exports.id, change, box=box)
        assert caught.value.path == path
        assert get_destination(catalog, exports.id).config == {"directory": str(tmp_path)}
    moved = configure_destination(
        catalog, exports.id, {"directory": str(tmp_path / "new"), "format": "parquet"}, box=box
    )
    assert moved.config == {"directory": str(tmp_path / "new"), "format": "parquet"}
    assert (tmp_path / "new").is_dir()  # probed
    # Without the credentials' box: names, types and required keys of the config only.
    with pytest.raises(InvalidInput, match=r"config\.max_rows_per_file must be a whole number"):
        configure_destination(catalog, exports.id, {"max_rows_per_file": "many"})


def test_new_credentials_are_checked_with_the_stored_config(
    catalog: Catalog, box: SecretBox
) -> None:
    connect(catalog, box, "Meta", "meta")
    with pytest.raises(InvalidInput, match="has no setting 'token'") as caught:
        reauthenticate_destination(catalog, box, "Meta", {"token": "new"})
    assert caught.value.path == "credentials.token"
    with pytest.raises(InvalidInput, match=r"needs credentials\.access_token"):
        reauthenticate_destination(catalog, box, "Meta", {})
    assert destination_credentials(catalog, box, "Meta") == {"access_token": TOKEN}


@pytest.mark.parametrize("name", ["123", " 42 ", "0"])
def test_a_name_of_digits_only_is_refused_as_it_would_read_as_an_id(
    catalog: Catalog, box: SecretBox, name: str
) -> None:
    with pytest.raises(InvalidInput, match="cannot be only digits") as caught:
        connect(catalog, box, name, "meta")
    assert caught.value.path == "name"
    connect(catalog, box, "Shop 1", "meta")
    with pytest.raises(InvalidInput, match="cannot be only digits"):
        sync_catalog.rename_destination(catalog, "Shop 1", name)
    assert [d.name for d in list_destinations(catalog)] == ["Shop 1"]


@pytest.mark.parametrize(
    ("typed", "ref"),
    [("12", 12), ("Shop 1", "Shop 1"), ("²", "²"), ("١٢", "١٢"), (7, 7)],
)
def test_a_reference_of_ascii_digits_is_an_id_and_anything_else_a_name(
    typed: str | int, ref: str | int
) -> None:
    assert sync_catalog.destination_ref(typed) == ref
