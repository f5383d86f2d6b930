"""``segmint``: serve, keys, import, generate ... (``segmint --help`` lists them)."""

from __future__ import annotations

import errno
import logging
import os
import socket
from pathlib import Path
from typing import Annotated

import typer

from segmint.cli import audiences, data, definitions, demo, keys, sync, testing, users
from segmint.cli.common import command_group, creates_data, friendly_errors
from segmint.errors import InvalidInput

app = command_group(
    "Segmint: collect events, build audiences, keep them fresh, sync them.",
    name="segmint",
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(keys.app, name="keys")
app.add_typer(audiences.app, name="audiences")
app.add_typer(sync.destinations_app, name="destinations")
app.add_typer(sync.sync_app, name="sync")
app.command("logs")(sync.logs_command)
app.add_typer(users.app, name="users")
app.command("refresh")(audiences.refresh_command)
app.command("usage")(audiences.usage_command)
# Commands that make data make the data directory; every other one refuses a data directory
# without Segmint data (a mistyped --data-dir), see cli/common.py.
app.command("import")(creates_data(data.import_command))
app.command("generate")(creates_data(data.generate_command))
app.command("export")(data.export_command)
app.command("demo")(creates_data(demo.demo_command))
app.command("test")(testing.test_command)
app.command("preview")(definitions.preview_command)
app.command("explain")(definitions.explain_command)
app.command("sql")(definitions.sql_command)
audiences.app.command("preview")(definitions.preview_command)


@app.callback()
def main(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir", help="Data directory (default ./.segmint, or SEGMINT_DATA_DIR)."
        ),
    ] = None,
) -> None:
    if data_dir is not None:
        os.environ["SEGMINT_DATA_DIR"] = str(data_dir)
    level = logging.DEBUG if os.environ.get("SEGMINT_DEBUG") else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@app.command()
@creates_data
@friendly_errors
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port to listen on (1-65535).")
    ] = None,
) -> None:
    """Run the server: collection API, REST API and web UI."""
    import uvicorn

    from segmint.api.app import create_app
    from segmint.cli.common import load_settings
    from segmint.memory import tune_gc_for_server
    from segmint.runtime import Runtime

    settings = load_settings()
    host, port = host or settings.host, port or settings.port
    _can_listen(host, port)
    logging.getLogger("segmint").setLevel(logging.INFO)
    tune_gc_for_server()
    # Opened here rather than in the app's start-up, so that a warehouse in use by another
    # server, a GeoIP database that cannot be read, or any other reason it cannot open is
    # one clear error, not the traceback a failed start-up logs.
    runtime = Runtime.open(settings)
    try:
        _ = runtime.collector  # made on first use: its enrichment opens the GeoIP database
        uvicorn.run(
            create_app(settings, runtime),
            host=host,
            port=port,
            log_level="info",
            access_log=False,
        )
    finally:
        runtime.close()


def _can_listen(host: str, port: int) -> None:
    """Refuse, before anything starts, an address the server could not listen on (a port
    in use, a host that is not this machine's); the server binds it again right after."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        what = (
            "stop what uses it, or choose another port with --port (SEGMINT_PORT)"
            if exc.errno == errno.EADDRINUSE
            else "choose an address of this machine with --host (SEGMINT_HOST)"
        )
        raise InvalidInput(f"cannot listen on {host}:{port}: {reason}; {what}") from None


if __name__ == "__main__":
    app()
