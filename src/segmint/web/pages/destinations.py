"""The Destinations pages: the connected platforms with their status, a form to connect each
platform, and one destination's page with its Configuration Settings (settings, re-authenticate
with new credentials, check the connection, disable / enable) — R21's place to fix an expired
login.

The forms are built from each platform module's ``CREDENTIAL_FIELDS`` (secrets: password
inputs, never shown again) and ``CONFIG_FIELDS`` (settings), with the adapter's constructor
telling which are required and what type they take; a module without them gets two JSON
boxes. Connecting with "check the credentials" tries them on the platform *before* anything
is saved, so a refused login leaves nothing half-created.
"""

from __future__ import annotations

import inspect
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from segmint.audiences import service
from segmint.destinations import registry
from segmint.errors import Conflict, InvalidInput, NotFound, SegmintError
from segmint.runtime import Runtime
from segmint.sync import catalog as sync_catalog
from segmint.sync import runner
from segmint.sync.catalog import DestinationInfo
from segmint.sync.errors import AuthExpired, BadRequest, DestinationError, RateLimited, Transient
from segmint.sync.retry import RetryPolicy
from segmint.web.auth import current_user, verify_csrf
from segmint.web.deps import runtime_of
from segmint.web.templating import render

router = APIRouter(dependencies=[Depends(current_user), Depends(verify_csrf)])

DestinationId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The destination's id")]
STATUS_LABELS = {
    "active": "active",
    "auth_expired": "auth expired",
    "error": "error",
    "disabled": "disabled",
}
MAX_FIELD = 4000
CHECK_RETRY = RetryPolicy(attempts=2, initial=0.2, maximum=1.0)
"""A form waits for one quick retry at most, not the sync's patient backoff."""

FIELD_LABELS = {
    "access_token": "Access token",
    "ad_account_id": "Ad account ID",
    "advertiser_id": "Advertiser ID",
    "developer_token": "Developer token",
    "customer_id": "Customer ID",
    "login_customer_id": "Manager (login) customer ID",
    "upload_key_type": "Upload key type",
    "consent": "Consent (JSON)",
    "api_key": "Private API key",
    "measurement_id": "Measurement ID",
    "api_secret": "API secret",
    "region": "Region",
    "signing_secret": "Signing secret",
    "url": "Webhook URL",
    "max_per_request": "Members or events per request",
    "directory": "Directory",
    "format": "File format",
    "phone_plus": "Send phone numbers with a leading +",
    "membership_duration_days": "Membership duration (days)",
    "base_url": "API base URL",
}
FIELD_HELP = {
    "access_token": "The platform's API token for this account.",
    "ad_account_id": "Digits only; an act_ prefix is removed.",
    "base_url": (
        "Advanced: leave empty to use the platform's own address. Set it only for a proxy or "
        "a test server."
    ),
    "directory": "A folder on the Segmint server; files are written there.",
    "signing_secret": "At least 16 characters; receivers verify each payload's signature with it.",
    "consent": 'For example {"adUserData": "GRANTED", "adPersonalization": "GRANTED"}.',
}
FIELD_CHOICES: dict[str, tuple[str, ...]] = {
    "format": ("csv", "parquet"),
    "region": ("global", "eu"),
    "upload_key_type": ("CONTACT_INFO", "CRM_ID"),
}
GENERIC_CREDENTIALS = "credentials_json"
GENERIC_CONFIG = "config_json"


# --- form fields from the platform modules ----------------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    """One input of a destination form."""

    name: str
    label: str
    secret: bool
    required: bool
    kind: str  # text | number | bool | choice | json
    help: str = ""
    choices: tuple[str, ...] = ()
    default: str = ""

    @property
    def input_name(self) -> str:
        return ("cred__" if self.secret else "cfg__") + self.name

    @property
    def input_id(self) -> str:
        return "field-" + self.input_name


@dataclass(frozen=True)
class PlatformForm:
    """The inputs a platform's destination needs."""

    platform: str
    label: str
    credentials: tuple[FieldSpec, ...]
    config: tuple[FieldSpec, ...]
    generic: bool = False
    modes: tuple[str, ...] = ()
    identifiers: tuple[str, ...] = ()


def _kind(annotation: Any, name: str) -> str:
    if name in FIELD_CHOICES:
        return "choice"
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    text = str(text)
    if "Mapping" in text or "dict" in text:
        return "json"
    if "bool" in text and "str" not in text:
        return "bool"
    if re.search(r"\bint\b", text):  # ``int | str`` too: the adapters parse strings
        return "number"
    return "text"


def _parameters(factory: Any) -> Mapping[str, inspect.Parameter]:
    try:
        return inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return {}


def _spec(name: str, secret: bool, params: Mapping[str, inspect.Parameter]) -> FieldSpec:
    param = params.get(name)
    required = param is not None and param.default is inspect.Parameter.empty
    default = ""
    if param is not None and param.default not in (inspect.Parameter.empty, None):
        default = str(param.default).lower() if isinstance(param.default, bool) else ""
        if isinstance(param.default, str | int) and not isinstance(param.default, bool):
            default = str(param.default)
    kind = _kind(param.annotation if param is not None else "str", name)
    return FieldSpec(
        name=name,
        label=FIELD_LABELS.get(name, name.replace("_", " ").capitalize()),
        secret=secret,
        required=required,
        kind="text" if secret and kind != "json" else kind,
        help=FIELD_HELP.get(name, ""),
        choices=FIELD_CHOICES.get(name, ()),
        default="" if name == "base_url" else default,
    )


def platform_form(platform: str) -> PlatformForm:
    """The form of ``platform``, from its module's ``CREDENTIAL_FIELDS`` / ``CONFIG_FIELDS``
    (a generic JSON form when the module does not declare them)."""
    if platform not in sync_catalog.PLATFORM_LABELS:
        raise InvalidInput(
            f"unknown platform {platform!r}; choose one of the list", path="platform"
        )
    label = sync_catalog.PLATFORM_LABELS[platform]
    modes = sync_catalog.PLATFORM_MODES[platform]
    identifiers = sync_catalog.PLATFORM_IDENTIFIERS[platform]
    try:
        factory = registry.get_factory(platform)
    except NotFound:
        return PlatformForm(platform, label, (), (), True, modes, identifiers)
    module = sys.modules.get(getattr(factory, "__module__", ""), None)
    credential_names = getattr(module, "CREDENTIAL_FIELDS", None)
    config_names = getattr(module, "CONFIG_FIELDS", None)
    if credential_names is None or config_names is None:
        return PlatformForm(platform, label, (), (), True, modes, identifiers)
    params = _parameters(factory)
    credentials = tuple(_spec(name, True, params) for name in credential_names)
    config = [_spec(name, False, params) for name in config_names]
    if "base_url" in params and "base_url" not in config_names:
        config.append(_spec("base_url", False, params))
    return PlatformForm(platform, label, credentials, tuple(config), False, modes, identifiers)


# --- reading the forms ---------------------------------------------------------------------------


@dataclass
class FormState:
    """What the user typed (never secrets) and what was wrong with it, per input name."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    message: str = ""

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.message


def _settings_error(exc: InvalidInput, spec: PlatformForm, state: FormState) -> None:
    """Show a settings error on its input (``config.url`` → the URL field) when the form
    has one, else above the form."""
    part, _, key = (exc.path or "").partition(".")
    for item in (*spec.credentials, *spec.config):
        if key == item.name and part == ("credentials" if item.secret else "config"):
            state.error(item.input_name, exc.message)
            return
    state.message = exc.message


def _text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _parse(spec: FieldSpec, raw: str, state: FormState) -> Any:
    if len(raw) > MAX_FIELD:
        state.error(spec.input_name, f"{spec.label} is too long (at most {MAX_FIELD} characters)")
        return None
    if spec.kind == "number":
        try:
            return int(raw)
        except ValueError:
            state.error(spec.input_name, f"{spec.label} must be a whole number, e.g. 500")
            return None
    if spec.kind == "bool":
        if raw not in ("true", "false"):
            state.error(spec.input_name, f"choose yes or no for {spec.label}")
            return None
        return raw == "true"
    if spec.kind == "choice" and raw not in spec.choices:
        state.error(spec.input_name, f"choose one of {', '.join(spec.choices)}")
        return None
    if spec.kind == "json":
        try:
            return json.loads(raw)
        except ValueError:
            state.error(spec.input_name, f"{spec.label} must be JSON, e.g. {FIELD_HELP['consent']}")
            return None
    return raw


def read_fields(
    specs: tuple[FieldSpec, ...],
    form: Mapping[str, Any],
    state: FormState,
    *,
    require: bool = True,
    keep_values: bool = True,
) -> dict[str, Any]:
    """The typed values of ``specs`` from ``form``; empty optional inputs are left out, empty
    required ones are errors when ``require``."""
    values: dict[str, Any] = {}
    for spec in specs:
        raw = _text(form, spec.input_name)
        if keep_values and not spec.secret:
            state.values[spec.input_name] = raw
        if not raw:
            if require and spec.required:
                state.error(spec.input_name, f"enter the {spec.label.lower()}")
            continue
        parsed = _parse(spec, raw, state)
        if parsed is not None:
            values[spec.name] = parsed
    return values


def _read_json(form: Mapping[str, Any], name: str, label: str, state: FormState) -> dict[str, Any]:
    raw = _text(form, name)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        state.error(name, f'{label} must be a JSON object, e.g. {{"api_key": "..."}}')
        return {}
    if not isinstance(value, dict):
        state.error(name, f"{label} must be a JSON object (curly braces)")
        return {}
    return value


def read_destination_form(
    spec: PlatformForm, form: Mapping[str, Any], state: FormState
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(credentials, config) from a connect form."""
    if spec.generic:
        state.values[GENERIC_CONFIG] = _text(form, GENERIC_CONFIG)
        credentials = _read_json(form, GENERIC_CREDENTIALS, "Credentials", state)
        config = _read_json(form, GENERIC_CONFIG, "Settings", state)
        return credentials, config
    credentials = read_fields(spec.credentials, form, state)
    config = read_fields(spec.config, form, state)
    return credentials, config


def try_credentials(
    platform: str, name: str, credentials: Mapping[str, Any], config: Mapping[str, Any]
) -> None:
    """Check unsaved credentials on the platform (quickly: few retries, short timeout)."""
    runner.try_credentials(platform, name, credentials, config, retry=CHECK_RETRY, timeout=15.0)


def explain_check_failure(
    exc: BaseException,
    spec: PlatformForm,
    state: FormState,
    *,
    first_credential: str | None,
    can_skip: bool = True,
) -> None:
    """Put a failed credentials check into the form: on the credential input when the login
    was refused, at the top otherwise. ``can_skip``: the form has the check's checkbox."""
    label = spec.label
    skip = ", or untick the check to save without trying the credentials" if can_skip else ""
    if isinstance(exc, AuthExpired):
        detail = f" ({exc.detail})" if exc.detail else ""
        text = (
            f"{label} did not accept these credentials{detail}. Copy a fresh token from "
            f"{label} and try again."
        )
        if first_credential:
            state.error(first_credential, text)
        else:
            state.message = text
    elif isinstance(exc, RateLimited | Transient):
        state.message = (
            f"{label} is busy or unavailable right now ({exc.message}). Try again in a "
            f"minute{skip}."
        )
    elif isinstance(exc, BadRequest | DestinationError):
        state.message = f"{label} refused the request: {exc.message}. Check the settings."
    elif isinstance(exc, httpx.HTTPError):
        state.message = (
            f"{label} could not be reached ({exc}). Check the API base URL and the network{skip}."
        )
    elif isinstance(exc, SegmintError):
        state.message = exc.message
    else:  # pragma: no cover - defensive
        state.message = f"the check failed: {exc}"


def _flash(request: Request, message: str, kind: str = "ok") -> None:
    request.session["flash"] = {"message": message[:600], "kind": kind}


def _pop_flash(request: Request) -> dict[str, str] | None:
    value = request.session.pop("flash", None)
    return value if isinstance(value, dict) else None


# --- the list and the connect form ---------------------------------------------------------------


def _link_counts(rt: Runtime) -> dict[int, int]:
    counts: dict[int, int] = {}
    for link in sync_catalog.list_links(rt.catalog):
        counts[link.destination_id] = counts.get(link.destination_id, 0) + 1
    return counts


@router.get("/destinations")
async def destinations_page(request: Request) -> Response:
    rt = runtime_of(request)

    def build() -> dict[str, Any]:
        return {
            "destinations": sync_catalog.list_destinations(rt.catalog),
            "link_counts": _link_counts(rt),
        }

    data = await run_in_threadpool(build)
    return render(
        request,
        "destinations/list.html",
        {**data, "status_labels": STATUS_LABELS, "flash": _pop_flash(request)},
    )


def _connect_context(platform: str, state: FormState | None = None) -> dict[str, Any]:
    spec = platform_form(platform) if platform else None
    return {
        "platforms": sync_catalog.PLATFORM_LABELS,
        "platform": platform,
        "spec": spec,
        "state": state or FormState(),
        "check": True,
        "generic_credentials": GENERIC_CREDENTIALS,
        "generic_config": GENERIC_CONFIG,
    }


@router.get("/destinations/new")
async def connect_page(
    request: Request, platform: Annotated[str, Query(max_length=40)] = ""
) -> Response:
    state = FormState()
    if platform and platform not in sync_catalog.PLATFORM_LABELS:
        state.error("platform", "choose a platform from the list")
        platform = ""
    context = _connect_context(platform, state)
    return render(request, "destinations/new.html", context)


@router.post("/destinations/new")
async def connect(request: Request) -> Response:
    """Create a destination; with the check ticked, its credentials are tried first and
    nothing is saved unless they work."""
    rt = runtime_of(request)
    form = await request.form()
    platform = _text(form, "platform")
    state = FormState()
    if platform not in sync_catalog.PLATFORM_LABELS:
        state.error("platform", "choose a platform from the list")
        return render(request, "destinations/new.html", _connect_context("", state), 400)
    spec = platform_form(platform)
    name = _text(form, "name")
    state.values["name"] = name
    check = _text(form, "check") in ("on", "true", "1")
    if not name:
        state.error("name", "enter a name for this destination, e.g. Shop Meta")
    elif len(name) > 100:
        state.error("name", "use at most 100 characters")
    credentials, config = read_destination_form(spec, form, state)

    def run() -> DestinationInfo | None:
        if any(d.name == name for d in sync_catalog.list_destinations(rt.catalog)):
            state.error("name", f"a destination named {name!r} exists; choose another name")
            return None
        try:  # the settings themselves, before any call to the platform
            sync_catalog.check_settings(platform, name, credentials, config)
        except InvalidInput as exc:
            _settings_error(exc, spec, state)
            return None
        if check:
            try:
                try_credentials(platform, name, credentials, config)
            except (SegmintError, httpx.HTTPError) as exc:
                first = spec.credentials[0].input_name if spec.credentials else None
                explain_check_failure(exc, spec, state, first_credential=first)
                return None
        try:
            return sync_catalog.create_destination(
                rt.catalog, rt.secrets, name, platform, credentials, config
            )
        except Conflict as exc:
            state.error("name", exc.message)
        except InvalidInput as exc:
            if exc.path == "name":
                state.error("name", exc.message)
            else:
                _settings_error(exc, spec, state)
        return None

    info = None
    if state.ok:
        info = await run_in_threadpool(run)
    if info is None:
        context = _connect_context(platform, state)
        context["check"] = check
        return render(request, "destinations/new.html", context, 400)
    checked = " Its credentials work." if check else ""
    _flash(request, f"{info.name} is connected.{checked} Link audiences to it from their pages.")
    return RedirectResponse(f"/destinations/{info.id}", status_code=303)


# --- one destination ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkedAudience:
    link_id: int
    audience_id: int
    audience_name: str
    mode: str
    last_synced_at: Any


def _linked(rt: Runtime, destination_id: int) -> list[LinkedAudience]:
    rows = []
    for link in sync_catalog.list_links(rt.catalog, destination=destination_id):
        try:
            audience = service.get(rt.catalog, link.audience_id)
            name = audience.name or f"Untitled draft #{audience.id}"
        except SegmintError:
            name = f"Audience #{link.audience_id}"
        rows.append(LinkedAudience(link.id, link.audience_id, name, link.mode, link.last_synced_at))
    return rows


def _detail_context(
    rt: Runtime,
    destination_id: int,
    *,
    settings: FormState | None = None,
    reauth: FormState | None = None,
    rename: FormState | None = None,
) -> dict[str, Any]:
    destination = sync_catalog.get_destination(rt.catalog, destination_id)
    spec = platform_form(destination.platform)
    values = FormState(values={}) if settings is None else settings
    if settings is None:
        for item in spec.config:
            current = destination.config.get(item.name)
            if current is None:
                values.values[item.input_name] = ""
            elif isinstance(current, bool):
                values.values[item.input_name] = "true" if current else "false"
            elif isinstance(current, dict | list):
                values.values[item.input_name] = json.dumps(current)
            else:
                values.values[item.input_name] = str(current)
        values.values[GENERIC_CONFIG] = json.dumps(destination.config, indent=2)
    return {
        "destination": destination,
        "spec": spec,
        "links": _linked(rt, destination.id),
        "settings": values,
        "reauth": reauth or FormState(),
        "rename": rename or FormState(),
        "status_labels": STATUS_LABELS,
        "generic_credentials": GENERIC_CREDENTIALS,
        "generic_config": GENERIC_CONFIG,
    }


@router.get("/destinations/{destination_id}")
async def destination_page(request: Request, destination_id: DestinationId) -> Response:
    rt = runtime_of(request)
    data = await run_in_threadpool(_detail_context, rt, destination_id)
    return render(request, "destinations/detail.html", {**data, "flash": _pop_flash(request)})


@router.post("/destinations/{destination_id}/rename")
async def rename(request: Request, destination_id: DestinationId) -> Response:
    """A new name; a taken or empty one is shown next to the input."""
    rt = runtime_of(request)
    form = await request.form()
    name = _text(form, "name")
    try:
        info = await run_in_threadpool(
            sync_catalog.rename_destination, rt.catalog, destination_id, name
        )
    except (InvalidInput, Conflict) as exc:
        state = FormState(values={"name": name})
        state.error("name", exc.message)
        data = await run_in_threadpool(_detail_context, rt, destination_id, rename=state)
        return render(request, "destinations/detail.html", data, exc.status_code)
    _flash(request, f"Renamed to {info.name}.")
    return RedirectResponse(f"/destinations/{destination_id}", 303)


@router.post("/destinations/{destination_id}/settings")
async def save_settings(request: Request, destination_id: DestinationId) -> Response:
    """Save the settings form; an empty optional setting is removed."""
    rt = runtime_of(request)
    form = await request.form()
    info = await run_in_threadpool(sync_catalog.get_destination, rt.catalog, destination_id)
    spec = platform_form(info.platform)
    state = FormState()
    if spec.generic:
        state.values[GENERIC_CONFIG] = _text(form, GENERIC_CONFIG)
        new = _read_json(form, GENERIC_CONFIG, "Settings", state)
        changes: dict[str, Any] = {**{key: None for key in info.config}, **new}
    else:
        values = read_fields(spec.config, form, state)
        changes = {item.name: values.get(item.name) for item in spec.config}
    if not state.ok:
        data = await run_in_threadpool(_detail_context, rt, destination_id, settings=state)
        return render(request, "destinations/detail.html", data, 400)
    try:
        await run_in_threadpool(
            partial(
                sync_catalog.configure_destination,
                rt.catalog,
                destination_id,
                changes,
                box=rt.secrets,
            )
        )
    except InvalidInput as exc:
        _settings_error(exc, spec, state)
        data = await run_in_threadpool(_detail_context, rt, destination_id, settings=state)
        return render(request, "destinations/detail.html", data, 400)
    _flash(request, "Settings saved. Check the connection to try them on the platform.")
    return RedirectResponse(f"/destinations/{destination_id}#configuration-settings", 303)


@router.post("/destinations/{destination_id}/reauthenticate")
async def reauthenticate(request: Request, destination_id: DestinationId) -> Response:
    """New credentials (R21). Empty inputs keep the stored value; with the check ticked the
    merged credentials are tried first and nothing changes unless they work."""
    rt = runtime_of(request)
    form = await request.form()
    info = await run_in_threadpool(sync_catalog.get_destination, rt.catalog, destination_id)
    spec = platform_form(info.platform)
    state = FormState()
    check = _text(form, "check") in ("on", "true", "1")
    if spec.generic:
        new = _read_json(form, GENERIC_CREDENTIALS, "Credentials", state)
    else:
        new = read_fields(spec.credentials, form, state, require=False)
    if state.ok and not new:
        first = spec.credentials[0] if spec.credentials else None
        target = first.input_name if first else GENERIC_CREDENTIALS
        state.error(target, f"enter the new {first.label.lower() if first else 'credentials'}")

    def run() -> bool:
        stored = sync_catalog.destination_credentials(rt.catalog, rt.secrets, info.id)
        merged = {**stored, **new}
        if check:
            try:
                try_credentials(info.platform, info.name, merged, info.config)
            except (SegmintError, httpx.HTTPError) as exc:
                first = spec.credentials[0].input_name if spec.credentials else GENERIC_CREDENTIALS
                explain_check_failure(exc, spec, state, first_credential=first)
                return False
        sync_catalog.reauthenticate_destination(rt.catalog, rt.secrets, info.id, merged)
        return True

    if state.ok and await run_in_threadpool(run):
        _flash(
            request,
            f"{info.name} is re-authenticated and active. Changes that were waiting go out with "
            "the next sync (or an Instant Sync).",
        )
        return RedirectResponse(f"/destinations/{destination_id}#configuration-settings", 303)
    data = await run_in_threadpool(_detail_context, rt, destination_id, reauth=state)
    data["reauth_check"] = check
    return render(request, "destinations/detail.html", data, 400)


@router.post("/destinations/{destination_id}/check")
async def check_connection(request: Request, destination_id: DestinationId) -> Response:
    """Try the stored credentials on the platform now."""
    rt = runtime_of(request)
    ctx = runner.SyncContext.of(rt, retry=CHECK_RETRY)

    def run() -> tuple[str, str]:
        try:
            info = runner.check_destination(ctx, destination_id)
        except AuthExpired as exc:
            return exc.message, "error"
        except NotFound:
            raise
        except (SegmintError, httpx.HTTPError) as exc:
            info = sync_catalog.get_destination(rt.catalog, destination_id)
            spec = platform_form(info.platform)
            state = FormState()
            explain_check_failure(exc, spec, state, first_credential=None, can_skip=False)
            return state.message, "error"
        return f"The connection to {info.label} works: {info.name} is {info.status}.", "ok"

    message, kind = await run_in_threadpool(run)
    _flash(request, message, kind)
    return RedirectResponse(f"/destinations/{destination_id}#configuration-settings", 303)


@router.post("/destinations/{destination_id}/disable")
async def disable(request: Request, destination_id: DestinationId) -> Response:
    rt = runtime_of(request)
    info = await run_in_threadpool(sync_catalog.disable_destination, rt.catalog, destination_id)
    _flash(request, f"{info.name} is disabled: no audience syncs to it until you enable it.")
    return RedirectResponse(f"/destinations/{destination_id}#configuration-settings", 303)


@router.post("/destinations/{destination_id}/enable")
async def enable(request: Request, destination_id: DestinationId) -> Response:
    rt = runtime_of(request)
    info = await run_in_threadpool(sync_catalog.enable_destination, rt.catalog, destination_id)
    _flash(request, f"{info.name} is enabled: its audiences sync again after each refresh.")
    return RedirectResponse(f"/destinations/{destination_id}#configuration-settings", 303)
