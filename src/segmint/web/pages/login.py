"""``/`` , ``/login`` and ``/logout``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from segmint.catalog.accounts import WebUser, authenticate
from segmint.web.auth import LoginRequired, current_user, safe_next, sign_in, sign_out, verify_csrf
from segmint.web.deps import runtime_of
from segmint.web.templating import render

router = APIRouter()


@router.get("/")
async def home(_: Annotated[WebUser, Depends(current_user)]) -> RedirectResponse:
    return RedirectResponse("/audiences", status_code=303)


@router.get("/login")
async def login_form(
    request: Request, next: Annotated[str | None, Query(max_length=2000)] = None
) -> Response:
    if isinstance(request.session.get("uid"), int):
        try:  # already signed in: straight on
            current_user(request)
            return RedirectResponse(safe_next(next), status_code=303)
        except LoginRequired:
            pass
    return render(request, "login.html", {"next": safe_next(next), "username": "", "error": None})


@router.post("/login", dependencies=[Depends(verify_csrf)])
async def login(
    request: Request,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/audiences",
) -> Response:
    catalog = runtime_of(request).catalog
    user = None
    if username.strip() and password:
        user = await run_in_threadpool(authenticate, catalog, username, password)
    if user is None:
        error = (
            "Enter your username and password."
            if not username.strip() or not password
            else "Wrong username or password. Check both and try again."
        )
        return render(
            request,
            "login.html",
            {"next": safe_next(next), "username": username, "error": error},
            status_code=400 if not username.strip() or not password else 401,
        )
    sign_in(request, user)
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout", dependencies=[Depends(verify_csrf)])
async def logout(request: Request) -> RedirectResponse:
    sign_out(request)
    return RedirectResponse("/login?signed_out=1", status_code=303)
