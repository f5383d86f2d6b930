"""What every condition compiler needs: the clock and how to find other audiences."""

from __future__ import annotations

from dataclasses import dataclass, field

from segmint.compiler.windows import Bounds, Clock, window_bounds
from segmint.definitions.model import Window
from segmint.definitions.validation import AudienceResolver


@dataclass
class CompileContext:
    """The evaluation instant and zone, the audience resolver, and the audiences being
    inlined (to stop cycles)."""

    clock: Clock
    resolve_audience: AudienceResolver | None = None
    audience_stack: list[str] = field(default_factory=list)

    def bounds(self, window: Window | None) -> Bounds:
        """The effective interval of a window (see windows.window_bounds)."""
        return window_bounds(window, self.clock)
