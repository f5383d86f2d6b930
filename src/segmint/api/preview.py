"""``POST /api/v1/audiences/preview`` (Run Query, R5 / R28) and ``POST /api/v1/audiences/explain``
(explain membership, B1): thin HTTP wrappers over :mod:`segmint.audiences.run` and
:mod:`segmint.audiences.explain`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from segmint.api.auth import require_api_key
from segmint.audiences.explain import explain_membership
from segmint.audiences.run import run_definition
from segmint.catalog import Catalog
from segmint.catalog.models import Audience, AudienceVersion
from segmint.definitions.errors import DefinitionError
from segmint.definitions.model import Definition
from segmint.definitions.validation import AudienceResolver
from segmint.runtime import Runtime

router = APIRouter(prefix="/api/v1", tags=["audiences"], dependencies=[Depends(require_api_key)])

MAX_SAMPLE = 1000


class PreviewRequest(BaseModel):
    """A draft definition to run, optionally as of another instant."""

    model_config = ConfigDict(extra="forbid")

    definition: dict[str, Any]
    as_of: dt.datetime | None = Field(None, description="ISO instant; default now (UTC).")
    sample_size: Annotated[int, Field(ge=0, le=MAX_SAMPLE, strict=True)] = 20


class ExplainRequest(BaseModel):
    """A definition and the profile (id, user id, email or anonymous id) to explain."""

    model_config = ConfigDict(extra="forbid")

    definition: dict[str, Any]
    profile_id: StrictInt | StrictStr  # strict: true is not profile 1
    as_of: dt.datetime | None = Field(None, description="ISO instant; default now (UTC).")


@router.post("/audiences/preview", summary="Run a definition: size, sample, per-condition counts")
async def preview(body: PreviewRequest, request: Request) -> dict[str, Any]:
    """Size, a sample of members, every node's count and the AND / OR steps, and
    explanations when something matches nobody."""
    return await run_in_threadpool(_preview, request.app.state.runtime, body)


@router.post("/audiences/explain", summary="Why one profile is in or out of a definition")
async def explain(body: ExplainRequest, request: Request) -> dict[str, Any]:
    """Every node's true/false value for the profile, with the counts behind it."""
    return await run_in_threadpool(_explain, request.app.state.runtime, body)


def _preview(runtime: Runtime, body: PreviewRequest) -> dict[str, Any]:
    with _paths_in_body():
        result = run_definition(
            runtime.warehouse,
            body.definition,
            as_of=body.as_of or _now(),
            timezone=runtime.settings.timezone,
            resolve_audience=catalog_resolver(runtime.catalog),
            sample_size=body.sample_size,
        )
    return result.to_dict()


def _explain(runtime: Runtime, body: ExplainRequest) -> dict[str, Any]:
    with _paths_in_body():
        result = explain_membership(
            runtime.warehouse,
            body.definition,
            body.profile_id,
            as_of=body.as_of or _now(),
            timezone=runtime.settings.timezone,
            resolve_audience=catalog_resolver(runtime.catalog),
        )
    return {**result.to_dict(), "lines": result.lines()}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@contextmanager
def _paths_in_body() -> Iterator[None]:
    """Definition errors name their path in the request body (``definition.root...``)."""
    try:
        yield
    except DefinitionError as exc:
        path = f"definition.{exc.path}" if exc.path else "definition"
        raise DefinitionError(exc.reason, path=path) from None


def catalog_resolver(catalog: Catalog) -> AudienceResolver:
    """Audience name → the current version's definition of a saved, not deleted audience."""

    def resolve(name: str) -> Definition | None:
        with catalog.session() as session:
            row = session.execute(
                select(AudienceVersion.definition)
                .join(Audience, Audience.id == AudienceVersion.audience_id)
                .where(
                    Audience.name == name,
                    Audience.status != "deleted",
                    AudienceVersion.version == Audience.current_version,
                )
            ).first()
        if row is None:
            return None
        try:
            return Definition.model_validate_json(row[0])
        except ValueError:
            raise DefinitionError(
                f"the saved audience {name!r} has a definition this version cannot read"
            ) from None

    return resolve
