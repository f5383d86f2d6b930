"""The error raised for a definition that cannot be used, naming the exact node."""

from __future__ import annotations

from segmint.errors import InvalidInput


class DefinitionError(InvalidInput):
    """A definition is malformed or inconsistent. ``path`` is the JSON path of the bad node
    or field (``root.conditions[2].window.last``); ``message`` says what to change."""

    code = "invalid_definition"

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(f"{path}: {message}" if path else message, path=path)
        self.reason = message
