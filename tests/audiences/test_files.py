"""Audiences as code: refresh intervals as written in files, the API and the CLI, and the
size limits of the definition a file holds."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from segmint.audiences.files import parse_interval, read_audience_file
from segmint.definitions import DefinitionError
from segmint.definitions.limits import MAX_NODES
from segmint.errors import InvalidInput

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


@pytest.mark.parametrize(
    ("written", "interval"),
    [
        ("1h", HOUR),
        ("6 hours", 6 * HOUR),
        ("90min", 90 * dt.timedelta(minutes=1)),
        ("1d", DAY),
        ("2w", 14 * DAY),
        ("30d", 30 * DAY),
        ("0007d", 7 * DAY),
        (3600, HOUR),
        (30 * 86400, 30 * DAY),
    ],
)
def test_intervals_are_read_in_every_form(written: str | int, interval: dt.timedelta) -> None:
    assert parse_interval(written) == interval


@pytest.mark.parametrize(
    ("written", "problem"),
    [
        (10**30, "a refresh interval of that many seconds is not allowed"),
        (10**4000, "a refresh interval of that many seconds is not allowed"),
        ("99999999999d", "'99999999999d' is not allowed"),
        ("9" * 5000 + "d", "is not allowed"),
        ("31d", "'31d' is not allowed"),
        ("59m", "'59m' is not allowed"),
        (0, "0 seconds is not allowed"),
        (-3600, "-3600 seconds is not allowed"),
    ],
)
def test_intervals_out_of_range_are_refused_with_the_range(
    written: str | int, problem: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_interval(written)
    assert problem in caught.value.message
    assert "choose one from 1 hour to 30 days" in caught.value.message
    assert caught.value.path == "refresh_interval"


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        (True, "true or false"),
        (False, "true or false"),
        (1.5, "a fractional number"),
        ([1], "a list"),
        ({"hours": 1}, "an object"),
        ("soon", "'soon'"),
        ("1 fortnight", "'1 fortnight'"),
    ],
)
def test_what_is_not_an_interval_is_refused_booleans_included(written: Any, shown: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_interval(written, "--interval")
    assert caught.value.message.startswith(f"{shown} is not an interval; write it like '6h'")
    assert caught.value.path == "--interval"


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_an_audience_file_with_too_many_conditions_names_them(tmp_path: Path) -> None:
    conditions = [{"kind": "event", "event": f"e{i}"} for i in range(300)]
    path = write(
        tmp_path, {"name": "big", "definition": {"root": {"kind": "or", "conditions": conditions}}}
    )
    with pytest.raises(DefinitionError) as caught:
        read_audience_file(path)
    assert caught.value.path == "definition.root.conditions"
    assert f"at most {MAX_NODES}" in caught.value.reason


def test_a_file_nested_past_the_parser_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "definition: " + "[" * 500 + "]" * 500)
    with pytest.raises(InvalidInput, match=r"big\.yaml: the text nests lists or objects"):
        read_audience_file(path)


def test_an_audience_file_with_an_interval_out_of_range_names_it(tmp_path: Path) -> None:
    definition = {"root": {"kind": "event", "event": "x"}}
    path = write(
        tmp_path, {"name": "x", "refresh_interval": "99999999999d", "definition": definition}
    )
    with pytest.raises(InvalidInput, match="from 1 hour to 30 days") as caught:
        read_audience_file(path)
    assert caught.value.path == "refresh_interval"
