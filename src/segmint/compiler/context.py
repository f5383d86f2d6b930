"""What every condition compiler needs: the clock, the target dialect and how to find other
audiences."""

from __future__ import annotations

from dataclasses import dataclass, field

from segmint.compiler.windows import Bounds, Clock, window_bounds
from segmint.definitions.model import Window
from segmint.definitions.validation import AudienceResolver

# sqlglot dialects whose engines have an ASOF join ("the latest / next row of the other side
# by time, per key"), rendered by sqlglot as ``ASOF [LEFT] JOIN``.
ASOF_DIALECTS = frozenset({"duckdb", "clickhouse"})


@dataclass
class CompileContext:
    """The evaluation instant and zone, the audience resolver, the audiences being inlined
    (to stop cycles) and the dialect the SQL is for. ``dialect`` None means portable SQL
    only (no engine-specific forms; every supported dialect runs it)."""

    clock: Clock
    resolve_audience: AudienceResolver | None = None
    audience_stack: list[str] = field(default_factory=list)
    dialect: str | None = None

    def bounds(self, window: Window | None) -> Bounds:
        """The effective interval of a window (see windows.window_bounds)."""
        return window_bounds(window, self.clock)

    @property
    def asof_joins(self) -> bool:
        """Whether the target engine has ASOF joins."""
        return self.dialect in ASOF_DIALECTS
