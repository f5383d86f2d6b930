"""Google Ads Customer Match (OfflineUserDataJobService) — platform-apis.md §3.

List: ``POST /customers/{cid}/userLists:mutate`` creates (``crmBasedUserList``) or removes a
Customer Match user list; the list is found by name with a GAQL ``googleAds:search``.
Members go through the three-step job flow: ``offlineUserDataJobs:create`` (type
``CUSTOMER_MATCH_USER_LIST``), one or more ``:addOperations`` calls of at most 10,000
operations each (Google's recommendation; at ≤ 2 identifiers per operation that is well
under the 100,000-identifier request limit and the 20-per-operation limit), then ``:run``.
One job per add or remove call, as Google recommends.

Each member is one ``UserData`` whose ``userIdentifiers`` carry ``hashedEmail`` (primary)
and ``hashedPhoneNumber`` (E.164 with ``+``), hashed per Google's rules (§3.4). A list made
for CRM ids (``upload_key_type="CRM_ID"``) takes ``thirdPartyUserId`` in clear text instead,
read from the member's ``crm_id`` attribute: Google refuses mixing the two kinds in one list.

Headers: ``Authorization: Bearer``, ``developer-token`` and, when acting through a manager
account, ``login-customer-id``. Errors arrive as ``google.rpc.Status`` with
``GoogleAdsFailure`` details (§3.6). Operations go with ``enablePartialFailure`` so one value
Google refuses sets aside that member instead of failing the batch.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

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

GOOGLE_ADS_URL = "https://googleads.googleapis.com/v23"
MAX_OPERATIONS = 10_000  # per addOperations call, as Google recommends (§3.3)
MEMBERSHIP_LIFE_SPAN_UNLIMITED = 10_000
CREDENTIAL_FIELDS: tuple[str, ...] = ("access_token", "developer_token")
"""Constructor keywords holding secrets (the web UI builds its forms from these)."""
CONFIG_FIELDS: tuple[str, ...] = ("customer_id", "login_customer_id", "upload_key_type", "consent")
"""Constructor keywords holding non-secret settings."""
UploadKeyType = Literal["CONTACT_INFO", "CRM_ID"]
IDENTIFIER_FIELDS: Mapping[IdentifierKind, str] = {
    "email": "hashedEmail",
    "phone": "hashedPhoneNumber",
}
# Errors worth retrying although Google answers them with 400 (RudderStack retries these too).
_TRANSIENT_ERRORS = frozenset({"CONCURRENT_MODIFICATION", "INTERNAL_ERROR", "TRANSIENT_ERROR"})
# Answer to a run whose first response was lost: the job is already running (UNVERIFIED name).
_ALREADY_RUNNING = frozenset({"JOB_ALREADY_STARTED"})
_DIGITS = re.compile(r"\D")


@register("google_ads")
class GoogleAdsCustomerMatch(Destination):
    """List Sync to one Google Ads customer's Customer Match user lists."""

    name = "google_ads"
    identifier_schema: tuple[IdentifierKind, ...] = ("email", "phone")
    limits = DestinationLimits(max_records_per_request=MAX_OPERATIONS, min_list_size=100)

    def __init__(
        self,
        *,
        customer_id: str,
        access_token: str,
        developer_token: str,
        login_customer_id: str | None = None,
        destination_name: str = "Google Ads",
        upload_key_type: UploadKeyType = "CONTACT_INFO",
        consent: Mapping[str, str] | None = None,
        base_url: str = GOOGLE_ADS_URL,
        retry: RetryPolicy | None = None,
        client: httpx.Client | None = None,
        timeout: float = 120.0,
    ) -> None:
        """``customer_id`` and ``login_customer_id`` may carry hyphens (``123-456-7890``);
        ``consent`` is sent as the job's ``consent`` (``{"adUserData": "GRANTED", ...}``)
        when given; ``destination_name`` is the user's name for it, shown in R21's message;
        ``base_url`` points elsewhere for tests (a fake Google Ads server)."""
        self.customer_id = _DIGITS.sub("", customer_id)
        self.login_customer_id = _DIGITS.sub("", login_customer_id) if login_customer_id else None
        self.access_token = access_token
        self.developer_token = developer_token
        self.destination_name = destination_name
        self.upload_key_type: UploadKeyType = upload_key_type
        self.consent = dict(consent) if consent else None
        self.retry = retry or RetryPolicy()
        self._client = client or httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    @property
    def _customer(self) -> str:
        return f"/customers/{self.customer_id}"

    def check_credentials(self) -> None:
        """List the accessible customers: raises AuthExpired when the token no longer works."""
        self._call("GET", "/customers:listAccessibleCustomers")

    def ensure_audience(self, name: str) -> str:
        """The resource name (``customers/{cid}/userLists/{id}``) of the Customer Match list
        called ``name``, created if missing.

        Creating is not idempotent (a second create fails with ``NAME_ALREADY_USED``), so the
        whole look-up-then-create is retried, finding a list whose create response was lost."""
        return self.retry.call(lambda: self._find_or_create(name))

    def _find_or_create(self, name: str) -> str:
        existing = self._find_user_list(name)
        if existing is not None:
            return existing
        create = {
            "name": name,
            "description": "Synced by Segmint",
            "membershipLifeSpan": MEMBERSHIP_LIFE_SPAN_UNLIMITED,
            "crmBasedUserList": {"uploadKeyType": self.upload_key_type},
        }
        body = self._call(
            "POST",
            f"{self._customer}/userLists:mutate",
            {"operations": [{"create": create}]},
            retried=False,
        )
        return str(body["results"][0]["resourceName"])

    def _find_user_list(self, name: str) -> str | None:
        quoted = name.replace("\\", "\\\\").replace("'", "\\'")
        query = (
            "SELECT user_list.resource_name, user_list.name FROM user_list "
            f"WHERE user_list.name = '{quoted}' AND user_list.type = 'CRM_BASED'"
        )
        page_token: str | None = None
        while True:
            request: dict[str, Any] = {"query": query}
            if page_token:
                request["pageToken"] = page_token
            body = self._call("POST", f"{self._customer}/googleAds:search", request)
            for row in body.get("results", []):
                user_list = row.get("userList", {})
                if user_list.get("name") == name:
                    return str(user_list["resourceName"])
            page_token = body.get("nextPageToken")
            if not page_token:
                return None

    def add_members(self, remote_id: str, members: Sequence[ListMember]) -> MembersChange:
        """Add members through one offline user data job (``create`` operations)."""
        return self._send_members("create", remote_id, members)

    def remove_members(self, remote_id: str, members: Sequence[ListMember]) -> MembersChange:
        """Remove members through one offline user data job (``remove`` operations)."""
        return self._send_members("remove", remote_id, members)

    def delete_audience(self, remote_id: str) -> None:
        """Remove the user list from the Google Ads account."""
        self._call(
            "POST",
            f"{self._customer}/userLists:mutate",
            {"operations": [{"remove": self._user_list(remote_id)}]},
        )

    def _user_list(self, remote_id: str) -> str:
        """Accept a bare list id as well as a resource name."""
        if remote_id.isdigit():
            return f"customers/{self.customer_id}/userLists/{remote_id}"
        return remote_id

    def _user_data(
        self, members: Sequence[ListMember]
    ) -> tuple[list[Any], list[str], MembersChange]:
        """One ``UserData`` per usable member, their keys, and what was set aside."""
        if self.upload_key_type == "CRM_ID":
            return _crm_user_data(members)
        prepared = prepare_members(members, self.identifier_schema, GOOGLE_RULES)
        fields = [IDENTIFIER_FIELDS[kind] for kind in prepared.schema]
        user_data = [
            {"userIdentifiers": [{f: v} for f, v in zip(fields, row, strict=True) if v]}
            for row in prepared.rows
        ]
        return user_data, prepared.keys, MembersChange(set_aside=prepared.set_aside)

    def _send_members(
        self, kind: str, remote_id: str, members: Sequence[ListMember]
    ) -> MembersChange:
        user_data, keys, change = self._user_data(members)
        if not user_data:
            return change
        job = self._create_job(self._user_list(remote_id))
        size = self.limits.max_records_per_request
        for number, batch in enumerate(chunk(user_data, size)):
            start = number * size
            body = self._call(
                "POST",
                f"/{job}:addOperations",
                {
                    "operations": [{kind: item} for item in batch],
                    "enablePartialFailure": True,
                },
            )
            refused = _refused_operations(body.get("partialFailureError"))
            for index, reason in sorted(refused.items()):
                if 0 <= index < len(batch):
                    change.set_aside.append(SetAside(keys[start + index], "*", reason))
            change.sent += len(batch) - len(refused)
            change.requests += 1
        self._run_job(job)
        verb = "add" if kind == "create" else "remove"
        log_change(
            log, "google_ads", verb, change, self.destination_name, remote_id, note=f"job {job}"
        )
        return change

    def _create_job(self, user_list: str) -> str:
        """A new Customer Match job for ``user_list``. A job whose create response was lost
        is never run, so retrying the create is harmless."""
        metadata: dict[str, Any] = {"userList": user_list}
        if self.consent:
            metadata["consent"] = self.consent
        body = self._call(
            "POST",
            f"{self._customer}/offlineUserDataJobs:create",
            {
                "job": {
                    "type": "CUSTOMER_MATCH_USER_LIST",
                    "customerMatchUserListMetadata": metadata,
                }
            },
        )
        return str(body["resourceName"])

    def _run_job(self, job: str) -> None:
        """Start processing ``job``; a retried run finding it already started is success."""

        state = {"tried": False}

        def attempt() -> None:
            try:
                self._call("POST", f"/{job}:run", {}, retried=False)
            except BadRequest as error:
                if error.platform_code not in _ALREADY_RUNNING or not state["tried"]:
                    raise
            finally:
                state["tried"] = True

        self.retry.call(attempt)

    def _headers(self) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self.access_token}",
            "developer-token": self.developer_token,
        }
        if self.login_customer_id:
            headers["login-customer-id"] = self.login_customer_id
        return headers

    def _call(
        self,
        method: str,
        path: str,
        json_body: Mapping[str, Any] | None = None,
        *,
        retried: bool = True,
    ) -> dict[str, Any]:
        """One Google Ads request, with the shared retry policy unless ``retried`` is false;
        errors classified."""

        return request(
            self._client,
            self.retry,
            "Google Ads",
            method,
            path,
            retried=retried,
            handle=self._handle,
            headers=self._headers,
            json=json_body,
        )

    def _handle(self, response: httpx.Response) -> dict[str, Any]:
        """The JSON body of a successful response; otherwise the classified error."""
        if response.is_success:
            body = response.json()
            return body if isinstance(body, dict) else {}
        raise self._classify(response)

    def _classify(self, response: httpx.Response) -> DestinationError:
        """Map the ``google.rpc.Status`` envelope (§3.6) to our error classes; the platform
        code is the first ``GoogleAdsFailure`` error enum, else the status name."""
        try:
            error = response.json().get("error", {})
        except (ValueError, AttributeError):
            error = {}
        if not isinstance(error, dict):
            error = {}
        status = str(error.get("status") or response.status_code)
        failure = _first_failure(error)
        code = failure[0] if failure else status
        message = failure[1] if failure else str(error.get("message") or response.reason_phrase)
        text = f"Google Ads {code}: {message}"
        if response.status_code == 401 or status == "UNAUTHENTICATED":
            detail = str(error.get("message") or message)
            return AuthExpired(self.destination_name, detail=detail, platform_code=code)
        if response.status_code == 429 or status == "RESOURCE_EXHAUSTED":
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            return RateLimited(text, retry_after=retry_after, platform_code=code)
        if response.status_code >= 500 or code in _TRANSIENT_ERRORS:
            return Transient(text, platform_code=code)
        return BadRequest(text, platform_code=code)


def _crm_user_data(members: Sequence[ListMember]) -> tuple[list[Any], list[str], MembersChange]:
    """``thirdPartyUserId`` (clear text) from each member's ``crm_id``; members without one
    are set aside."""
    user_data: list[Any] = []
    keys: list[str] = []
    change = MembersChange()
    for member in members:
        crm_id = getattr(member, "crm_id", None)
        text = crm_id.strip() if isinstance(crm_id, str) else ""
        if not text:
            change.set_aside.append(SetAside(member.key, "*", "no CRM id"))
            continue
        user_data.append({"userIdentifiers": [{"thirdPartyUserId": text}]})
        keys.append(member.key)
    return user_data, keys, change


def _google_ads_errors(status: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The ``GoogleAdsFailure.errors`` inside a ``google.rpc.Status``."""
    errors: list[Mapping[str, Any]] = []
    for detail in status.get("details") or []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("GoogleAdsFailure"):
            errors.extend(e for e in detail.get("errors") or [] if isinstance(e, dict))
    return errors


def _first_failure(status: Mapping[str, Any]) -> tuple[str, str] | None:
    """(enum name, message) of the first GoogleAdsFailure error, e.g. ``INVALID_SHA256_FORMAT``."""
    for error in _google_ads_errors(status):
        for value in (error.get("errorCode") or {}).values():
            return str(value), str(error.get("message", ""))
    return None


def _refused_operations(status: Any) -> dict[int, str]:
    """Operation index → reason for each operation a ``partialFailureError`` refused."""
    if not isinstance(status, dict) or not status.get("code"):
        return {}
    refused: dict[int, str] = {}
    for error in _google_ads_errors(status):
        elements = (error.get("location") or {}).get("fieldPathElements") or []
        index = next((e.get("index") for e in elements if e.get("fieldName") == "operations"), None)
        if isinstance(index, int):
            code = next(iter((error.get("errorCode") or {}).values()), "refused")
            refused.setdefault(index, f"refused by Google Ads: {code}")
    return refused
