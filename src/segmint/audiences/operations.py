"""The verbs the REST API and the CLI share: each resolves an audience reference (id or
name), calls the lifecycle service, and refreshes where the verb implies it (activation
computes the audience at once)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from segmint.audiences import service
from segmint.audiences.impact import Impact, impact_preview
from segmint.audiences.recompute import recompute_history
from segmint.audiences.refresh import RefreshResult
from segmint.audiences.scheduler import default_owner, refresh_now
from segmint.audiences.service import AudienceInfo, DefinitionInput, as_definition
from segmint.catalog import Catalog
from segmint.errors import InvalidInput, NotFound
from segmint.warehouse.engine import Engine


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def resolve_ref(catalog: Catalog, ref: str | int, *, deleted: bool = False) -> AudienceInfo:
    """An audience by id (``12``) or name (``abandoned_checkout_30d``). A name means an
    audience that is not deleted, or with ``deleted`` (to restore one) the audience last
    deleted under that name when no other has it."""
    if isinstance(ref, int) or str(ref).isdigit():
        number = int(ref)
        if not 0 < number < 2**31:  # ids are 32-bit integers in every catalog database
            raise NotFound(
                f"there is no audience with id {ref}; `segmint audiences list` shows them"
            )
        return service.get(catalog, number)
    return service.get_by_name(catalog, str(ref), deleted=deleted)


@dataclass(frozen=True)
class Activation:
    """An activated audience and the refresh that computed it (``None`` when it failed;
    ``error`` then says why and the scheduler retries)."""

    audience: AudienceInfo
    refresh: RefreshResult | None
    error: str | None = None


def activate_audience(
    warehouse: Engine,
    catalog: Catalog,
    ref: str | int,
    *,
    name: str | None,
    refresh_interval: dt.timedelta | None,
    warmup: bool,
    by: str,
    timezone: str,
    now: dt.datetime | None = None,
    definition: DefinitionInput | None = None,
    on_refreshed: Callable[[int], None] | None = None,
) -> Activation:
    """Save & Activate: validate name and interval, make the audience active, and compute
    it now (static audiences are computed only this once)."""
    now = now or utcnow()
    audience = resolve_ref(catalog, ref)
    audience = service.activate(
        catalog,
        audience.id,
        name=name,
        refresh_interval=refresh_interval,
        warmup=warmup,
        by=by,
        now=now,
        definition=definition,
    )
    try:
        result = refresh_now(
            warehouse,
            catalog,
            audience.id,
            owner=default_owner(),
            now=now,
            timezone=timezone,
            trigger="activation",
        )
    except Exception as exc:  # recorded by the refresh; the scheduler will retry
        return Activation(service.get(catalog, audience.id), None, str(exc))
    if on_refreshed is not None:
        on_refreshed(audience.id)
    return Activation(service.get(catalog, audience.id), result)


def refresh_by_ref(
    warehouse: Engine,
    catalog: Catalog,
    ref: str | int,
    *,
    timezone: str,
    now: dt.datetime | None = None,
    on_refreshed: Callable[[int], None] | None = None,
) -> RefreshResult:
    """Force one refresh now (``segmint refresh NAME``); ``on_refreshed`` (the sync to its
    destinations) runs after it committed."""
    audience = resolve_ref(catalog, ref)
    result = refresh_now(
        warehouse,
        catalog,
        audience.id,
        owner=default_owner(),
        now=now or utcnow(),
        timezone=timezone,
        trigger="manual",
    )
    if on_refreshed is not None:
        on_refreshed(audience.id)
    return result


def preview_impact(
    warehouse: Engine,
    catalog: Catalog,
    ref: str | int,
    definition: DefinitionInput,
    *,
    timezone: str,
    now: dt.datetime | None = None,
) -> Impact:
    """Impact of replacing an audience's definition, before saving (B3)."""
    audience = resolve_ref(catalog, ref)
    if audience.status != "active":
        raise InvalidInput(
            f"{audience.label} is {audience.status}; impact previews compare with the members "
            "of an active audience — use preview instead"
        )
    new = as_definition(definition)
    resolver = service.audience_resolver(catalog)
    impact = impact_preview(
        warehouse,
        audience.id,
        new,
        as_of=now or utcnow(),
        timezone=timezone,
        resolve_audience=resolver,
    )
    from segmint.sync.catalog import list_links  # the sync layer builds on this one

    linked = [link.destination_name for link in list_links(catalog, audience_id=audience.id)]
    return dataclasses.replace(impact, destinations=linked)


ApplyChoice = Literal["from_now", "recompute_history"]


@dataclass(frozen=True)
class SavedEdit:
    """A saved edit: the new version, and how many past refreshes were recomputed."""

    audience: AudienceInfo
    version: int
    recomputed_refreshes: int = 0


def save_definition(
    warehouse: Engine,
    catalog: Catalog,
    ref: str | int,
    definition: DefinitionInput,
    *,
    by: str,
    timezone: str,
    note: str = "",
    apply: ApplyChoice = "from_now",
    now: dt.datetime | None = None,
) -> SavedEdit:
    """Save a new version. ``from_now``: members change at the next refresh, history stays.
    ``recompute_history``: also rewrite past membership as if the new definition had always
    applied (see :mod:`segmint.audiences.recompute`)."""
    audience = resolve_ref(catalog, ref)
    saved = service.update_definition(
        catalog, audience.id, definition, by=by, now=now or utcnow(), note=note
    )
    recomputed = 0
    if apply == "recompute_history":
        result = recompute_history(
            warehouse,
            audience.id,
            saved.definition,
            timezone=timezone,
            resolve_audience=service.audience_resolver(catalog),
        )
        recomputed = result.refreshes
    return SavedEdit(service.get(catalog, audience.id), saved.version, recomputed)
