"""The List Sync ledger: what each link sent for each member."""

from __future__ import annotations

from datetime import datetime

from segmint.sync.ledger import LEDGER_FIELDS, forget, record_sent, sent_members
from segmint.sync.normalize import ListMember
from segmint.warehouse import open_warehouse

AT = datetime(2026, 11, 29, 8, 0)


def test_the_table_has_a_column_for_every_list_member_field() -> None:
    engine = open_warehouse(None)
    columns = [row[0] for row in engine.rows("SELECT * FROM (DESCRIBE sync_ledger)")]
    assert columns == ["link_id", "profile_id", *LEDGER_FIELDS, "sent_at"]


def test_sent_values_are_kept_per_link_replaced_and_forgotten() -> None:
    engine = open_warehouse(None)
    first = ListMember(key="1", email="a@example.com", phone="+14155550100", country="US")
    record_sent(engine, 7, [first, ListMember(key="2", device_id="idfa-2")], AT)
    record_sent(engine, 8, [ListMember(key="1", email="other@example.com")], AT)
    assert sent_members(engine, 7, [1, 2, 3]) == {
        1: first,
        2: ListMember(key="2", device_id="idfa-2"),
    }
    renamed = ListMember(key="1", email="b@example.com")
    record_sent(engine, 7, [renamed], AT)  # sent again: the latest values replace the old
    assert sent_members(engine, 7, [1]) == {1: renamed}
    forget(engine, 7, [1])
    assert set(sent_members(engine, 7, [1, 2])) == {2}
    forget(engine, 7)
    assert sent_members(engine, 7, [1, 2]) == {}
    assert sent_members(engine, 8, [1]) == {1: ListMember(key="1", email="other@example.com")}
