"""Google Analytics 4 (Measurement Protocol) — platform-apis.md §8. Event Sync only (R17, R18).

Each membership change becomes an ``added_to_segment`` / ``removed_from_segment`` event sent to
``POST /mp/collect?measurement_id=G-…&api_secret=…``. A request belongs to one GA client, so
events are grouped by client id (and user id and time), at most 25 per request. The client id
comes from the member's ``_ga`` cookie (``GA1.1.<a>.<b>`` → ``<a>.<b>``); members without one
cannot be tied to a web stream's visitor and are skipped and reported, never guessed.

GA4 answers 2xx to anything it receives, even an invalid payload it then drops, so nothing
here is trusted to the production endpoint's silence: :meth:`GA4Events.validate` asks the
validation endpoint ``/debug/mp/collect``, :meth:`GA4Events.check_credentials` uses it, and the
first request of every :meth:`GA4Events.send_events` call is validated before anything is sent.
Event and parameter names are fixed and valid; values are cut to GA4's 100 characters.

A request carries one client's events, so an audience of many members means as many requests:
they are sent :data:`CONCURRENCY` at a time (one client's requests in order, by one thread),
and the first request that fails for good stops the rest.

GA4 accepts ``timestamp_micros`` at most 72 hours in the past. Changes older than
:data:`MAX_BACKDATE` (71 hours, an hour of margin for retries) are sent stamped at delivery
time with their real time in the ``event_time`` parameter, rather than being dropped by GA4.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from segmint.destinations.base import Destination, DestinationLimits, MembersChange, request
from segmint.destinations.registry import register
from segmint.sync.batching import chunk
from segmint.sync.errors import (
    AuthExpired,
    BadRequest,
    DestinationError,
    RateLimited,
    Transient,
    parse_retry_after,
)
from segmint.sync.normalize import IdentifierKind, ListMember, SetAside
from segmint.sync.retry import RetryPolicy

log = logging.getLogger(__name__)

CREDENTIAL_FIELDS: tuple[str, ...] = ("measurement_id", "api_secret")
"""The web stream's measurement id (``G-…``) and a Measurement Protocol API secret."""
CONFIG_FIELDS: tuple[str, ...] = ("region",)
"""``global`` (default) or ``eu`` (the EU collection endpoint)."""

ENDPOINTS = {
    "global": "https://www.google-analytics.com",
    "eu": "https://region1.google-analytics.com",
}
MAX_EVENTS = 25
CONCURRENCY = 8
"""Requests in flight at once: each one waits a network round trip, and 25,000 members are
about as many requests (GA4 publishes no request rate limit for the Measurement Protocol)."""
MAX_PARAM_VALUE = 100
MAX_BACKDATE = timedelta(hours=71)
"""GA4 takes events up to 72 hours old; older ones are sent un-backdated (see module doc)."""
EVENT_NAMES = frozenset({"added_to_segment", "removed_from_segment"})
MEASUREMENT_ID = re.compile(r"G-[A-Z0-9]{4,}")
_GA_COOKIE = re.compile(r"(?:GA\d+\.\d+\.)?(?P<client>\d+\.\d+)")
_SAMPLE_CLIENT = "1000000000.1000000000"


def client_id_from_cookie(value: object) -> str | None:
    """GA's client id from a ``_ga`` cookie value (``GA1.1.123.456`` → ``123.456``); a bare
    client id passes through; anything else is ``None``."""
    if not isinstance(value, str):
        return None
    match = _GA_COOKIE.fullmatch(value.strip())
    return match["client"] if match else None


def _text(value: Any) -> str:
    return str(value)[:MAX_PARAM_VALUE]


@register("ga4")
class GA4Events(Destination):
    """Event Sync to one GA4 web (gtag) data stream through the Measurement Protocol."""

    name = "ga4"
    identifier_schema: tuple[IdentifierKind, ...] = ()
    limits = DestinationLimits(max_records_per_request=MAX_EVENTS, max_bytes_per_request=130_000)
    supports_event_sync = True

    def __init__(
        self,
        *,
        measurement_id: str,
        api_secret: str,
        region: str = "global",
        destination_name: str = "GA4",
        base_url: str | None = None,
        retry: RetryPolicy | None = None,
        client: httpx.Client | None = None,
        clock: Callable[[], datetime] | None = None,
        timeout: float = 30.0,
        concurrency: int = CONCURRENCY,
    ) -> None:
        """``region`` picks the collection endpoint; ``base_url`` overrides it (tests);
        ``clock`` (UTC) decides which events are too old to backdate; ``concurrency`` is
        how many requests are in flight at once (1 sends them one by one)."""
        if region not in ENDPOINTS:
            raise BadRequest(f"GA4 region {region!r} is not known: use global or eu")
        if concurrency < 1:
            raise BadRequest(f"GA4 concurrency must be at least 1, not {concurrency}")
        self.concurrency = concurrency
        self.measurement_id = measurement_id.strip()
        self.api_secret = api_secret
        self.destination_name = destination_name
        self.retry = retry or RetryPolicy()
        url = (base_url or ENDPOINTS[region]).rstrip("/")
        self._client = client or httpx.Client(base_url=url, timeout=timeout)
        self._clock = clock or (lambda: datetime.now(UTC))

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    # -- the List Sync half of the interface does not apply ---------------------------------
    def check_credentials(self) -> None:
        """Check the measurement id's shape and validate a sample event with GA4.

        GA4 cannot tell us whether an API secret is right: a wrong one is accepted and its
        events silently dropped. Check the secret under Admin → Data streams → Measurement
        Protocol API secrets; the events appear in Realtime within a minute."""
        if MEASUREMENT_ID.fullmatch(self.measurement_id) is None:
            raise BadRequest(
                f"GA4 measurement id {self.measurement_id!r} does not look like G-XXXXXXXXXX; "
                "copy it from Admin → Data streams → your web stream"
            )
        sample = {
            "client_id": _SAMPLE_CLIENT,
            "events": [{"name": "added_to_segment", "params": {"audience_id": "check"}}],
        }
        self._raise_if_invalid(sample)

    def ensure_audience(self, name: str) -> str:
        """GA4 has no audience object to create (audiences are built in GA4 from these events);
        the name is the id, sent as ``audience_name``."""
        return name

    def add_members(self, remote_id: str, members: Sequence[ListMember]) -> MembersChange:
        """GA4 has no List Sync: refused."""
        raise self._no_list_sync()

    def remove_members(self, remote_id: str, members: Sequence[ListMember]) -> MembersChange:
        """GA4 has no List Sync: refused."""
        raise self._no_list_sync()

    def delete_audience(self, remote_id: str) -> None:
        """Nothing to delete: events already collected stay in GA4 (its data retention rules
        apply); no more are sent once the link is gone."""
        log.info(
            "ga4: nothing to delete for %s",
            remote_id,
            extra={"destination": self.destination_name, "audience_id": remote_id},
        )

    def _no_list_sync(self) -> BadRequest:
        return BadRequest(
            "GA4 does not support List Sync: link the audience with Event Sync, which sends "
            "added_to_segment / removed_from_segment events for each member's GA client id"
        )

    # -- Event Sync ----------------------------------------------------------------------------
    def send_events(self, events: Sequence[Mapping[str, Any]]) -> int:
        """Send the events; returns how many were sent (members without a GA client id are
        skipped: :meth:`deliver_events` says which)."""
        return self.deliver_events(events).sent

    def deliver_events(self, events: Sequence[Mapping[str, Any]]) -> MembersChange:
        """Send the events, ≤ 25 per request, one GA client per request. Events without a
        ``_ga`` cookie are set aside (``identifier`` ``"*"``, so counted as skipped members)."""
        change = MembersChange()
        bodies = list(self._bodies(events, change))
        if bodies:
            self._raise_if_invalid(bodies[0])
            self._send_all(bodies, change)
        if change.set_aside:
            log.warning(
                "ga4: %d events skipped: no GA client id",
                len(change.set_aside),
                extra={"destination": self.destination_name},
            )
        log.info(
            "ga4 events: %d in %d requests",
            change.sent,
            change.requests,
            extra={"destination": self.destination_name},
        )
        return change

    def _send_all(self, bodies: list[dict[str, Any]], change: MembersChange) -> None:
        """POST every body to ``/mp/collect``, ``concurrency`` at a time; counts what was
        sent in ``change``; raises the first error after stopping the rest."""
        by_client: dict[str, list[dict[str, Any]]] = {}
        for body in bodies:
            by_client.setdefault(body["client_id"], []).append(body)
        failed = threading.Event()
        lock = threading.Lock()
        errors: list[BaseException] = []

        def send(client_bodies: list[dict[str, Any]]) -> None:
            for body in client_bodies:
                if failed.is_set():
                    return
                try:
                    self._call("/mp/collect", body)
                except BaseException as exc:
                    with lock:
                        errors.append(exc)
                    failed.set()
                    return
                with lock:
                    change.sent += len(body["events"])
                    change.requests += 1

        workers = min(self.concurrency, len(by_client))
        if workers == 1:
            for client_bodies in by_client.values():
                send(client_bodies)
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="ga4-send") as pool:
                for client_bodies in by_client.values():
                    pool.submit(send, client_bodies)
        if errors:
            log.warning(
                "ga4 events: stopped after %d of %d requests: %s",
                change.requests,
                len(bodies),
                errors[0],
                extra={"destination": self.destination_name},
            )
            raise errors[0]

    def validate(self, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        """GA4's ``validationMessages`` for ``body`` from ``/debug/mp/collect`` (nothing is
        collected there); an empty list means GA4 would accept it."""
        answer = self._call("/debug/mp/collect", body)
        messages = answer.get("validationMessages") or []
        return [message for message in messages if isinstance(message, dict)]

    def _raise_if_invalid(self, body: Mapping[str, Any]) -> None:
        messages = self.validate(body)
        if messages:
            described = "; ".join(
                f"{m.get('fieldPath', '?')}: {m.get('description', '')} "
                f"({m.get('validationCode', '?')})"
                for m in messages
            )
            raise BadRequest(
                f"GA4 would drop these events: {described}",
                platform_code=str(messages[0].get("validationCode")),
            )

    def _bodies(
        self, events: Sequence[Mapping[str, Any]], change: MembersChange
    ) -> Iterator[dict[str, Any]]:
        """Request bodies: events grouped by (client id, user id, timestamp) in first-seen
        order, ≤ 25 per body."""
        now = self._clock()
        groups: dict[tuple[str, str | None, int | None], list[dict[str, Any]]] = {}
        for index, event in enumerate(events):
            name = event.get("event")
            if name not in EVENT_NAMES:
                raise BadRequest(
                    f"events[{index}]: unknown event {name!r}; expected added_to_segment or "
                    "removed_from_segment"
                )
            client_id = client_id_from_cookie((event.get("cookies") or {}).get("ga"))
            key = str(event.get("profile_id") or event.get("message_id") or index)
            if client_id is None:
                change.set_aside.append(SetAside(key, "*", "no GA client id (_ga cookie)"))
                continue
            micros, params = self._timing(event.get("timestamp"), now)
            params.update(self._params(event))
            user_id = event.get("user_id")
            group = (client_id, str(user_id) if user_id else None, micros)
            groups.setdefault(group, []).append({"name": name, "params": params})
        for (client_id, user_id, micros), group_events in groups.items():
            for batch in chunk(group_events, MAX_EVENTS):
                body: dict[str, Any] = {"client_id": client_id, "events": list(batch)}
                if user_id is not None:
                    body["user_id"] = user_id
                if micros is not None:
                    body["timestamp_micros"] = micros
                yield body

    def _timing(self, timestamp: Any, now: datetime) -> tuple[int | None, dict[str, Any]]:
        """``timestamp_micros`` for an event, or ``None`` (GA4 stamps it on receipt) plus an
        ``event_time`` parameter when the event is too old to backdate or in the future."""
        if not timestamp:
            return None, {}
        try:
            moment = datetime.fromisoformat(str(timestamp).replace("Z", "+00:00"))
        except ValueError:
            return None, {"event_time": _text(timestamp)}
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        if moment > now or now - moment > MAX_BACKDATE:
            return None, {"event_time": _text(moment.astimezone(UTC).isoformat())}
        return int(moment.timestamp() * 1_000_000), {}

    @staticmethod
    def _params(event: Mapping[str, Any]) -> dict[str, Any]:
        audience = event.get("audience") or {}
        params = {
            "audience_id": audience.get("id"),
            "audience_name": audience.get("name"),
            "refresh_id": event.get("refresh_id"),
            "message_id": event.get("message_id"),
        }
        return {name: _text(value) for name, value in params.items() if value is not None}

    def _call(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """One POST with the shared retry policy; errors classified."""
        params = {"measurement_id": self.measurement_id, "api_secret": self.api_secret}
        return request(
            self._client,
            self.retry,
            "GA4",
            "POST",
            path,
            handle=self._handle,
            params=params,
            json=body,
        )

    def _handle(self, response: httpx.Response) -> dict[str, Any]:
        """The JSON object a successful response holds (``{}`` when empty or not JSON);
        otherwise the classified error."""
        if not response.is_success:
            raise self._classify(response)
        if not response.content:
            return {}
        try:
            answer = response.json()
        except ValueError:
            return {}
        return answer if isinstance(answer, dict) else {}

    def _classify(self, response: httpx.Response) -> DestinationError:
        status = response.status_code
        text = f"GA4 HTTP {status}: {response.text[:200] or response.reason_phrase}"
        if status in (401, 403):
            return AuthExpired(self.destination_name, detail=text, platform_code=status)
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            return RateLimited(text, retry_after=retry_after, platform_code=status)
        if status >= 500:
            return Transient(text, platform_code=status)
        return BadRequest(text, platform_code=status)
