"""Google Display & Video 360 Customer Match (first-party audiences) — platform-apis.md §6.

Create: ``POST /v4/firstPartyAndPartnerAudiences?advertiserId={id}`` with ``audienceType:
CUSTOMER_MATCH_CONTACT_INFO`` and ``firstPartyAndPartnerAudienceType: TYPE_FIRST_PARTY``; add /
remove: ``POST /v4/firstPartyAndPartnerAudiences/{id}:editCustomerMatchMembers`` with
``addedContactInfoList`` / ``removedContactInfoList``, each carrying ``consent`` (both fields
``CONSENT_STATUS_GRANTED``: DV360 refuses a request with either one denied).

Find by name (assumed, not in the fact sheet): ``GET /v4/firstPartyAndPartnerAudiences
?advertiserId={id}&filter=displayName:"NAME"`` pages through the advertiser's audiences
(``pageSize``/``pageToken``/``nextPageToken``). DV360's ``:`` operator on ``displayName`` is a
"contains" match, so the adapter keeps only an exact, case-sensitive name match of type
``CUSTOMER_MATCH_CONTACT_INFO``.

Each member is one ``ContactInfo``: ``hashedEmails`` and ``hashedPhoneNumbers`` (E.164 with
``+``), ``hashedFirstName`` / ``hashedLastName`` (SHA-256, lowercase hex) and ``countryCode``
in clear text, normalized by Google's rules (``GOOGLE_RULES``: DV360's guide asks for the same
whitespace removal, lowercasing and E.164 phones as Google Ads). DV360 matches by address only
when first name, last name, zip code and country come together; Segmint maps no zip codes, so
matching rests on email and phone and the name fields only travel along.

DV360 cannot delete a Customer Match audience through the API (there is no delete method on
``firstPartyAndPartnerAudiences``), so :meth:`DV360CustomerMatch.delete_audience` refuses with
a message telling the user to remove it in DV360.

Errors arrive as ``google.rpc.Status``: 401 ``UNAUTHENTICATED`` → AuthExpired, 429
``RESOURCE_EXHAUSTED`` → RateLimited, 5xx → Transient, anything else (400
``INVALID_ARGUMENT``, 403, 404) → BadRequest.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from segmint.destinations.base import (
    Destination,
    DestinationLimits,
    MembersChange,
    log_change,
    request,
)
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
from segmint.sync.normalize import (
    GOOGLE_RULES,
    IdentifierKind,
    ListMember,
    SetAside,
    prepare_members,
)
from segmint.sync.retry import RetryPolicy

log = logging.getLogger(__name__)

DV360_URL = "https://displayvideo.googleapis.com/v4"
# DV360 takes up to 500,000 members per request after splitting; 10,000 contact infos keeps a
# request body around 2 MB and a failed request cheap to replay.
MAX_RECORDS = 10_000
MIN_LIST_SIZE = 1_000  # §6: DV360 reports sizes under 1,000 as 0 (privacy)
MEMBERSHIP_DURATION_NO_EXPIRY = 10_000
CONTACT_INFO = "CUSTOMER_MATCH_CONTACT_INFO"
DEVICE_ID = "CUSTOMER_MATCH_DEVICE_ID"
AUDIENCE_TYPES = {"contact_info": CONTACT_INFO, "device_id": DEVICE_ID}
CONSENT_GRANTED = {
    "adUserData": "CONSENT_STATUS_GRANTED",
    "adPersonalization": "CONSENT_STATUS_GRANTED",
}
LIST_PAGE_SIZE = 200

CREDENTIAL_FIELDS: tuple[str, ...] = ("access_token",)
"""Constructor keywords holding secrets (the web UI builds its forms from these)."""
CONFIG_FIELDS: tuple[str, ...] = (
    "advertiser_id",
    "membership_duration_days",
    "audience_type",
    "app_id",
)
"""Constructor keywords holding non-secret settings."""

_DIGITS = re.compile(r"\D")


@register("dv360")
class DV360CustomerMatch(Destination):
    """List Sync to one DV360 advertiser's Customer Match audiences.

    Credentials: ``access_token`` (OAuth 2 access token with the
    ``https://www.googleapis.com/auth/display-video`` scope). Config: ``advertiser_id`` (the
    DV360 advertiser id, digits), optional ``membership_duration_days`` (1–540, or 10000 =
    no expiry, the default), ``audience_type``: ``contact_info`` (the default: hashed emails and
    phones) or ``device_id`` (mobile advertising ids — IDFA / GAID — from the members'
    ``device_id``, sent in clear text as DV360 requires; then ``app_id``, the app's id in its
    store, is required)."""

    name = "dv360"
    identifier_schema: tuple[IdentifierKind, ...] = (
        "email",
        "phone",
        "first_name",
        "last_name",
        "country",
    )
    limits = DestinationLimits(max_records_per_request=MAX_RECORDS, min_list_size=MIN_LIST_SIZE)

    def __init__(
        self,
        *,
        advertiser_id: str,
        access_token: str,
        membership_duration_days: int | str = MEMBERSHIP_DURATION_NO_EXPIRY,
        audience_type: str = "contact_info",
        app_id: str | None = None,
        destination_name: str = "DV360",
        base_url: str = DV360_URL,
        retry: RetryPolicy | None = None,
        client: httpx.Client | None = None,
        timeout: float = 120.0,
    ) -> None:
        """``destination_name`` is the user's name for this destination, shown in R21's
        message; ``base_url`` points elsewhere for tests (a fake DV360 server)."""
        self.advertiser_id = _DIGITS.sub("", str(advertiser_id))
        if not self.advertiser_id:
            raise BadRequest(f"DV360 advertiser id {advertiser_id!r} holds no digits")
        days = int(membership_duration_days)
        if not (1 <= days <= 540 or days == MEMBERSHIP_DURATION_NO_EXPIRY):
            raise BadRequest(
                f"DV360 membership_duration_days must be 1–540 or 10000 (no expiry), not {days}"
            )
        self.membership_duration_days = days
        if audience_type not in AUDIENCE_TYPES:
            raise BadRequest(
                f"DV360 audience_type must be contact_info or device_id, not {audience_type!r}"
            )
        self.audience_type = AUDIENCE_TYPES[audience_type]
        self.app_id = (app_id or "").strip() or None
        if self.audience_type == DEVICE_ID and self.app_id is None:
            raise BadRequest(
                "a DV360 device id audience needs the app's id (app_id), e.g. com.example.shop"
            )
        self.access_token = access_token
        self.destination_name = destination_name
        self.retry = retry or RetryPolicy()
        self._client = client or httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def check_credentials(self) -> None:
        """Read the advertiser: raises AuthExpired when the token no longer works."""
        self._call("GET", f"/advertisers/{self.advertiser_id}")

    def ensure_audience(self, name: str) -> str:
        """The id of the advertiser's Customer Match audience called ``name``, created if
        missing.

        Creating is not idempotent, so a create whose response was lost is not replayed
        blindly: the whole look-up-then-create is retried, finding the one already made."""
        return self.retry.call(lambda: self._find_or_create(name))

    def _find_or_create(self, name: str) -> str:
        existing = self._find_audience(name)
        if existing is not None:
            return existing
        body = self._call(
            "POST",
            "/firstPartyAndPartnerAudiences",
            params={"advertiserId": self.advertiser_id},
            json_body={
                "displayName": name,
                "description": "Synced by Segmint",
                "audienceType": self.audience_type,
                "firstPartyAndPartnerAudienceType": "TYPE_FIRST_PARTY",
                "membershipDurationDays": str(self.membership_duration_days),
                **({"appId": self.app_id} if self.audience_type == DEVICE_ID else {}),
            },
            retried=False,
        )
        return str(body["firstPartyAndPartnerAudienceId"])

    def _find_audience(self, name: str) -> str | None:
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        params = {
            "advertiserId": self.advertiser_id,
            "filter": f'displayName:"{quoted}"',
            "pageSize": str(LIST_PAGE_SIZE),
        }
        while True:
            body = self._call("GET", "/firstPartyAndPartnerAudiences", params=params)
            for audience in body.get("firstPartyAndPartnerAudiences", []):
                if audience.get("displayName") == name and (
                    audience.get("audienceType") == self.audience_type
                ):
                    return str(audience["firstPartyAndPartnerAudienceId"])
            token = body.get("nextPageToken")
            if not token:
                return None
            params = {**params, "pageToken": str(token)}

    def add_members(self, remote_id: str, members: Sequence[ListMember]) -> MembersChange:
        """Add members in batches of ≤ 10,000 contact infos (``addedContactInfoList``) or
        device ids (``addedMobileDeviceIdList``)."""
        if self.audience_type == DEVICE_ID:
            return self._send_devices("addedMobileDeviceIdList", remote_id, members)
        return self._send_members("addedContactInfoList", remote_id, members)

    def remove_members(self, remote_id: str, members: Sequence[ListMember]) -> MembersChange:
        """Remove members in batches of ≤ 10,000 contact infos (``removedContactInfoList``)
        or device ids (``removedMobileDeviceIdList``)."""
        if self.audience_type == DEVICE_ID:
            return self._send_devices("removedMobileDeviceIdList", remote_id, members)
        return self._send_members("removedContactInfoList", remote_id, members)

    def _send_devices(
        self, field: str, remote_id: str, members: Sequence[ListMember]
    ) -> MembersChange:
        """Mobile advertising ids in clear text (trimmed); members without one are set aside."""
        change = MembersChange()
        ids: list[str] = []
        for member in members:
            device = (member.device_id or "").strip()
            if device:
                ids.append(device)
            else:
                change.set_aside.append(SetAside(member.key, "*", "no device id"))
        path = f"/firstPartyAndPartnerAudiences/{remote_id}:editCustomerMatchMembers"
        for batch in chunk(ids, self.limits.max_records_per_request):
            self._call(
                "POST",
                path,
                json_body={
                    "advertiserId": self.advertiser_id,
                    field: {"mobileDeviceIds": list(batch), "consent": CONSENT_GRANTED},
                },
            )
            change.sent += len(batch)
            change.requests += 1
        return change

    def delete_audience(self, remote_id: str) -> None:
        """Refuse: DV360's API cannot delete Customer Match audiences, nor empty one whose
        members Segmint no longer knows."""
        raise BadRequest(
            f"DV360 does not allow deleting Customer Match audience {remote_id} through its "
            "API; delete it in Display & Video 360 (Audiences → First-party and partner "
            "audiences), then unlink it in Segmint"
        )

    def _send_members(
        self, field: str, remote_id: str, members: Sequence[ListMember]
    ) -> MembersChange:
        prepared = prepare_members(members, self.identifier_schema, GOOGLE_RULES)
        change = MembersChange(set_aside=prepared.set_aside)
        contact_infos = [_contact_info(row) for row in prepared.rows]
        path = f"/firstPartyAndPartnerAudiences/{remote_id}:editCustomerMatchMembers"
        for batch in chunk(contact_infos, self.limits.max_records_per_request):
            self._call(
                "POST",
                path,
                json_body={
                    "advertiserId": self.advertiser_id,
                    field: {"contactInfos": list(batch), "consent": CONSENT_GRANTED},
                },
            )
            change.sent += len(batch)
            change.requests += 1
        verb = "add" if field.startswith("added") else "remove"
        log_change(log, "dv360", verb, change, self.destination_name, remote_id)
        return change

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Mapping[str, Any] | None = None,
        retried: bool = True,
    ) -> dict[str, Any]:
        """One DV360 request, with the shared retry policy unless ``retried`` is false;
        errors classified."""

        return request(
            self._client,
            self.retry,
            "DV360",
            method,
            path,
            retried=retried,
            handle=self._handle,
            headers={"Authorization": f"Bearer {self.access_token}"},
            params=params,
            json=json_body,
        )

    def _handle(self, response: httpx.Response) -> dict[str, Any]:
        """The JSON body of a successful response; otherwise the classified error."""
        if response.is_success:
            body = response.json()
            return body if isinstance(body, dict) else {}
        raise self._classify(response)

    def _classify(self, response: httpx.Response) -> DestinationError:
        """Map the ``google.rpc.Status`` envelope to our error classes; the platform code is
        the status name (``INVALID_ARGUMENT``)."""
        try:
            error = response.json().get("error", {})
        except (ValueError, AttributeError):
            error = {}
        if not isinstance(error, dict):
            error = {}
        status = str(error.get("status") or response.status_code)
        message = str(error.get("message") or response.reason_phrase)
        text = f"DV360 {status}: {message}"
        if response.status_code == 401 or status == "UNAUTHENTICATED":
            return AuthExpired(self.destination_name, detail=message, platform_code=status)
        if response.status_code == 429 or status == "RESOURCE_EXHAUSTED":
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            return RateLimited(text, retry_after=retry_after, platform_code=status)
        if response.status_code >= 500:
            return Transient(text, platform_code=status)
        return BadRequest(text, platform_code=status)


def _contact_info(row: tuple[str, ...]) -> dict[str, Any]:
    """One ``ContactInfo`` from a prepared row (email, phone, first, last, country)."""
    email, phone, first_name, last_name, country = row
    info: dict[str, Any] = {}
    if email:
        info["hashedEmails"] = [email]
    if phone:
        info["hashedPhoneNumbers"] = [phone]
    if first_name:
        info["hashedFirstName"] = first_name
    if last_name:
        info["hashedLastName"] = last_name
    if country:
        info["countryCode"] = country.upper()
    return info
