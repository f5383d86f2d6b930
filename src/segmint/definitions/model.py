"""The audience definition model: a tree of conditions, readable as JSON or YAML.

A definition is ``{"version": 1, "root": NODE}``. A node is a group (``kind: and`` / ``kind: or``
with ``conditions``) or a condition (``kind: event | aggregate | sequence | trait | utm |
demographic | technology | audience``). Every node has an optional stable ``id`` (generated
from its position when missing) and ``negate``. What each node means on the data is stated
in docs/definition-semantics.md; this module only holds the shapes and their local checks.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

# --- small vocabularies -------------------------------------------------------------------

RelativeUnit = Literal["minutes", "hours", "days", "weeks", "months"]
CalendarUnit = Literal["day", "week", "month", "year"]
SpanUnit = Literal["minutes", "hours", "days", "weeks"]

STRING_OPERATORS = frozenset(
    {"contains", "not_contains", "starts_with", "ends_with", "matches_regex"}
)
NUMBER_OPERATORS = frozenset({"gt", "gte", "lt", "lte", "between"})
DATE_OPERATORS = frozenset({"before", "after", "in_window"})
SET_OPERATORS = frozenset({"is_set", "is_not_set"})
EQUALITY_OPERATORS = frozenset({"equals", "not_equals"})
LIST_OPERATORS = frozenset({"in", "not_in"})
RELATIVE_DATE_OPERATORS = frozenset({"in_window"})

Operator = Literal[
    "equals",
    "not_equals",
    "in",
    "not_in",
    "contains",
    "not_contains",
    "starts_with",
    "ends_with",
    "matches_regex",
    "gt",
    "gte",
    "lt",
    "lte",
    "between",
    "is_set",
    "is_not_set",
    "before",
    "after",
    "in_window",
]

# A property / trait path: dot-separated keys into the JSON object ("address.city").
PATH_PATTERN = r"^[A-Za-z0-9_\-$]+(\.[A-Za-z0-9_\-$]+)*$"
_PATH_RE = re.compile(PATH_PATTERN)
# Audience names (PRODUCT R6).
AUDIENCE_NAME_PATTERN = r"^[a-z][a-z0-9_]*$"

Scalar = str | bool | int | float


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --- windows ------------------------------------------------------------------------------


class RelativeWindow(_Model):
    """A rolling window ending at (or some units before) ``as_of``.

    ``{"type": "relative", "last": 30, "unit": "days"}`` is the last 30 days;
    ``{"type": "relative", "from_ago": 14, "to_ago": 7, "unit": "days"}`` is between 14 and 7
    days ago. Give either ``last`` or ``from_ago`` (with optional ``to_ago``, default 0).
    """

    type: Literal["relative"] = "relative"
    last: Annotated[int, Field(ge=1)] | None = None
    from_ago: Annotated[int, Field(ge=0)] | None = None
    to_ago: Annotated[int, Field(ge=0)] | None = None
    unit: RelativeUnit = "days"

    def bounds_ago(self) -> tuple[int, int]:
        """(start units ago, end units ago), start >= end."""
        if self.last is not None:
            return self.last, 0
        return self.from_ago or 0, self.to_ago or 0


class CalendarWindow(_Model):
    """Whole calendar units in the workspace time zone, counted back from the current one.

    ``unit: day, from_ago: 0`` is today; ``unit: day, from_ago: 1`` yesterday;
    ``unit: month, from_ago: 0`` this month; ``unit: day, from_ago: 14, to_ago: 7`` the
    calendar days 14 to 7 days ago, both included. ``to_ago`` defaults to ``from_ago``.
    Weeks start on Monday.
    """

    type: Literal["calendar"] = "calendar"
    unit: CalendarUnit
    from_ago: Annotated[int, Field(ge=0)] = 0
    to_ago: Annotated[int, Field(ge=0)] | None = None

    def bounds_ago(self) -> tuple[int, int]:
        """(first unit ago, last unit ago), first >= last."""
        return self.from_ago, self.from_ago if self.to_ago is None else self.to_ago


_DATE_TIME = TypeAdapter(dt.datetime)


class AbsoluteWindow(_Model):
    """A fixed range ``[from, to)``. Dates mean local midnight in the workspace time zone;
    date-times without an offset are local wall-clock times there; either end may be omitted."""

    type: Literal["absolute"] = "absolute"
    from_: dt.date | dt.datetime | None = Field(default=None, alias="from")
    to: dt.date | dt.datetime | None = None

    @field_validator("from_", "to", mode="before")
    @classmethod
    def _date_times_stay_date_times(cls, value: object) -> object:
        """Text with a time of day is a date-time, even at midnight: left to the union,
        ``2024-03-01T00:00:00+02:00`` would become the date 2024-03-01 and lose its offset.
        A number is refused rather than read as a Unix time."""
        if isinstance(value, int | float) and not isinstance(value, bool):
            # left to the union, 2025 would be read as seconds since 1970
            raise ValueError(
                f"{value!r} is a number; write a date (2025-01-31) or a date-time "
                "(2025-01-31T09:00:00)"
            )
        if isinstance(value, str) and len(value.strip()) > len("2024-03-01"):
            try:
                return _DATE_TIME.validate_python(value)
            except ValidationError:
                return value  # the union's own error names the field
        return value


Window = Annotated[RelativeWindow | CalendarWindow | AbsoluteWindow, Field(discriminator="type")]


class Duration(_Model):
    """An exact length of time (a day is 24 hours), e.g. the span of a sequence."""

    amount: Annotated[int, Field(ge=1)]
    unit: SpanUnit = "days"

    def to_timedelta(self) -> dt.timedelta:
        """The duration as a ``timedelta``."""
        return dt.timedelta(**{self.unit: self.amount})


# --- comparisons --------------------------------------------------------------------------


ComparedValue = Scalar | list[Scalar] | Window | dt.date | dt.datetime | None


class Comparison(_Model):
    """``operator`` + ``value`` (+ ``case_insensitive`` for text). The value's type picks the
    comparison: text, number or boolean (see docs/definition-semantics.md)."""

    operator: Operator
    value: ComparedValue = None
    case_insensitive: bool = False


class PropertyFilter(Comparison):
    """A comparison on one property of the event (``properties`` JSON)."""

    property: Annotated[str, Field(pattern=PATH_PATTERN)]


class CountThreshold(_Model):
    """How many matching events are needed: at least / at most / exactly ``value``."""

    operator: Literal["at_least", "at_most", "exactly"] = "at_least"
    value: Annotated[int, Field(ge=0)] = 1


class EventStep(_Model):
    """One step of a sequence: an event name with optional property filters."""

    event: Annotated[str, Field(min_length=1)]
    filters: list[PropertyFilter] = Field(default_factory=list)


# --- nodes --------------------------------------------------------------------------------


class _Node(_Model):
    id: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    negate: bool = False


class Group(_Node):
    """``and``: all conditions hold; ``or``: at least one holds."""

    kind: Literal["and", "or"]
    conditions: Annotated[list[Node], Field(min_length=1)]


class EventCondition(_Node):
    """Performed (or not) an event, with filters, a count threshold and a window."""

    kind: Literal["event"]
    event: Annotated[str, Field(min_length=1)]
    filters: list[PropertyFilter] = Field(default_factory=list)
    count: CountThreshold = Field(default_factory=CountThreshold)
    performed: bool = True
    window: Window | None = None


class AggregateCondition(_Node):
    """An aggregate of a numeric event property over a window, compared with a number."""

    kind: Literal["aggregate"]
    event: Annotated[str, Field(min_length=1)]
    filters: list[PropertyFilter] = Field(default_factory=list)
    property: Annotated[str, Field(pattern=PATH_PATTERN)]
    function: Literal["sum", "avg", "min", "max", "count_distinct"]
    operator: Literal["equals", "not_equals", "gt", "gte", "lt", "lte", "between"]
    value: float | list[float]
    window: Window | None = None


class SequenceCondition(_Node):
    """``first`` then ``then`` within ``within`` — or, with ``followed: false``, ``first`` not
    followed by ``then`` within ``within`` (abandonment)."""

    kind: Literal["sequence"]
    first: EventStep
    then: EventStep
    within: Duration | None = None
    followed: bool = True
    window: Window | None = None


class ComparedNode(_Node):
    """A condition that compares one field: the fields of :class:`Comparison`."""

    operator: Operator
    value: ComparedValue = None
    case_insensitive: bool = False


class TraitCondition(ComparedNode):
    """A profile trait (``profiles.traits`` JSON) compared with a value."""

    kind: Literal["trait"]
    trait: Annotated[str, Field(pattern=PATH_PATTERN)]


class UtmCondition(ComparedNode):
    """A UTM parameter at first touch, last touch, or any touch within a window."""

    kind: Literal["utm"]
    parameter: Literal["source", "medium", "campaign", "term", "content"]
    touch: Literal["first", "last", "any"] = "any"
    window: Window | None = None


class DemographicCondition(ComparedNode):
    """Where the person is and who they are: country, region, city, language, age, gender."""

    kind: Literal["demographic"]
    field: Literal["country", "region", "city", "language", "age", "gender"]


class TechnologyCondition(ComparedNode):
    """The browser, OS or device type last seen for the profile."""

    kind: Literal["technology"]
    field: Literal["browser", "os", "device_type"]


class AudienceCondition(_Node):
    """Member (or, with ``member: false``, not a member) of another saved audience."""

    kind: Literal["audience"]
    audience: Annotated[str, Field(pattern=AUDIENCE_NAME_PATTERN)]
    member: bool = True


Condition = (
    EventCondition
    | AggregateCondition
    | SequenceCondition
    | TraitCondition
    | UtmCondition
    | DemographicCondition
    | TechnologyCondition
    | AudienceCondition
)
Node = Annotated[Group | Condition, Field(discriminator="kind")]
Group.model_rebuild()


class Definition(_Model):
    """A whole audience definition: a format ``version`` and the ``root`` node.

    Node ids missing from the input are filled in from each node's position (the JSON path
    of the node, e.g. ``root.conditions[2]``), so every node of a loaded definition has one.
    """

    version: Literal[1] = 1
    root: Node

    @model_validator(mode="after")
    def _fill_ids(self) -> Definition:
        for path, node in iter_nodes(self.root):
            if node.id is None:
                node.id = path
        return self


def iter_nodes(node: Group | Condition, path: str = "root") -> list[tuple[str, Group | Condition]]:
    """Every node of the tree in pre-order, with its JSON path (``root.conditions[0]``)."""
    found: list[tuple[str, Group | Condition]] = []
    stack = [(path, node)]
    while stack:  # a stack, not recursion: any depth a caller built is walked
        path, node = stack.pop()
        found.append((path, node))
        if isinstance(node, Group):
            children = node.conditions
            stack.extend(
                (f"{path}.conditions[{i}]", children[i]) for i in reversed(range(len(children)))
            )
    return found


def path_is_valid(path: str) -> bool:
    """True when ``path`` is a valid property / trait path."""
    return bool(_PATH_RE.match(path))


def json_ready(value: Any) -> Any:
    """Dump helper: the definition as plain JSON data (aliases, no unset defaults)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    return value
