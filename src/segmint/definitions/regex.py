"""The portable regular-expression subset (docs/definition-semantics.md §6).

Patterns must mean the same in Python ``re``, RE2 (DuckDB, ClickHouse) and Java (Spark), so
only a small, common syntax is accepted; :func:`check_pattern` says what is wrong with any
other pattern, and :func:`python_pattern` rewrites an accepted pattern for Python ``re``.
"""

from __future__ import annotations

import re

MAX_REPEAT = 1000
_QUANTIFIER = re.compile(r"\{(\d+)(,(\d*))?\}")


def check_pattern(pattern: str) -> str | None:
    """Return ``None`` when ``pattern`` is in the portable subset, else what to fix."""
    depth = 0
    i = 0
    n = len(pattern)
    while i < n:
        char = pattern[i]
        if char == "\\":
            problem = _check_escape(pattern, i)
            if problem:
                return problem
            i += 2
            continue
        if char == "[":
            end = _class_end(pattern, i)
            if isinstance(end, str):
                return end
            i = end + 1
            continue
        if char == "]":
            return f"unescaped ']' at position {i}: write '\\]' for a literal bracket"
        if char == "(":
            if pattern.startswith("(?", i):
                if not pattern.startswith("(?:", i):
                    return (
                        f"'(?' at position {i}: only non-capturing groups '(?:...)' are "
                        "supported (no lookarounds, named groups or inline flags; use the "
                        "case_insensitive option instead of (?i))"
                    )
                i += 2
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                return f"unbalanced ')' at position {i}"
        elif char == "{":
            match = _QUANTIFIER.match(pattern, i)
            if not match:
                return (
                    f"'{{' at position {i} is not a repetition {{m}}, {{m,}} or {{m,n}}: "
                    "write '\\{' for a literal brace"
                )
            low, high = int(match.group(1)), match.group(3)
            if low > MAX_REPEAT or (high and int(high) > MAX_REPEAT):
                return f"repetition counts above {MAX_REPEAT} are not supported"
            if high and int(high) < low:
                return f"repetition {match.group(0)} has its bounds in the wrong order"
            i = match.end()
            continue
        elif char == "}":
            return f"unescaped '}}' at position {i}: write '\\}}' for a literal brace"
        i += 1
    if depth:
        return "unbalanced '(': a group is not closed"
    try:
        re.compile(python_pattern(pattern))
    except re.error as exc:
        return f"the pattern does not compile: {exc}"
    return None


def _check_escape(pattern: str, i: int) -> str | None:
    if i + 1 >= len(pattern):
        return "the pattern ends with a lone backslash"
    escaped = pattern[i + 1]
    if escaped.isascii() and not escaped.isalnum() and escaped.isprintable():
        return None
    return (
        f"'\\{escaped}' at position {i} is not supported: only a backslash before a "
        "punctuation character is (use [0-9] for \\d, [A-Za-z0-9_] for \\w, [ ] for spaces)"
    )


def _class_end(pattern: str, start: int) -> int | str:
    """Index of the ']' closing the class opened at ``start``, or what is wrong."""
    i = start + 1
    if i < len(pattern) and pattern[i] == "^":
        i += 1
    first = True
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            problem = _check_escape(pattern, i)
            if problem:
                return problem
            i += 2
        elif char == "]" and not first:
            return i
        elif char == "]":
            return f"empty character class at position {start}"
        elif char == "[":
            return f"'[' inside a character class at position {i}: write '\\['"
        else:
            i += 1
        first = False
    return f"unclosed character class '[' at position {start}"


def python_pattern(pattern: str) -> str:
    """The Python ``re`` pattern with RE2's meaning: ``$`` outside a class becomes ``\\Z``."""
    return _end_of_text(pattern, r"\Z")


def java_pattern(pattern: str) -> str:
    """The Java pattern (Spark's ``RLIKE``) with RE2's meaning: only ``\\n`` ends a line
    (``(?d)``; Java's ``.`` also stops at ``\\r`` and other line ends), and ``$`` outside a
    class becomes ``\\z`` (Java's ``$``, like Python's, also matches before a final line end)."""
    return "(?d)" + _end_of_text(pattern, r"\z")


def _end_of_text(pattern: str, anchor: str) -> str:
    """``pattern`` with each ``$`` outside a class replaced by ``anchor``."""
    out: list[str] = []
    i = 0
    in_class = False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if char == "]" and out and out[-1] not in ("[", "[^"):
                in_class = False
        elif char == "[":
            in_class = True
            if pattern.startswith("[^", i):
                out.append("[^")
                i += 2
                continue
        elif char == "$":
            out.append(anchor)
            i += 1
            continue
        out.append(char)
        i += 1
    return "".join(out)
