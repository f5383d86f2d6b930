"""File export end to end on the real file system: files replay to the exact member set,
writes are atomic, and a directory that cannot be written says so clearly."""

from __future__ import annotations

import csv
import errno
import itertools
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from segmint.destinations import file_export, registry
from segmint.destinations.file_export import (
    EVENT_COLUMNS,
    MEMBER_COLUMNS,
    FileExport,
    export_files,
    read_membership,
)
from segmint.errors import InvalidInput
from segmint.sync.errors import BadRequest, Transient
from segmint.sync.normalize import ListMember
from tests.destinations.fake_webhook import segment_events


def members(start: int, stop: int) -> list[ListMember]:
    return [
        ListMember(
            key=f"p{i}",
            email=f"User{i}@Example.com",
            phone="+14155550100" if i % 5 == 0 else None,
            first_name='Zoë, "Z"' if i % 7 == 0 else None,
            device_id=f"dev-{i}" if i % 2 else None,
        )
        for i in range(start, stop)
    ]


def keys(start: int, stop: int) -> set[str]:
    return {f"p{i}" for i in range(start, stop)}


def ticking_clock(start: datetime) -> Iterator[datetime]:
    return (start + timedelta(milliseconds=n) for n in itertools.count())


def export(tmp_path: Path, fmt: str = "csv", **kwargs: object) -> FileExport:
    times = ticking_clock(datetime(2026, 11, 29, 5, 0, tzinfo=UTC))
    return FileExport(
        directory=tmp_path / "exports",
        format=fmt,
        clock=lambda: next(times),
        **kwargs,  # type: ignore[arg-type]
    )


def test_file_export_is_created_by_the_registry_from_flat_settings(tmp_path: Path) -> None:
    assert file_export.CREDENTIAL_FIELDS == ()
    assert file_export.CONFIG_FIELDS == ("directory", "format")
    destination = registry.create(
        "file", directory=str(tmp_path / "out"), format="parquet", destination_name="Exports"
    )
    assert isinstance(destination, FileExport)
    assert destination.supports_event_sync
    destination.check_credentials()
    assert (tmp_path / "out").is_dir()
    assert os.listdir(tmp_path / "out") == []  # the probe file is gone
    destination.close()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_list_sync_of_25000_members_then_removals_replays_to_the_exact_set(
    tmp_path: Path, fmt: str
) -> None:
    destination = export(tmp_path, fmt, max_rows_per_file=10_000)
    folder = destination.ensure_audience("Cart abandoners")
    assert (tmp_path / "exports" / "Cart abandoners").is_dir()
    added = destination.add_members(folder, members(0, 25_000))
    assert (added.sent, added.requests) == (25_000, 3)
    destination.remove_members(folder, members(20_000, 25_000))
    destination.add_members(folder, members(24_000, 24_010))  # a refresh brings some back

    current = read_membership(tmp_path / "exports", "Cart abandoners")
    assert set(current) == keys(0, 20_000) | keys(24_000, 24_010)
    assert current["p7"] == {
        "key": "p7",
        "email": "User7@Example.com",  # clear text, as the user's own export
        "phone": None,
        "first_name": 'Zoë, "Z"',
        "last_name": None,
        "country": None,
        "crm_id": None,
        "device_id": "dev-7",
        "user_id": None,
        "anonymous_id": None,
    }
    files = [path.name for path in export_files(tmp_path / "exports", "Cart abandoners")]
    assert len(files) == 5
    assert files == sorted(files)
    assert files[0].endswith(f"-000001-add.{fmt}") and files[3].endswith(f"-remove.{fmt}")

    destination.delete_audience(folder)
    assert not (tmp_path / "exports" / "Cart abandoners").exists()
    assert read_membership(tmp_path / "exports", "Cart abandoners") == {}


def test_csv_files_have_the_documented_columns(tmp_path: Path) -> None:
    destination = export(tmp_path)
    destination.add_members("A", members(0, 3))
    destination.send_events(segment_events("added_to_segment", 0, 2, audience=("a1", "A")))
    first, second = export_files(tmp_path / "exports", "A")
    with first.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == list(MEMBER_COLUMNS)
    assert rows[1][:3] == ["add", "p0", "User0@Example.com"]
    with second.open(newline="") as handle:
        header, event_row, _ = list(csv.reader(handle))
    assert header == list(EVENT_COLUMNS)
    event = dict(zip(header, event_row, strict=True))
    assert event["action"] == "add" and event["key"] == "p0"
    assert event["cookie_ga"] == "GA1.1.1000000.1700000000"
    assert event["click_ids"] == '{"gclid": "gclid-0"}'


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_event_sync_of_25000_members_then_removals_replays_to_the_exact_set(
    tmp_path: Path, fmt: str
) -> None:
    destination = export(tmp_path, fmt)
    adds = segment_events("added_to_segment", 0, 25_000)
    other = segment_events("added_to_segment", 0, 10, audience=("aud_2", "Big/spenders"))
    assert destination.send_events(adds + other) == 25_010
    removals = segment_events("removed_from_segment", 0, 4_000, refresh_id="r2")
    change = destination.deliver_events(removals)
    assert (change.sent, change.requests) == (4_000, 1)
    current = read_membership(tmp_path / "exports", "Cart abandoners")
    assert set(current) == keys(4_000, 25_000)
    assert current["p4000"]["audience_id"] == "aud_1"
    assert current["p4002"]["user_id"] is None  # anonymous members are included
    assert set(read_membership(tmp_path / "exports", "Big/spenders")) == keys(0, 10)
    assert (tmp_path / "exports" / "Big_spenders").is_dir()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_write_failing_midway_leaves_no_file_behind(
    tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    destination = export(tmp_path, fmt)
    folder = destination.ensure_audience("A")
    destination.add_members(folder, members(0, 100))
    before = sorted(os.listdir(tmp_path / "exports" / "A"))

    real_row = file_export._member_row
    calls = itertools.count()

    def row_then_disk_full(action: str, member: ListMember) -> file_export.Row:
        if next(calls) == 5_000:  # half the rows are already in the temporary file
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_row(action, member)

    monkeypatch.setattr(file_export, "_member_row", row_then_disk_full)
    with pytest.raises(Transient, match="No space left on device"):
        destination.remove_members(folder, members(0, 10_000))
    assert sorted(os.listdir(tmp_path / "exports" / "A")) == before
    assert set(read_membership(tmp_path / "exports", "A")) == keys(0, 100)


def test_a_failed_rename_leaves_no_file_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    destination = export(tmp_path)
    folder = destination.ensure_audience("A")

    def refuse(source: object, target: object) -> None:
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(file_export.os, "replace", refuse)
    with pytest.raises(BadRequest, match="Permission denied"):
        destination.add_members(folder, members(0, 10))
    assert os.listdir(tmp_path / "exports" / "A") == []


def test_files_left_by_a_crash_are_ignored_by_readers(tmp_path: Path) -> None:
    destination = export(tmp_path)
    destination.add_members("A", members(0, 10))
    stray = tmp_path / "exports" / "A" / ".20261129T060000000000Z-000002-remove.csv.ab12.tmp"
    stray.write_text("action,key\nremove,p1\nremo")  # killed mid-write
    assert set(read_membership(tmp_path / "exports", "A")) == keys(0, 10)


def test_names_keep_write_order_when_the_clock_steps_back(tmp_path: Path) -> None:
    moments = iter(
        [datetime(2026, 11, 29, 5, 0, tzinfo=UTC), datetime(2026, 11, 29, 4, 0, tzinfo=UTC)]
    )
    destination = FileExport(directory=tmp_path, clock=lambda: next(moments))
    destination.add_members("A", members(0, 5))
    destination.remove_members("A", members(0, 5))
    names = [path.name for path in export_files(tmp_path, "A")]
    assert names == [
        "20261129T050000000000Z-000001-add.csv",
        "20261129T050000000000Z-000002-remove.csv",
    ]
    assert read_membership(tmp_path, "A") == {}


def test_parquet_files_are_typed_string_columns(tmp_path: Path) -> None:
    destination = export(tmp_path, "parquet")
    destination.add_members("A", members(0, 3))
    (path,) = export_files(tmp_path / "exports", "A")
    table = pq.read_table(path)
    assert table.column_names == list(MEMBER_COLUMNS)
    assert table.column("phone").to_pylist() == ["+14155550100", None, None]


def test_unwritable_directory_fails_with_a_clear_message(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    destination = FileExport(directory=blocker / "exports", destination_name="Nightly export")
    with pytest.raises(BadRequest) as caught:
        destination.check_credentials()
    assert str(blocker / "exports") in caught.value.message
    assert "Destinations → Nightly export → Configuration Settings" in caught.value.message


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_read_only_directory_fails_with_a_clear_message(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(BadRequest, match="Permission denied"):
            FileExport(directory=tmp_path).check_credentials()
    finally:
        tmp_path.chmod(0o700)


@pytest.mark.parametrize(
    ("settings", "path", "words"),
    [
        ({"format": "xlsx"}, "config.format", "use csv or parquet"),
        ({"max_rows_per_file": 0}, "config.max_rows_per_file", "at least 1, not 0"),
    ],
)
def test_wrong_settings_are_refused_naming_them(
    tmp_path: Path, settings: dict[str, object], path: str, words: str
) -> None:
    with pytest.raises(InvalidInput, match=words) as caught:
        FileExport(directory=tmp_path, **settings)  # type: ignore[arg-type]
    assert caught.value.path == path


def test_saving_checks_the_directory_with_a_probe_file(tmp_path: Path) -> None:
    FileExport(directory=tmp_path / "new" / "exports").check_locally()
    assert os.listdir(tmp_path / "new" / "exports") == []  # made, and the probe is gone
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(InvalidInput, match="cannot write to the export directory") as caught:
        FileExport(directory=blocker / "exports").check_locally()
    assert caught.value.path == "config.directory"
    assert str(blocker / "exports") in caught.value.message
    assert "Configuration Settings" not in caught.value.message  # nothing saved to fix yet


def test_unknown_event_is_refused(tmp_path: Path) -> None:
    destination = export(tmp_path)
    bad = [{**segment_events("added_to_segment", 0, 1)[0], "event": "joined"}]
    with pytest.raises(BadRequest, match=r"events\[0\]: unknown event 'joined'"):
        destination.send_events(bad)
    assert not (tmp_path / "exports").exists()  # nothing written


def test_audience_names_become_safe_folder_names() -> None:
    assert file_export.audience_folder("Big/spenders: EU") == "Big_spenders_ EU"
    assert file_export.audience_folder("..") == "_"
    assert file_export.audience_folder("Café ✓") == "Café ✓"
    long_name = "x" * 199 + " .tail"
    folder = file_export.audience_folder(long_name)
    assert folder == "x" * 199
    assert file_export.audience_folder(folder) == folder
