"""The portable regular-expression subset and its Python rewrite."""

from __future__ import annotations

import re

import duckdb
import pytest

from segmint.definitions.regex import check_pattern, python_pattern

ACCEPTED = [
    "^abc$",
    "a.c",
    "[a-z]+",
    "[^0-9]{2,3}",
    "(?:ab|cd)*?",
    "\\.com$",
    "[$]x",
    "é+",
    "a{3}",
    "^$",
]


@pytest.mark.parametrize("pattern", ACCEPTED)
def test_accepted_patterns(pattern: str) -> None:
    assert check_pattern(pattern) is None


@pytest.mark.parametrize(
    "pattern",
    ["\\d", "\\w+", "\\s", "\\bx", "(?P<n>x)", "(?<=a)b", "a{1001}", "a}", "]", "[]", "\\"],
)
def test_refused_patterns(pattern: str) -> None:
    assert check_pattern(pattern) is not None


def test_dollar_outside_classes_becomes_end_of_text() -> None:
    assert python_pattern("a$|[$]b\\$") == "a\\Z|[$]b\\$"


@pytest.mark.parametrize("pattern", ACCEPTED)
@pytest.mark.parametrize("text", ["abc", "abc\n", "x.com", "ab12", "", "éé", "$x", "cdab", "aaa"])
def test_python_and_duckdb_agree(pattern: str, text: str) -> None:
    in_python = re.search(python_pattern(pattern), text) is not None
    in_duckdb = duckdb.execute("SELECT regexp_matches(?, ?)", [text, pattern]).fetchone()
    assert in_duckdb is not None and in_python == in_duckdb[0]
