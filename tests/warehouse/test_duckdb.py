"""The DuckDB engine and the versioned warehouse schema."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from segmint.errors import ConfigurationError, WarehouseBusy
from segmint.warehouse import open_warehouse
from segmint.warehouse.schema import LATEST_VERSION


def test_schema_is_created_once_and_versioned(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    engine = open_warehouse(path)
    engine.close()
    engine = open_warehouse(path)
    versions = engine.rows("SELECT version FROM schema_version ORDER BY version")
    assert versions == [(v,) for v in range(1, LATEST_VERSION + 1)]
    tables = {r[0] for r in engine.rows("SELECT table_name FROM information_schema.tables")}
    assert {"events", "profiles", "identities", "profile_merges"} <= tables
    engine.close()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    engine = open_warehouse(path)
    engine.execute("INSERT INTO schema_version (version) VALUES (?)", [LATEST_VERSION + 1])
    engine.close()
    with pytest.raises(ConfigurationError, match="newer than this Segmint"):
        open_warehouse(path)


def test_transaction_rolls_back_everything_on_error() -> None:
    engine = open_warehouse(None)
    engine.execute("CREATE TABLE t (x INTEGER)")
    with pytest.raises(RuntimeError), engine.transaction():
        engine.append("t", pa.table({"x": [1, 2, 3]}))
        with engine.transaction():  # nested: joins the outer transaction
            engine.execute("INSERT INTO t VALUES (4)")
        raise RuntimeError("boom")
    assert engine.rows("SELECT count(*) FROM t") == [(0,)]
    with engine.transaction():
        assert engine.append("t", pa.table({"x": [5]})) == 1
    assert engine.arrow("SELECT x FROM t").column("x").to_pylist() == [5]


def test_a_locked_warehouse_gives_a_clear_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "w.duckdb"
    open_warehouse(path).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb,time; c=duckdb.connect({str(path)!r}); print('ok', flush=True); "
            "time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        with pytest.raises(WarehouseBusy, match="in use by another Segmint process"):
            open_warehouse(path)
    finally:
        holder.kill()
        holder.wait()
