"""The running engine: settings, warehouse, catalog and the collector, opened together.

``Runtime.open(settings)`` is what the server and write-side CLI commands use; library users
can use it too (PRODUCT B8: the whole engine without a server).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from segmint.catalog import Catalog, open_catalog
from segmint.collect.journal import segments
from segmint.collect.pipeline import Collector
from segmint.errors import not_writable, write_problem
from segmint.settings import Settings
from segmint.sync.secrets import SecretBox
from segmint.warehouse import DuckDBEngine, open_warehouse

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    warehouse: DuckDBEngine
    catalog: Catalog
    _collector: Collector | None = field(default=None, repr=False)
    _secrets: SecretBox | None = field(default=None, repr=False)

    @classmethod
    def open(cls, settings: Settings, *, read_only: bool = False) -> Runtime:
        """Open the warehouse (for writing unless ``read_only``) and the catalog. For writing,
        the data directory is made when missing, and a data directory or warehouse that
        cannot be written is refused first (:class:`NotWritable`), with what to check."""
        if not read_only:
            settings.ensure_data_dir()
            _check_writable(settings)
        warehouse = open_warehouse(settings.warehouse_file, read_only=read_only)
        try:
            catalog = open_catalog(settings.catalog_database_url)
        except Exception:
            warehouse.close()
            raise
        runtime = cls(settings=settings, warehouse=warehouse, catalog=catalog)
        if read_only:
            if runtime._journal_left():
                log.warning(
                    "the collection journal (%s) holds acknowledged events not stored yet "
                    "(the server stopped before storing them); they are left out here and "
                    "stored when `segmint serve` or a command that writes opens the warehouse",
                    settings.journal_dir,
                )
            return runtime
        try:
            runtime.store_journal()
        except Exception:
            runtime.close()
            raise
        return runtime

    def _journal_left(self) -> bool:
        directory = self.settings.journal_dir
        return directory.is_dir() and any(p.stat().st_size for p in segments(directory))

    def store_journal(self) -> int:
        """Store what the collection journal still holds: requests a server acknowledged but
        had not stored when it stopped (a crash, a kill). Every process that opens the
        warehouse for writing does this first, so commands after a crash see those events.
        Returns the messages stored."""
        directory = self.settings.journal_dir
        if not self._journal_left():
            return 0
        from segmint.collect.http import messages_from_record  # the API's own acceptance
        from segmint.collect.writer import recover_journal

        return recover_journal(
            directory,
            self.collector,
            lambda meta, body: messages_from_record(meta, body, self.settings),
        )

    @property
    def collector(self) -> Collector:
        """The collector (loads the identity map and recent message ids on first use)."""
        if self._collector is None:
            self._collector = Collector.from_settings(self.warehouse, self.settings)
        return self._collector

    @property
    def secrets(self) -> SecretBox:
        """The box that encrypts destination credentials (key generated on first use)."""
        if self._secrets is None:
            self._secrets = SecretBox.for_data_dir(self.settings.data_dir)
        return self._secrets

    def close(self) -> None:
        self.warehouse.close()
        self.catalog.dispose()


def _check_writable(settings: Settings) -> None:
    """Refuse a warehouse that cannot be written before DuckDB tries: its error would read
    like a damaged file, and the advice for one (move it aside) is wrong here."""
    warehouse = settings.warehouse_file
    for path in (warehouse.parent, warehouse, settings.journal_dir):
        problem = write_problem(path)
        if problem:
            raise not_writable(path, problem)
