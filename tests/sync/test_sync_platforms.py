"""The sync runner end to end for every platform other than Meta (test_runner.py covers Meta):
a real refresh feeds the outbox, :func:`sync_link` sends the changes through the platform's
adapter to its fake server over real HTTP (or to files), and the remote list ends up equal to
the audience — after leavers and returners, under random failures and dropped connections, and
across an expired login (issue 5 points 5–7, R16, R21, R23).

Each platform and sync mode is described by a small :class:`Harness`: how to start its fake,
the credentials and settings of its destination, how to read the remote members as a set of
comparable keys, and how to make it fail.
"""

from __future__ import annotations

import errno
import random
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from segmint.destinations import file_export
from segmint.destinations.ga4 import client_id_from_cookie
from segmint.runtime import Runtime
from segmint.sync import catalog as sync_catalog
from segmint.sync.errors import BadRequest, auth_expired_message
from segmint.sync.retry import RetryPolicy
from segmint.sync.runner import SyncContext, check_destination, delete_link, sync_link
from tests.destinations import (
    fake_dv360,
    fake_ga4,
    fake_google_ads,
    fake_klaviyo,
    fake_linkedin,
    fake_tiktok,
    fake_webhook,
)
from tests.sync.sync_world import activate, email_of, members, refresh, seed_profiles, set_tier, sha

FAST = RetryPolicy(attempts=60, initial=0.001, maximum=0.005, jitter=0.0)
FLAKY = RetryPolicy(attempts=2, initial=0.001, maximum=0.002, jitter=0.0)


def only(items: dict[str, Any]) -> Any | None:
    """The one remote audience a fake holds (``None`` before the first sync made it)."""
    assert len(items) <= 1, f"expected at most one remote audience, found {list(items)}"
    return next(iter(items.values()), None)


def with_email(runtime: Runtime) -> set[int]:
    return {
        int(row[0])
        for row in runtime.warehouse.rows("SELECT profile_id FROM profiles WHERE email IS NOT NULL")
    }


class Harness:
    """One platform in one sync mode, with its fake."""

    platform = ""
    mode = "list"
    count = 25_000
    chaos_count = 5_000
    chaos_rates = (0.5, 0.2)
    """Share of requests failing (500 / 429) and of connections dropped after the change."""
    tokens = True
    """Whether the platform has a login that can expire (R21)."""
    fake: Any = None
    url = ""
    """The fake's base URL (File export: the export directory)."""
    tmp_path: Path
    monkeypatch: pytest.MonkeyPatch

    @property
    def name(self) -> str:
        return f"Shop {self.platform} {self.mode}"

    def serve(self) -> AbstractContextManager[str]:
        raise NotImplementedError

    @contextmanager
    def running(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        self.tmp_path, self.monkeypatch = tmp_path, monkeypatch
        with self.serve() as url:
            self.url = url
            yield

    def credentials(self) -> dict[str, Any]:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        return {"base_url": self.url}

    def remote(self, runtime: Runtime, audience_id: int) -> set[str]:
        """The members the platform holds, as comparable keys."""
        raise NotImplementedError

    def expected(self, runtime: Runtime, audience_id: int) -> set[str]:
        """The keys :meth:`remote` must equal: hashed emails of the members that have one."""
        return {sha(email_of(pid)) for pid in members(runtime, audience_id) & with_email(runtime)}

    def gone(self) -> bool:
        """Whether the remote audience was deleted (R22 Delete)."""
        raise NotImplementedError

    def chaos(self, rate: float, drop: float) -> None:
        self.fake.failure_rate, self.fake.drop_rate = rate, drop

    def failures(self) -> int:
        return int(self.fake.failures)

    def expire(self) -> None:
        """The login dies after the first call that writes members."""
        self.fake.expire_after_calls = 1

    def context(self, runtime: Runtime, retry: RetryPolicy) -> SyncContext:
        """The runner's context with ``retry`` for the adapter."""
        return SyncContext.of(runtime, retry=retry)

    def reauthenticate(self) -> dict[str, Any]:
        """The user logs in again on the platform; returns the new credentials."""
        self.fake.reauthenticate("fresh-token")
        return {**self.credentials(), "access_token": "fresh-token"}


class GoogleAds(Harness):
    platform = "google_ads"

    def serve(self) -> AbstractContextManager[str]:
        self.fake = fake_google_ads.FakeGoogleAds()
        return fake_google_ads.serve(self.fake)

    def credentials(self) -> dict[str, Any]:
        return {"access_token": self.fake.token, "developer_token": self.fake.developer_token}

    def config(self) -> dict[str, Any]:
        return {"customer_id": self.fake.customer_id, "base_url": self.url}

    def gone(self) -> bool:
        return self.fake.user_lists == {}

    def remote(self, runtime: Runtime, audience_id: int) -> set[str]:
        user_list = only(self.fake.user_lists)
        return set() if user_list is None else set(user_list.values("hashedEmail"))


class LinkedIn(Harness):
    platform = "linkedin"

    def serve(self) -> AbstractContextManager[str]:
        self.fake = fake_linkedin.FakeLinkedIn()
        return fake_linkedin.serve(self.fake)

    def credentials(self) -> dict[str, Any]:
        return {"access_token": self.fake.token}

    def config(self) -> dict[str, Any]:
        # settle_seconds is a constructor keyword the runner passes through from the config.
        return {"ad_account_id": self.fake.ad_account_id, "base_url": self.url, "settle_seconds": 0}

    def gone(self) -> bool:
        return self.fake.segments == {}

    def remote(self, runtime: Runtime, audience_id: int) -> set[str]:
        segment = only(self.fake.segments)
        return set() if segment is None else set(segment.members)


class TikTok(Harness):
    platform = "tiktok"

    def serve(self) -> AbstractContextManager[str]:
        self.fake = fake_tiktok.FakeTikTok()
        return fake_tiktok.serve(self.fake)

    def credentials(self) -> dict[str, Any]:
        return {"access_token": self.fake.token}

    def config(self) -> dict[str, Any]:
        return {"advertiser_id": self.fake.advertiser_id, "base_url": self.url}

    def gone(self) -> bool:
        return self.fake.audiences == {}

    def remote(self, runtime: Runtime, audience_id: int) -> set[str]:
        audience = only(self.fake.audiences)
        return set() if audience is None else set(audience.values("EMAIL_SHA256"))


class DV360(Harness):
    platform = "dv360"

    def serve(self) -> AbstractContextManager[str]:
        self.fake = fake_dv360.FakeDV360()
        return fake_dv360.serve(self.fake)

    def credentials(self) -> dict[str, Any]:
        return {"access_token": self.fake.token}

    def config(self) -> dict[str, Any]:
        return {"advertiser_id": self.fake.advertiser_id, "base_url": self.url}

    def gone(self) -> bool:
        return self.fake.audiences == {}

    def remote(self, runtime: Runtime, audience_id: int) -> set[str]:
        audience = only(self.fake.audiences)
        return set() if audience is None else set(audience.values("hashedEmails"))

    def chaos(self, rate: float, drop: float) -> None:
        self.fake.error_rate, self.fake.drop_rate = rate, drop


class Klaviyo(Harness):
    platform = "klaviyo"

    def serve(self) -> AbstractContextManager[str]:
        self.fake = fake_klaviyo.FakeKlaviyo()
        return fake_klaviyo.serve(self.fake)

    def credentials(self) -> dict[str, Any]:
        return {"api_key": self.fake.api_key}

    def config(self) -> dict[str, Any]:
        return {"base_url": self.url, "poll_seconds": 0}

    def gone(self) -> bool:
        return self.fake.lists == {}

    def remote(self, runtime: Runtime, audience_id: int) -> set[str]:
        klist = only(self.fake.lists)
        return set() if klist is None else self.fake.emails(klist.id)

    def expected(self, runtime: Runtime, audience_id: int) -> set[str]:
        return {email_of(pid) for pid in members(runtime, audience_id) & with_email(runtime)}

    def chaos(self, rate: float, drop: float) -> None:
        self.fake.error_rate, self.fake.drop_rate = rate, drop

    def reauthenticate(self) -> dict[str, Any]:
        self.fake.reauthenticate("pk_fresh0123456789abcdef")
        return {"api_key": "pk_fresh0123456789abcdef"}


class RotatingReceiver(fake_webhook.FakeReceiver):
    """The docs' receiver, whose secret is rotated after ``expire_after_calls`` deliveries
    (the webhook's equivalent of an expired login: every later signature is refused)."""

    expire_after_calls: int | None = None

    def handle(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if self.expire_after_calls is not None and self.requests >= self.expire_after_calls:
            self.secret = "whsec-rotated-on-the-receiver"
        return super().handle(body, headers)

    def reauthenticate(self, new_secret: str) -> None:
        self.secret, self.expire_after_calls = new_secret, None


class Webhook(Harness):
    platform = "webhook"

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def serve(self) -> AbstractContextManager[str]:
        self.fake = RotatingReceiver()
        return fake_webhook.serve(self.fake)

    def credentials(self) -> dict[str, Any]:
        return {"signing_secret": self.fake.secret}

    def config(self) -> dict[str, Any]:
        return {"url": self.url, "max_per_request": 500}

    def gone(self) -> bool:
        # The receiver was told (list links send the audience's name as its id).
        return self.fake.deleted != [] and self.fake.audiences == {}

    def remote(self, runtime: Runtime, audience_id: int) -> set[str]:
        if self.mode == "event":
            return {str(pid) for pid in self.fake.event_members.get(audience_id, set())}
        return self.fake.members("gold_members")

    def expected(self, runtime: Runtime, audience_id: int) -> set[str]:
        # Every profile has an anonymous id, which webhooks accept: no one is anonymous here.
        return {str(pid) for pid in members(runtime, audience_id)}

    def reauthenticate(self) -> dict[str, Any]:
        self.fake.reauthenticate("whsec-fresh-0123456789")
        return {"signing_secret": "whsec-fresh-0123456789"}


class FileExport(Harness):
    """Files in a temporary directory. There is no server: the chaos is a disk that is full
    at random (ENOSPC, a transient error), and there is no login to expire."""

    platform = "file"
    tokens = False
    chaos_rates = (0.5, 0.0)  # few files per sync: half of the writes find the disk full

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.rate = 0.0
        self.disk_failures = 0
        self._random = random.Random(3)

    @contextmanager
    def serve(self) -> Iterator[str]:
        write = file_export._write_csv

        def flaky_write(path: Path, columns: Any, rows: Any) -> None:
            if self.rate and self._random.random() < self.rate:
                self.disk_failures += 1
                raise OSError(errno.ENOSPC, "No space left on device")
            write(path, columns, rows)

        self.monkeypatch.setattr(file_export, "_write_csv", flaky_write)
        yield str(self.tmp_path / "exports")

    def credentials(self) -> dict[str, Any]:
        return {}

    def config(self) -> dict[str, Any]:
        return {"directory": self.url}

    def gone(self) -> bool:
        return not (Path(self.url) / "gold_members").exists()

    def remote(self, runtime: Runtime, audience_id: int) -> set[str]:
        return set(file_export.read_membership(self.url, "gold_members"))

    def expected(self, runtime: Runtime, audience_id: int) -> set[str]:
        return {str(pid) for pid in members(runtime, audience_id)}

    def chaos(self, rate: float, drop: float) -> None:
        self.rate = rate

    def failures(self) -> int:
        return self.disk_failures

    def context(self, runtime: Runtime, retry: RetryPolicy) -> SyncContext:
        # The file adapter does not retry and takes no ``retry`` keyword; the runner passes
        # one only to adapters that take it (test_file_export_..._with_a_retry_policy).
        return SyncContext.of(runtime, retry=retry)


class GA4(Harness):
    """GA4 takes one request per visitor (one client id per Measurement Protocol hit), so a
    25,000-member audience would mean 25,000+ requests per sync: 2,000 members prove the same
    paths in a few seconds. Its API secret cannot expire visibly (a wrong one is accepted and
    the hits dropped), so there is no expired-login case."""

    platform = "ga4"
    mode = "event"
    count = 2_000
    chaos_count = 400
    chaos_rates = (0.2, 0.1)  # one request per visitor: lower rates still fail most syncs
    tokens = False

    def serve(self) -> AbstractContextManager[str]:
        self.fake = fake_ga4.FakeGA4()
        return fake_ga4.serve(self.fake)

    def credentials(self) -> dict[str, Any]:
        return {"measurement_id": self.fake.measurement_id, "api_secret": self.fake.api_secret}

    def remote(self, runtime: Runtime, audience_id: int) -> set[str]:
        assert self.fake.invalid_hits == []  # GA4 would have dropped nothing
        return set(self.fake.members.get(str(audience_id), set()))

    def expected(self, runtime: Runtime, audience_id: int) -> set[str]:
        # seed_profiles gives every profile a _ga cookie GA1.1.<id>.1700000000.
        ids = {
            client_id_from_cookie(f"GA1.1.{pid}.1700000000")
            for pid in members(runtime, audience_id)
        }
        return {client for client in ids if client is not None}


HARNESSES: dict[str, Callable[[], Harness]] = {
    "google_ads": GoogleAds,
    "linkedin": LinkedIn,
    "tiktok": TikTok,
    "dv360": DV360,
    "klaviyo": Klaviyo,
    "webhook_list": lambda: Webhook("list"),
    "webhook_event": lambda: Webhook("event"),
    "file_list": lambda: FileExport("list"),
    "file_event": lambda: FileExport("event"),
    "ga4": GA4,
}


@pytest.fixture(params=list(HARNESSES))
def harness(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Harness]:
    made = HARNESSES[request.param]()
    with made.running(tmp_path, monkeypatch):
        yield made


@pytest.fixture
def ctx(runtime: Runtime, harness: Harness) -> SyncContext:
    return harness.context(runtime, FAST)


def connect(runtime: Runtime, harness: Harness, audience_id: int) -> tuple[int, int]:
    """Create the harness's destination and link the audience; returns (destination, link)."""
    info = sync_catalog.create_destination(
        runtime.catalog,
        runtime.secrets,
        harness.name,
        harness.platform,
        harness.credentials(),
        harness.config(),
    )
    link = sync_catalog.link_audience(runtime.catalog, audience_id, info.id, mode=harness.mode)
    assert link.mode == harness.mode
    return info.id, link.id


def assert_exact(runtime: Runtime, harness: Harness, audience_id: int) -> set[str]:
    expected = harness.expected(runtime, audience_id)
    remote = harness.remote(runtime, audience_id)
    assert remote == expected, (
        f"{len(remote - expected)} extra, {len(expected - remote)} missing on {harness.platform}"
    )
    return expected


@pytest.mark.slow  # 25,000 members: 3–7 s per platform on this machine
def test_sync_sends_everyone_then_leavers_and_returners_exactly(
    runtime: Runtime, ctx: SyncContext, harness: Harness
) -> None:
    count = harness.count
    seed_profiles(runtime, count, anonymous_every=50)
    audience_id = activate(runtime)
    _, link = connect(runtime, harness, audience_id)

    first = sync_link(ctx, link)
    assert first.status == "succeeded", first.error_message
    sent = assert_exact(runtime, harness, audience_id)
    assert first.added == len(sent) and first.removed == 0
    if len(sent) < count:  # platforms matching on email skip the anonymous (R16)
        assert len(sent) == count - count // 50
        assert first.skipped_reasons == {
            "anonymous (no identifier the platform accepts)": count // 50
        }

    skips = len(sent) < count

    def sendable(ids: range) -> int:
        return sum(1 for pid in ids if not (skips and pid % 50 == 0))

    leave, back = count * 4 // 25, count // 25  # 4,000 and 1,000 of 25,000
    set_tier(runtime, range(1, leave + 1), "silver")
    refresh(runtime, audience_id, hours=2)
    second = sync_link(ctx, link)
    assert second.status == "succeeded", second.error_message
    assert (second.added, second.removed) == (0, sendable(range(1, leave + 1)))
    assert len(assert_exact(runtime, harness, audience_id)) < len(sent)

    set_tier(runtime, range(1, back + 1), "gold")  # some come back ...
    set_tier(runtime, range(count - 2 * back + 1, count + 1), "silver")  # ... others leave
    refresh(runtime, audience_id, hours=3)
    third = sync_link(ctx, link)
    assert third.status == "succeeded", third.error_message
    assert third.added == sendable(range(1, back + 1))
    assert third.removed == sendable(range(count - 2 * back + 1, count + 1))
    assert_exact(runtime, harness, audience_id)
    assert members(runtime, audience_id) == set(range(1, back + 1)) | set(
        range(leave + 1, count - 2 * back + 1)
    )


def test_nothing_is_lost_under_failures_and_dropped_connections(
    runtime: Runtime, ctx: SyncContext, harness: Harness
) -> None:
    count = harness.chaos_count
    seed_profiles(runtime, count, anonymous_every=50)
    audience_id = activate(runtime)
    _, link = connect(runtime, harness, audience_id)
    flaky = harness.context(runtime, FLAKY)
    harness.chaos(*harness.chaos_rates)
    statuses = []
    tenth = count // 10
    steps = (
        (0, (), ()),  # the first full sync, under chaos
        (2, range(1, 2 * tenth + 1), ()),
        (4, range(2 * tenth + 1, 3 * tenth + 1), range(1, tenth // 2 + 1)),
    )
    for hour, leavers, returners in steps:
        if hour:
            set_tier(runtime, leavers, "silver")
            set_tier(runtime, returners, "gold")
            refresh(runtime, audience_id, hours=hour)
        for _ in range(3):  # keep syncing; a failed sync leaves the changes pending
            entry = sync_link(flaky, link)
            statuses.append(entry.status)
            assert entry.status in ("succeeded", "failed"), entry.error_message
            if entry.status == "succeeded":
                break
    assert harness.failures() > 0 and "failed" in statuses  # the chaos did bite
    harness.chaos(0.0, 0.0)
    final = sync_link(ctx, link)
    assert final.status == "succeeded", final.error_message
    assert_exact(runtime, harness, audience_id)
    assert len(members(runtime, audience_id)) == count - 3 * tenth + tenth // 2


def token_harnesses() -> list[str]:
    return [name for name, make in HARNESSES.items() if make().tokens]


@pytest.mark.parametrize("harness", token_harnesses(), indirect=True)
def test_expired_login_mid_sync_then_reauthentication_completes_the_list(
    runtime: Runtime, ctx: SyncContext, harness: Harness
) -> None:
    # More members than the largest batch (10,000), so the login dies between two batches.
    seed_profiles(runtime, 12_000, anonymous_every=50)
    audience_id = activate(runtime)
    destination, link = connect(runtime, harness, audience_id)
    harness.expire()

    failed = sync_link(ctx, link)
    assert failed.status == "failed"
    assert failed.error_message == auth_expired_message(harness.name)
    info = sync_catalog.get_destination(runtime.catalog, destination)
    assert info.status == "auth_expired"
    expected = harness.expected(runtime, audience_id)
    assert harness.remote(runtime, audience_id) < expected  # only part went out
    assert sync_catalog.get_link(runtime.catalog, link).cursor is None

    refused = sync_link(ctx, link)  # nothing is sent while the login is expired
    assert refused.status == "refused"
    assert refused.error_message == auth_expired_message(harness.name)

    credentials = harness.reauthenticate()
    sync_catalog.reauthenticate_destination(
        runtime.catalog, runtime.secrets, destination, credentials
    )
    done = sync_link(ctx, link)
    assert done.status == "succeeded", done.error_message
    assert_exact(runtime, harness, audience_id)
    assert sync_catalog.get_destination(runtime.catalog, destination).status == "active"


def list_harnesses() -> list[str]:
    return [name for name, make in HARNESSES.items() if make().mode == "list"]


@pytest.mark.parametrize("harness", list_harnesses(), indirect=True)
def test_delete_link_removes_the_remote_audience(
    runtime: Runtime, ctx: SyncContext, harness: Harness
) -> None:
    seed_profiles(runtime, 1_200)
    audience_id = activate(runtime)
    _, link = connect(runtime, harness, audience_id)
    assert sync_link(ctx, link).status == "succeeded"
    assert len(assert_exact(runtime, harness, audience_id)) == 1_200
    assert not harness.gone()
    if harness.platform == "dv360":  # DV360's API has no delete: refused, nothing changes
        with pytest.raises(BadRequest, match="does not allow deleting"):
            delete_link(ctx, link)
        assert sync_catalog.get_link(runtime.catalog, link).status == "active"
        assert_exact(runtime, harness, audience_id)
        return
    assert delete_link(ctx, link).status == "deleted"
    assert harness.gone()


@pytest.mark.parametrize("harness", ["file_event", "webhook_event"], indirect=True)
def test_delete_of_an_event_sync_link_removes_the_audience_at_the_destination(
    runtime: Runtime, ctx: SyncContext, harness: Harness
) -> None:
    seed_profiles(runtime, 300)
    audience_id = activate(runtime)
    _, link = connect(runtime, harness, audience_id)
    assert sync_link(ctx, link).status == "succeeded"
    assert len(assert_exact(runtime, harness, audience_id)) == 300
    assert delete_link(ctx, link).status == "deleted"
    if harness.platform == "webhook":
        assert harness.fake.deleted != []  # the receiver is told to drop the audience
    else:
        assert harness.gone()


def test_file_export_destination_works_with_a_retry_policy(
    runtime: Runtime, tmp_path: Path
) -> None:
    info = sync_catalog.create_destination(
        runtime.catalog, runtime.secrets, "Exports", "file", {}, {"directory": str(tmp_path)}
    )
    checked = check_destination(SyncContext.of(runtime, retry=FAST), info.id)
    assert checked.status == "active"
