"""A credentials check is someone waiting: it tries a few times quickly and says in words why
the platform could not be reached, where a sync backs off for a minute."""

from __future__ import annotations

import socket

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from segmint.sync.errors import Transient
from segmint.sync.runner import CHECK_RETRY, try_credentials
from tests.conftest import serving

SECRET = "s" * 24


def test_a_check_tries_as_often_as_the_check_policy_says_not_a_syncs_eight_times() -> None:
    seen: list[str] = []

    async def busy(request: Request) -> Response:
        seen.append(request.url.path)
        return Response("busy", status_code=503)

    app = Starlette(routes=[Route("/hook", busy, methods=["POST"])])
    with serving(app) as url, pytest.raises(Transient):
        try_credentials("webhook", "Hook", {"signing_secret": SECRET}, {"url": url + "/hook"})
    assert len(seen) == CHECK_RETRY.attempts == 3


def test_an_unreachable_platform_is_said_in_words() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
        with pytest.raises(Transient) as caught:
            try_credentials("webhook", "Hook", {"signing_secret": SECRET}, {"url": url})
    message = str(caught.value)
    assert message.startswith("connection to the webhook failed: could not connect (")
    assert "check this machine's network, proxy and DNS" in message
    assert "ConnectError(" not in message  # words, not the exception's repr
