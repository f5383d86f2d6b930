"""Audience tests as code (PRODUCT B6): fixture files beside audience files, run by
``segmint test DIR`` — locally or in a user's CI.

``abandoned_checkout_30d.test.yaml`` beside ``abandoned_checkout_30d.yaml``::

    audience: abandoned_checkout_30d.yaml   # default: this file's name without .test
    timezone: Europe/Paris                  # default UTC
    events:                                 # Segment-spec messages, as the API takes them
      - {type: track, event: checkout_started, userId: ann, timestamp: "2025-06-01T10:00:00Z"}
    cases:
      - as_of: "2025-06-03T00:00:00Z"
        members: [ann]                      # user ids, anonymous ids or emails
        not_members: [bob]

The events go through the real collection pipeline (validation, enrichment, identity) into a
private in-memory warehouse, and the audience's compiled SQL is evaluated at each ``as_of``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from segmint.audiences.files import AudienceFile, audience_from_data, read_yaml
from segmint.collect.enrich import Enricher
from segmint.collect.pipeline import Collector
from segmint.collect.validate import parse_timestamp, validate_message
from segmint.compiler import compile_definition
from segmint.definitions import Definition
from segmint.errors import InvalidInput, SegmintError
from segmint.warehouse import open_warehouse
from segmint.warehouse.engine import Engine

TEST_SUFFIXES = (".test.yaml", ".test.yml", ".test.json")
_KEYS = {"audience", "timezone", "events", "cases"}


@dataclass
class CaseResult:
    """One case: which expectations failed (empty when it passed)."""

    index: int
    as_of: datetime
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class FixtureResult:
    """One test file: its cases, or the error that stopped it from running."""

    path: Path
    audience: Path | None = None
    cases: list[CaseResult] = field(default_factory=list)
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and all(case.passed for case in self.cases)


def find_test_files(directory: Path) -> list[Path]:
    """Every fixture file under ``directory`` (recursively), sorted."""
    if not directory.exists():
        raise InvalidInput(f"no such directory: {directory}")
    if directory.is_file():
        return [directory]
    return sorted(p for p in directory.rglob("*") if p.name.endswith(TEST_SUFFIXES))


def _audience_path(test_path: Path, data: dict[str, Any]) -> Path:
    if "audience" in data:
        return test_path.parent / str(data["audience"])
    stem = test_path.name
    for suffix in TEST_SUFFIXES:
        stem = stem.removesuffix(suffix)
    for extension in (".yaml", ".yml", ".json"):
        candidate = test_path.with_name(stem + extension)
        if candidate.exists():
            return candidate
    raise InvalidInput(f"no audience file {stem}.yaml beside it; name one with 'audience:'")


def _sibling_resolver(directory: Path) -> Callable[[str], Definition | None]:
    """Audience references resolve to the named audience files of the same directory."""
    cache: dict[str, Definition] | None = None

    def resolve(name: str) -> Definition | None:
        nonlocal cache
        if cache is None:
            cache = {}
            for path in sorted(directory.glob("*.y*ml")) + sorted(directory.glob("*.json")):
                if path.name.endswith(TEST_SUFFIXES):
                    continue
                try:
                    data = read_yaml(path)
                    if isinstance(data, dict) and isinstance(data.get("name"), str):
                        cache[data["name"]] = audience_from_data(data, path).definition
                except SegmintError:
                    continue
        return cache.get(name)

    return resolve


def _load_events(engine: Engine, events: Any) -> Collector:
    if not isinstance(events, list):
        raise InvalidInput("events must be a list of Segment messages", path="events")
    collector = Collector(engine, enricher=Enricher(None))
    messages = []
    for index, raw in enumerate(events):
        received = datetime.now(UTC).replace(tzinfo=None)
        if isinstance(raw, dict) and isinstance(raw.get("timestamp"), str):
            received = parse_timestamp(raw["timestamp"], f"events[{index}].timestamp") or received
        messages.append(validate_message(raw, received_at=received, path=f"events[{index}]."))
    collector.ingest(messages)
    return collector


def _profiles_of(engine: Engine, identifiers: list[str]) -> dict[str, int | None]:
    found: dict[str, int | None] = {}
    for identifier in identifiers:
        rows = engine.rows(
            "SELECT profile_id FROM identities WHERE id_value = ? OR id_value = lower(?) "
            "ORDER BY id_type = 'user_id' DESC LIMIT 1",
            [identifier, identifier],
        )
        found[identifier] = rows[0][0] if rows else None
    return found


def _run_case(
    engine: Engine,
    audience: AudienceFile,
    case: Any,
    index: int,
    timezone: str,
    resolve: Callable[[str], Definition | None],
) -> CaseResult:
    where = f"cases[{index}]"
    if not isinstance(case, dict) or "as_of" not in case:
        raise InvalidInput(f"{where} needs as_of, members and/or not_members", path=where)
    as_of = parse_timestamp(str(case["as_of"]), f"{where}.as_of")
    assert as_of is not None
    result = CaseResult(index, as_of)
    query = compile_definition(
        audience.definition, as_of=as_of, timezone=timezone, resolve_audience=resolve
    )
    members = {row[0] for row in engine.rows(query)}
    expected_in = [str(x) for x in case.get("members") or []]
    expected_out = [str(x) for x in case.get("not_members") or []]
    profiles = _profiles_of(engine, expected_in + expected_out)
    for identifier in expected_in:
        profile = profiles[identifier]
        if profile is None:
            result.failures.append(f"{identifier!r} is not in the fixture's events")
        elif profile not in members:
            result.failures.append(f"{identifier!r} should be a member but is not")
    for identifier in expected_out:
        profile = profiles[identifier]
        if profile is not None and profile in members:
            result.failures.append(f"{identifier!r} should not be a member but is")
    return result


def run_test_file(path: Path) -> FixtureResult:
    """Run one fixture file. Problems with the files themselves are reported as the
    result's ``error`` (with the field at fault), never raised."""
    result = FixtureResult(path)
    try:
        data = read_yaml(path)
        if not isinstance(data, dict):
            raise InvalidInput("a test file is an object with events and cases")
        unknown = set(data) - _KEYS
        if unknown:
            raise InvalidInput(
                f"unknown field(s) {', '.join(sorted(unknown))}; a test file has "
                f"{', '.join(sorted(_KEYS))}"
            )
        timezone = str(data.get("timezone") or "UTC")
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidInput(f"unknown time zone {timezone!r}", path="timezone") from None
        result.audience = _audience_path(path, data)
        resolve = _sibling_resolver(result.audience.parent)
        audience = audience_from_data(
            read_yaml(result.audience), result.audience, resolve_audience=resolve
        )
        cases = data.get("cases")
        if not isinstance(cases, list) or not cases:
            raise InvalidInput("cases must be a non-empty list", path="cases")
        engine = open_warehouse(None)
        try:
            _load_events(engine, data.get("events") or [])
            for index, case in enumerate(cases):
                result.cases.append(_run_case(engine, audience, case, index, timezone, resolve))
        finally:
            engine.close()
    except SegmintError as exc:
        where = f" ({exc.path})" if exc.path else ""
        result.error = f"{exc.message}{where}"
    return result


def run_tests(directory: Path) -> list[FixtureResult]:
    """Run every fixture file under ``directory``."""
    return [run_test_file(path) for path in find_test_files(directory)]
