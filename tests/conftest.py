"""Shared fixtures: a private data directory, an opened runtime, and a live server on a
free port speaking real HTTP."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from fastapi import FastAPI

from segmint.api.app import create_app
from segmint.catalog.keys import create_key
from segmint.runtime import Runtime
from segmint.settings import Settings
from segmint.warehouse.engine import Engine


@pytest.hookimpl(trylast=True)  # after -m and -k have left out what they leave out
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out a short run of a slow check (``shortened``) when the slow test runs too: it
    draws from the same generator with fewer, smaller examples, so CI would run it twice."""
    selected = {(item.path, _name(item)) for item in items}
    left_out = [
        item
        for item in items
        if (mark := item.get_closest_marker("shortened")) is not None
        and (item.path, mark.args[0]) in selected
    ]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if item not in left_out]


def _name(item: pytest.Item) -> str:
    return getattr(item, "originalname", item.name)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("SEGMINT_DATA_DIR", str(tmp_path / "data"))
    # Tests drive refreshes with explicit clocks; the one that checks the in-process
    # scheduler turns it back on.
    monkeypatch.setenv("SEGMINT_SCHEDULER", "false")
    return Settings()


def postgres_url() -> str | None:
    """The PostgreSQL server for catalog tests (.ci/run starts one and sets the variable).
    In CI a missing server is an error, not a reason to skip."""
    url = os.environ.get("SEGMINT_TEST_POSTGRES_URL")
    if not url and os.environ.get("CI"):
        raise RuntimeError("CI must set SEGMINT_TEST_POSTGRES_URL (see .ci/start-postgres)")
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.service)])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty catalog database: a SQLite file, and a PostgreSQL schema when a server
    is available. Tests using it run on both."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    url = postgres_url()
    if not url:
        pytest.skip("no PostgreSQL server (set SEGMINT_TEST_POSTGRES_URL or run .ci/run)")
    import sqlalchemy as sa

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as con:
        con.exec_driver_sql(f'CREATE DATABASE "{name}"')
    base = sa.engine.make_url(url)
    yield base.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as con:
        con.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime.open(settings)
    yield rt
    rt.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    write_key: str
    admin_key: str
    runtime: Runtime
    app: FastAPI

    def stored(self) -> None:
        """Wait until every acknowledged event is committed (the API answers once events
        are journaled; they reach the warehouse just after)."""
        assert self.app.state.writer.wait_until_stored(timeout=60), "events not stored in 60 s"

    def client(self) -> httpx.Client:
        """A client whose collection calls return once their events are in the warehouse,
        so a test can read them right after."""

        def settle(response: httpx.Response) -> None:
            if response.request.url.path.startswith("/v1/"):
                self.stored()

        return httpx.Client(base_url=self.url, timeout=30, event_hooks={"response": [settle]})

    def admin(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, timeout=30, headers={"Authorization": f"Bearer {self.admin_key}"}
        )


@contextmanager
def serving(app: Any, log_level: str = "warning") -> Iterator[str]:
    """Serve the ASGI ``app`` with uvicorn on a free 127.0.0.1 port in a background thread;
    yields its base URL and stops it on exit."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level=log_level)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextmanager
def served_app(runtime: Runtime, label: str) -> Iterator[tuple[str, str, str, FastAPI]]:
    """The real app on ``runtime``, served on 127.0.0.1, with a write key and an admin key
    named after ``label``: yields (url, write key, admin key, app)."""
    _, write_key = create_key(runtime.catalog, f"{label} source", "write")
    _, admin_key = create_key(runtime.catalog, f"{label} admin", "admin")
    app = create_app(runtime=runtime)
    with serving(app) as url:
        yield url, write_key, admin_key, app


@pytest.fixture
def live_server(runtime: Runtime) -> Iterator[LiveServer]:
    """The real app served by uvicorn on 127.0.0.1 in a background thread."""
    with served_app(runtime, "test") as (url, write_key, admin_key, app):
        yield LiveServer(url, write_key, admin_key, runtime, app)


def collection_tables(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of what collection writes (events, profiles, identities, merges), sorted,
    with every column but the wall-clock time of merges: to compare two ways of storing.

    A profile's traits come last, parsed: the order of their keys depends on how messages
    were grouped into batches (a late batch's keys come first), which two ways of storing
    need not share; the traits themselves must be equal."""
    tables = {
        table: engine.rows(f"SELECT * {exclude} FROM {table} ORDER BY ALL")
        for table, exclude in (
            ("events", ""),
            ("profiles", "EXCLUDE (traits), traits"),
            ("identities", ""),
            ("profile_merges", "EXCLUDE (merged_at)"),
        )
    }
    tables["profiles"] = [(*row[:-1], orjson.loads(row[-1])) for row in tables["profiles"]]
    return tables
