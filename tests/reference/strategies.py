"""Hypothesis strategies: random audience definitions and random warehouse rows.

The pools below are small and overlap on purpose, so that random conditions often match
random data (a filter on ``plan = "pro"`` finds events whose ``plan`` is ``"pro"``, ``"Pro"``,
``"pro\\n"``, ``19.99`` ...). Event timestamps cluster around the instants where a mistake
shows: the bounds of the definition's own windows (exactly, ±1 µs, ±1 s, ±1 h ...), ``as_of``,
daylight-saving changes, and each other plus or minus a sequence's ``within`` span.

:func:`scenarios` draws everything one differential example needs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from segmint.definitions import (
    AbsoluteWindow,
    CalendarWindow,
    Definition,
    RelativeWindow,
    SequenceCondition,
    TraitCondition,
    iter_nodes,
    parse_definition,
)
from tests.reference.evaluator import (
    instant_to_local,
    local_to_instant,
    utc_naive,
    window_bounds,
)

Data = dict[str, Any]
Draw = Callable[[st.SearchStrategy[Any]], Any]

# --- pools -------------------------------------------------------------------------------------

TIMEZONES = (
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Asia/Kolkata",
    "America/Sao_Paulo",  # until 2019 its DST began at local midnight: a midnight that never was
)

# Instants (naive UTC) where the calendar is interesting in some zone.
INTERESTING_INSTANTS = (
    dt.datetime(2024, 3, 10, 7, 0),  # New York springs forward (02:00 → 03:00)
    dt.datetime(2024, 11, 3, 5, 30),  # New York 01:30, first time
    dt.datetime(2024, 11, 3, 6, 30),  # New York 01:30, second time
    dt.datetime(2024, 3, 31, 1, 0),  # Berlin springs forward
    dt.datetime(2024, 10, 27, 0, 30),  # Berlin 02:30, first time
    dt.datetime(2024, 10, 27, 1, 30),  # Berlin 02:30, second time
    dt.datetime(2018, 11, 4, 3, 0),  # São Paulo: 00:00 → 01:00
    dt.datetime(2025, 3, 31, 12, 0),  # month-end: 31 March − 1 month = 28 February
    dt.datetime(2024, 3, 31, 12, 0),  # ... = 29 February in a leap year
    dt.datetime(2024, 2, 29, 23, 0),
    dt.datetime(2025, 1, 1, 0, 0),
    dt.datetime(2024, 12, 31, 23, 59, 59, 999999),
    dt.datetime(2024, 4, 1, 4, 0),  # Monday 00:00 in New York
    dt.datetime(2024, 6, 17, 12, 0),
)

SMALL_JITTERS = (
    dt.timedelta(0),
    dt.timedelta(microseconds=1),
    dt.timedelta(microseconds=-1),
    dt.timedelta(seconds=1),
    dt.timedelta(seconds=-1),
    dt.timedelta(minutes=-30),
    dt.timedelta(hours=1),
    dt.timedelta(hours=-1),
    dt.timedelta(days=1),
    dt.timedelta(days=-1),
)

EVENT_NAMES = (
    "product_viewed",
    "order_completed",
    "Order Completed",
    "café_visité",
    "注文",
    "page",
    'it\'s "quoted"',
    "cart%_added",
)

TEXTS = (
    "pro",
    "Pro",
    "PRO",
    "pro\n",
    "free",
    "",
    "café",
    "CAFÉ",
    "Straße",
    "straße",
    "a%b",
    "a_b",
    "x'y",
    "日本",
    "🎉 party",
    "back\\slash",
    "19.99",
    "true",
    "US",
    "us",
    "google",
    "Google",
)
NEEDLES = ("o", "O", "é", "É", "%", "_", "'", "pro", "PR", "ß", "\\", "日", "9.", "")
NUMBERS = (0, 1, -1, 2.5, 3, 19.99, 100, 1000)
NUMERIC_TEXTS = ("19.99", "3", "1e3", "-2.5", "007", "1e400", "0.0", "100")
ALMOST_NUMERIC_TEXTS = (" 5", "+5", "5.", ".5", "NaN", "inf", "1,5", "0x10", "1e", "--1")
REGEXES = (
    "^pro$",
    "pro",
    "^g",
    "e$",
    "[A-Z]",
    "^[a-z_]+$",
    "a.b",
    "(?:oo|gl)+",
    "^$",
    "é",
    "\\.",
    "%",
    "x\\'y",
    "[0-9]+",
    "^(?:us|de)$",
    "o{2,}",
    "r.?o",
    "[^a-z]",
)
PROPERTY_PATHS = ("price", "revenue", "plan", "flag", "$currency", "item-id", "address.city", "a.b")
TRAIT_PATHS = ("plan", "age", "score", "vip", "signup_at", "gender", "address.city", "$tier")

UTM_PARAMETERS = ("source", "medium", "campaign", "term", "content")
PROFILE_TEXT_COLUMNS = (
    "country",
    "region",
    "city",
    "language",
    "browser",
    "os",
    "device_type",
)

# --- values ------------------------------------------------------------------------------------

json_scalars: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from(NUMBERS),
    st.sampled_from(NUMERIC_TEXTS),
    st.sampled_from(ALMOST_NUMERIC_TEXTS),
    st.booleans(),
    st.sampled_from(("true", "false", "True")),
    st.sampled_from(TEXTS),
    st.none(),
)
json_values: st.SearchStrategy[Any] = st.one_of(
    json_scalars,
    json_scalars,
    json_scalars,
    st.just([1, "pro"]),
    st.just({"k": "pro"}),
)
column_texts: st.SearchStrategy[str | None] = st.one_of(st.none(), st.sampled_from(TEXTS))


def properties() -> st.SearchStrategy[dict[str, Any] | None]:
    """An event's properties: some of the pooled keys (nested ones too), or no JSON at all."""
    flat = st.dictionaries(
        st.sampled_from(("price", "revenue", "plan", "flag", "$currency", "item-id", "a.b")),
        json_values,
        max_size=5,
    )
    nested = st.fixed_dictionaries(
        {},
        optional={
            "address": st.one_of(
                st.fixed_dictionaries({}, optional={"city": json_values}), json_scalars
            ),
            "a": st.fixed_dictionaries({}, optional={"b": json_values}),
        },
    )
    return st.one_of(
        st.none(),
        st.builds(lambda a, b: {**a, **b}, flat, nested),
    )


def traits(date_texts: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """A profile's traits, with dates and birthdays near the interesting instants."""
    dates = st.sampled_from(date_texts) if date_texts else st.just("2024-03-10")
    return st.fixed_dictionaries(
        {},
        optional={
            "plan": json_values,
            "age": st.one_of(st.sampled_from((30, 17.5, "42", "abc", -3)), json_values),
            "birthday": st.one_of(dates, st.sampled_from(("1990-02-29", "2000-02-29"))),
            "score": json_values,
            "vip": st.one_of(st.booleans(), json_values),
            "signup_at": st.one_of(dates, json_values),
            "gender": st.one_of(st.sampled_from(("female", "Female", "male", "x")), json_values),
            "address": st.fixed_dictionaries({}, optional={"city": json_values}),
            "$tier": json_values,
        },
    )


# --- windows and comparisons ------------------------------------------------------------------


def windows(as_of: dt.datetime, timezone: str) -> st.SearchStrategy[Data]:
    relative = st.one_of(
        st.builds(
            lambda n, unit: {"type": "relative", "last": n, "unit": unit},
            st.sampled_from((1, 2, 3, 7, 30)),
            st.sampled_from(("minutes", "hours", "days", "weeks", "months")),
        ),
        st.builds(
            lambda to, extra, unit: {
                "type": "relative",
                "from_ago": to + extra,
                "to_ago": to,
                "unit": unit,
            },
            st.integers(0, 7),
            st.integers(1, 7),
            st.sampled_from(("minutes", "hours", "days", "weeks", "months")),
        ),
    )
    calendar = st.builds(
        lambda unit, to, extra, explicit: {
            "type": "calendar",
            "unit": unit,
            "from_ago": to + extra,
            **({"to_ago": to} if explicit else {}),
        },
        st.sampled_from(("day", "week", "month", "year")),
        st.integers(0, 3),
        st.integers(0, 3),
        st.booleans(),
    )
    return st.one_of(relative, calendar, absolute_windows(as_of, timezone))


def _point_texts(as_of: dt.datetime, timezone: str) -> st.SearchStrategy[tuple[dt.datetime, str]]:
    """(instant, text) of a window end near ``as_of``: a date, a local or an aware date-time."""

    @st.composite
    def build(draw: Draw) -> tuple[dt.datetime, str]:
        local = instant_to_local(as_of, timezone)
        shift = draw(
            st.sampled_from(
                (
                    dt.timedelta(0),
                    dt.timedelta(days=-1),
                    dt.timedelta(days=-2),
                    dt.timedelta(days=1),
                    dt.timedelta(hours=-1),
                    dt.timedelta(days=-31),
                )
            )
        )
        moment = local + shift
        form = draw(st.sampled_from(("date", "local", "aware")))
        if form == "date":
            day = moment.date()
            return local_to_instant(dt.datetime(day.year, day.month, day.day), timezone), (
                day.isoformat()
            )
        if form == "local":
            moment = moment.replace(microsecond=0)
            return local_to_instant(moment, timezone), moment.isoformat()
        instant = (as_of + shift).replace(microsecond=0)
        offset = dt.timezone(dt.timedelta(hours=draw(st.sampled_from((0, 2, -5)))))
        aware = instant.replace(tzinfo=dt.UTC).astimezone(offset)
        return instant, aware.isoformat()

    return build()


def absolute_windows(as_of: dt.datetime, timezone: str) -> st.SearchStrategy[Data]:
    @st.composite
    def build(draw: Draw) -> Data:
        points = sorted(
            draw(st.lists(_point_texts(as_of, timezone), min_size=1, max_size=2)),
            key=lambda point: point[0],
        )
        if len(points) == 2 and points[0][0] < points[1][0]:
            return {"type": "absolute", "from": points[0][1], "to": points[1][1]}
        side = draw(st.sampled_from(("from", "to")))
        return {"type": "absolute", side: points[0][1]}

    return build()


def _case(draw: Draw) -> dict[str, bool]:
    return {"case_insensitive": True} if draw(st.booleans()) else {}


def text_comparisons() -> st.SearchStrategy[Data]:
    """A comparison that fits a text column (UTM, geo, technology, gender)."""

    @st.composite
    def build(draw: Draw) -> Data:
        op = draw(
            st.sampled_from(
                (
                    "is_set",
                    "is_not_set",
                    "equals",
                    "not_equals",
                    "in",
                    "not_in",
                    "contains",
                    "not_contains",
                    "starts_with",
                    "ends_with",
                    "matches_regex",
                )
            )
        )
        if op in ("is_set", "is_not_set"):
            return {"operator": op}
        if op in ("equals", "not_equals"):
            return {"operator": op, "value": draw(st.sampled_from(TEXTS)), **_case(draw)}
        if op in ("in", "not_in"):
            values = draw(st.lists(st.sampled_from(TEXTS), min_size=1, max_size=3))
            return {"operator": op, "value": values, **_case(draw)}
        if op == "matches_regex":
            return {"operator": op, "value": draw(st.sampled_from(REGEXES)), **_case(draw)}
        needle = draw(st.one_of(st.sampled_from(NEEDLES), st.sampled_from(TEXTS)))
        return {"operator": op, "value": needle, **_case(draw)}

    return build()


def number_comparisons(*, with_lists: bool = True) -> st.SearchStrategy[Data]:
    """A comparison with numbers (age, properties, traits; aggregates without lists)."""

    @st.composite
    def build(draw: Draw) -> Data:
        ops = ["equals", "not_equals", "gt", "gte", "lt", "lte", "between"]
        if with_lists:
            ops += ["in", "not_in"]
        op = draw(st.sampled_from(ops))
        if op == "between":
            low, high = sorted(draw(st.lists(st.sampled_from(NUMBERS), min_size=2, max_size=2)))
            return {"operator": op, "value": [low, high]}
        if op in ("in", "not_in"):
            values = draw(st.lists(st.sampled_from(NUMBERS), min_size=1, max_size=3))
            return {"operator": op, "value": values}
        return {"operator": op, "value": draw(st.sampled_from(NUMBERS))}

    return build()


def json_comparisons(as_of: dt.datetime, timezone: str, *, dates: bool) -> st.SearchStrategy[Data]:
    """A comparison on a JSON field: text, number, boolean, set-ness; dates for traits."""
    options = [
        text_comparisons(),
        number_comparisons(),
        st.builds(
            lambda op, flag: {"operator": op, "value": flag},
            st.sampled_from(("equals", "not_equals")),
            st.booleans(),
        ),
    ]
    if dates:
        options.append(date_comparisons(as_of, timezone))
    return st.one_of(*options)


def date_comparisons(as_of: dt.datetime, timezone: str) -> st.SearchStrategy[Data]:
    before_after = st.builds(
        lambda op, point: {"operator": op, "value": point[1]},
        st.sampled_from(("before", "after")),
        _point_texts(as_of, timezone),
    )
    in_window = st.builds(
        lambda window: {"operator": "in_window", "value": window}, windows(as_of, timezone)
    )
    return st.one_of(before_after, in_window)


# --- conditions and definitions ---------------------------------------------------------------


def _maybe(draw: Draw, strategy: st.SearchStrategy[Any]) -> Any:
    return draw(strategy) if draw(st.booleans()) else None


def _negate(draw: Draw) -> dict[str, bool]:
    return {"negate": True} if draw(st.integers(0, 3)) == 0 else {}


def _filters(draw: Draw, as_of: dt.datetime, timezone: str) -> list[Data]:
    comparison = json_comparisons(as_of, timezone, dates=False)
    return [
        {"property": draw(st.sampled_from(PROPERTY_PATHS)), **draw(comparison)}
        for _ in range(draw(st.integers(0, 2)))
    ]


def _window_field(draw: Draw, as_of: dt.datetime, timezone: str) -> dict[str, Data]:
    window = _maybe(draw, windows(as_of, timezone))
    return {} if window is None else {"window": window}


def _step(draw: Draw, as_of: dt.datetime, timezone: str) -> Data:
    return {"event": draw(st.sampled_from(EVENT_NAMES)), "filters": _filters(draw, as_of, timezone)}


def conditions(
    as_of: dt.datetime, timezone: str, audience_names: tuple[str, ...]
) -> st.SearchStrategy[Data]:
    """One condition of any kind, as plain data."""

    @st.composite
    def build(draw: Draw) -> Data:
        kinds = ["event", "aggregate", "sequence", "trait", "utm", "demographic", "technology"]
        if audience_names:
            kinds.append("audience")
        kind = draw(st.sampled_from(kinds))
        node: Data = {"kind": kind, **_negate(draw)}
        if kind == "event":
            node |= _step(draw, as_of, timezone)
            node["count"] = {
                "operator": draw(st.sampled_from(("at_least", "at_most", "exactly"))),
                "value": draw(st.integers(0, 3)),
            }
            node["performed"] = draw(st.booleans())
            node |= _window_field(draw, as_of, timezone)
        elif kind == "aggregate":
            node |= _step(draw, as_of, timezone)
            node["property"] = draw(st.sampled_from(PROPERTY_PATHS))
            node["function"] = draw(st.sampled_from(("sum", "avg", "min", "max", "count_distinct")))
            node |= draw(number_comparisons(with_lists=False))
            node |= _window_field(draw, as_of, timezone)
        elif kind == "sequence":
            node["first"] = _step(draw, as_of, timezone)
            node["then"] = _step(draw, as_of, timezone)
            node["followed"] = draw(st.booleans())
            within = _maybe(
                draw,
                st.builds(
                    lambda amount, unit: {"amount": amount, "unit": unit},
                    st.integers(1, 3),
                    st.sampled_from(("minutes", "hours", "days", "weeks")),
                ),
            )
            if within is not None:
                node["within"] = within
            node |= _window_field(draw, as_of, timezone)
        elif kind == "trait":
            node["trait"] = draw(st.sampled_from(TRAIT_PATHS))
            node |= draw(json_comparisons(as_of, timezone, dates=True))
        elif kind == "utm":
            node["parameter"] = draw(st.sampled_from(UTM_PARAMETERS))
            node["touch"] = draw(st.sampled_from(("first", "last", "any")))
            node |= draw(text_comparisons())
            if node["touch"] == "any":
                node |= _window_field(draw, as_of, timezone)
        elif kind == "demographic":
            node["field"] = draw(
                st.sampled_from(("country", "region", "city", "language", "age", "gender"))
            )
            if node["field"] == "age":
                node |= draw(
                    st.one_of(
                        number_comparisons(),
                        st.sampled_from(({"operator": "is_set"}, {"operator": "is_not_set"})),
                    )
                )
            else:
                node |= draw(text_comparisons())
        elif kind == "technology":
            node["field"] = draw(st.sampled_from(("browser", "os", "device_type")))
            node |= draw(text_comparisons())
        else:
            node["audience"] = draw(st.sampled_from(audience_names))
            node["member"] = draw(st.booleans())
        return node

    return build()


def nodes(
    as_of: dt.datetime, timezone: str, audience_names: tuple[str, ...], depth: int
) -> st.SearchStrategy[Data]:
    """A condition, or (while ``depth`` allows) an and/or group of 1–4 nodes."""
    leaf = conditions(as_of, timezone, audience_names)
    if depth <= 0:
        return leaf

    @st.composite
    def group(draw: Draw) -> Data:
        children = draw(
            st.lists(nodes(as_of, timezone, audience_names, depth - 1), min_size=1, max_size=4)
        )
        return {
            "kind": draw(st.sampled_from(("and", "or"))),
            "conditions": children,
            **_negate(draw),
        }

    return st.one_of(leaf, group())


def definitions(
    as_of: dt.datetime,
    timezone: str,
    audiences: dict[str, Definition] | None = None,
    *,
    max_depth: int = 3,
) -> st.SearchStrategy[Definition]:
    """A valid definition (checked by the model's own validation) using ``audiences``."""
    audiences = audiences or {}
    names = tuple(sorted(audiences))
    return st.builds(
        lambda root: parse_definition({"version": 1, "root": root}, resolve_audience=audiences.get),
        nodes(as_of, timezone, names, max_depth),
    )


# --- instants ----------------------------------------------------------------------------------


def as_of_instants() -> st.SearchStrategy[dt.datetime]:
    """``as_of`` values near DST changes, month ends and midnights (naive UTC)."""
    jitters = st.one_of(
        st.sampled_from(SMALL_JITTERS),
        st.sampled_from((dt.timedelta(days=7), dt.timedelta(days=-31), dt.timedelta(days=3))),
        st.integers(-36 * 3600, 36 * 3600).map(lambda s: dt.timedelta(seconds=s)),
    )
    return st.builds(
        lambda base, shift: base + shift, st.sampled_from(INTERESTING_INSTANTS), jitters
    )


def local_midnight(as_of: dt.datetime, timezone: str) -> dt.datetime:
    day = instant_to_local(as_of, timezone).date()
    return local_to_instant(dt.datetime(day.year, day.month, day.day), timezone)


def _windows_of(definition: Definition) -> Iterator[Any]:
    for _, node in iter_nodes(definition.root):
        window = getattr(node, "window", None)
        if window is not None:
            yield window
        if isinstance(node, TraitCondition) and isinstance(
            node.value, RelativeWindow | CalendarWindow | AbsoluteWindow
        ):
            yield node.value


def anchors(
    definitions_: list[Definition], as_of: dt.datetime, timezone: str
) -> tuple[list[dt.datetime], list[dt.timedelta]]:
    """Instants worth placing events at (window bounds, as_of, DST changes), and the
    spans worth placing events apart (sequence ``within``)."""
    points = {as_of, local_midnight(as_of, timezone)}
    points.update(
        base for base in INTERESTING_INSTANTS if abs(base - as_of) < dt.timedelta(days=40)
    )
    spans: set[dt.timedelta] = set()
    for definition in definitions_:
        for window in _windows_of(definition):
            start, end = window_bounds(window, as_of, timezone)
            points.update(p for p in (start, end) if p is not None)
        for _, node in iter_nodes(definition.root):
            if isinstance(node, SequenceCondition) and node.within is not None:
                spans.add(node.within.to_timedelta())
    return sorted(points), sorted(spans)


def date_texts(points: list[dt.datetime], timezone: str) -> list[str]:
    """Trait texts that are (or almost are) dates near the anchors."""
    texts = ["2024-02-30", "2024-3-1", "2024-03-10T25:00:00", "not a date"]
    for point in points:
        local = instant_to_local(point, timezone)
        texts.append(local.date().isoformat())
        texts.append(point.strftime("%Y-%m-%dT%H:%M:%S"))
        texts.append(point.strftime("%Y-%m-%d %H:%M:%S.%f") + "Z")
        texts.append(point.strftime("%Y-%m-%dT%H:%M:%S") + "+02:00")
        texts.append(local.replace(year=local.year - 30).date().isoformat())
    return texts


# --- rows ----------------------------------------------------------------------------------------


@dataclass
class Scenario:
    """One differential example: data, a definition, the audiences it may use, and the clock."""

    as_of: dt.datetime
    timezone: str
    definition: Definition
    audiences: dict[str, Definition]
    profiles: list[dict[str, Any]]
    events: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    def __repr__(self) -> str:  # what hypothesis prints for a falsifying example
        lines = [
            f"as_of={self.as_of.isoformat()} timezone={self.timezone}",
            f"definition={self.definition.model_dump_json(by_alias=True, exclude_none=True)}",
        ]
        for name, audience in self.audiences.items():
            lines.append(
                f"audience {name}={audience.model_dump_json(by_alias=True, exclude_none=True)}"
            )
        lines += [f"profile {p!r}" for p in self.profiles]
        lines += [f"event {e!r}" for e in self.events]
        return "Scenario(\n  " + "\n  ".join(lines) + "\n)"


def _timestamps(
    draw: Draw, count: int, points: list[dt.datetime], spans: list[dt.timedelta]
) -> list[dt.datetime]:
    far = st.integers(-40 * 86400, 2 * 86400).map(lambda s: dt.timedelta(seconds=s))
    jitter = st.one_of(st.sampled_from(SMALL_JITTERS), st.sampled_from(SMALL_JITTERS), far)
    stamps: list[dt.datetime] = []
    for _ in range(count):
        if stamps and spans and draw(st.integers(0, 2)) == 0:
            base = draw(st.sampled_from(stamps))
            span = draw(st.sampled_from(spans))
            delta = draw(
                st.sampled_from(
                    (
                        span,
                        -span,
                        span + dt.timedelta(microseconds=1),
                        span - dt.timedelta(microseconds=1),
                    )
                )
            )
            stamps.append(base + delta)
        elif stamps and draw(st.integers(0, 5)) == 0:
            stamps.append(draw(st.sampled_from(stamps)))  # two events at the same instant
        else:
            stamps.append(draw(st.sampled_from(points)) + draw(jitter))
    return stamps


def _profile(draw: Draw, profile_id: int, dates: list[str]) -> dict[str, Any]:
    profile: dict[str, Any] = {"profile_id": profile_id, "traits": draw(traits(dates))}
    for name in PROFILE_TEXT_COLUMNS:
        profile[name] = draw(column_texts)
    for touch in ("first", "last"):
        for parameter in UTM_PARAMETERS:
            profile[f"{touch}_utm_{parameter}"] = draw(column_texts)
    return profile


def _event(draw: Draw, profile_ids: list[int], timestamp: dt.datetime) -> dict[str, Any]:
    name = draw(st.sampled_from(EVENT_NAMES))
    orphan = draw(st.integers(0, 19)) == 0  # an event whose profile is not in the universe
    event: dict[str, Any] = {
        "profile_id": 999_999 if orphan else draw(st.sampled_from(profile_ids)),
        "event": name,
        "type": "page" if name == "page" else "track",
        "timestamp": timestamp,
        "properties": draw(properties()),
    }
    for parameter in UTM_PARAMETERS:
        event[f"utm_{parameter}"] = draw(column_texts)
    return event


def rows(
    definitions_: list[Definition], as_of: dt.datetime, timezone: str
) -> st.SearchStrategy[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """(profiles, events) with timestamps and date traits clustered near the anchors."""

    @st.composite
    def build(draw: Draw) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        points, spans = anchors(definitions_, as_of, timezone)
        dates = date_texts(points, timezone)
        count = draw(st.integers(1, 30))
        profile_ids = list(range(1, count + 1))
        if draw(st.integers(0, 9)) == 0:
            profile_ids[-1] = 2**40  # ids are BIGINT
        profiles = [_profile(draw, pid, dates) for pid in profile_ids]
        stamps = _timestamps(draw, draw(st.integers(0, 60)), points, spans)
        events = [_event(draw, profile_ids, stamp) for stamp in stamps]
        return profiles, events

    return build()


@st.composite
def scenarios(draw: Draw, *, max_depth: int = 3) -> Scenario:
    """Everything one differential example needs, drawn so that conditions meet the data."""
    timezone = draw(st.sampled_from(TIMEZONES))
    as_of = utc_naive(draw(as_of_instants()))
    audiences: dict[str, Definition] = {}
    for name in draw(st.sampled_from(((), ("buyers",), ("buyers", "fans")))):
        audiences[name] = draw(definitions(as_of, timezone, dict(audiences), max_depth=1))
    definition = draw(definitions(as_of, timezone, audiences, max_depth=max_depth))
    profiles, events = draw(rows([definition, *audiences.values()], as_of, timezone))
    return Scenario(as_of, timezone, definition, audiences, profiles, events)
