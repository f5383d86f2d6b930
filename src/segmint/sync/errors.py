"""What can go wrong talking to a destination, classified by what to do about it.

Every destination adapter maps its platform's error envelope to one of these, so the shared
retry policy (:mod:`segmint.sync.retry`) and the sync logs (R23) treat all platforms alike:
:class:`RateLimited` and :class:`Transient` are retried with backoff, :class:`AuthExpired`
stops the link until the user re-authenticates (R21), :class:`BadRequest` is not retried.
"""

from __future__ import annotations

from segmint.errors import SegmintError


class DestinationError(SegmintError):
    """A destination platform refused or failed a request. ``platform_code`` is the
    platform's own error code when it gave one (Meta's ``error.code``)."""

    status_code = 502
    code = "destination_error"

    def __init__(self, message: str, *, platform_code: int | str | None = None) -> None:
        super().__init__(message)
        self.platform_code = platform_code


class AuthExpired(DestinationError):
    """The destination's login expired or was revoked; nothing pending is lost (R21)."""

    code = "destination_auth_expired"

    def __init__(
        self, destination: str, *, detail: str = "", platform_code: int | str | None = None
    ) -> None:
        super().__init__(auth_expired_message(destination), platform_code=platform_code)
        self.destination = destination
        self.detail = detail


def auth_expired_message(destination: str) -> str:
    """R21's message, naming where to re-authenticate."""
    return (
        "Error Fetching Data: the destination's authentication has expired — "
        f"re-authenticate in Destinations → {destination} → Configuration Settings"
    )


class RateLimited(DestinationError):
    """The platform asked us to slow down; ``retry_after`` (seconds) when it said how long."""

    code = "destination_rate_limited"

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        platform_code: int | str | None = None,
    ) -> None:
        super().__init__(message, platform_code=platform_code)
        self.retry_after = retry_after


class BadRequest(DestinationError):
    """The platform rejected the request itself; retrying the same request cannot help."""

    code = "destination_bad_request"


class Transient(DestinationError):
    """A server error or a dropped connection; the same request may succeed later."""

    code = "destination_unavailable"


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header given in seconds; ``None`` when absent or an
    HTTP date (rare on the APIs we call; the backoff then applies)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return max(seconds, 0.0)
