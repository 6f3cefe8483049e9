"""``skipsearch dashboard``: optuna-dashboard on a study storage, with the topology pictures."""

from __future__ import annotations

import ipaddress
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from skipsearch.cli._common import DEFAULT_STORAGE, StorageOption
from skipsearch.errors import UserError

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from optuna.artifacts import FileSystemArtifactStore
    from optuna.storages import RDBStorage


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard)


def dashboard(
    storage: StorageOption = DEFAULT_STORAGE,
    host: Annotated[str, typer.Option(help="Address to bind; 127.0.0.1 keeps the dashboard on this machine.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on (0: any free port).")] = 8080,
    artifact_dir: Annotated[
        Path | None,
        typer.Option(
            envvar="SKIPSEARCH_ARTIFACT_DIR",
            help="Folder of the topology pictures (default: skipsearch-artifacts/ next to an SQLite file).",
        ),
    ] = None,
) -> None:
    """Serve optuna-dashboard for the studies in a storage (Ctrl+C stops it)."""
    import optuna

    from skipsearch.search import safe_url

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    rdb, store, folder = _open(storage, artifact_dir)
    server = _make_server(rdb, store, host, port)
    shown = f"[{host}]" if ":" in host else host
    print(f"optuna-dashboard for {safe_url(storage)}", file=sys.stderr)
    if folder is not None:
        print(f"topology pictures from {folder}", file=sys.stderr)
    else:
        print("no artifact folder: trials show no topology pictures (see --artifact-dir)", file=sys.stderr)
    if not _is_loopback(host):
        print(f"warning: listening on {host}: anyone who can reach it can read and edit the studies", file=sys.stderr)
    print(f"listening on http://{shown}:{server.server_port}/dashboard (Ctrl+C stops it)", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        server.server_close()


def _open(storage: str, artifact_dir: Path | None) -> tuple[RDBStorage, FileSystemArtifactStore | None, Path | None]:
    """The Optuna storage (never an empty new database) and the artifact store, if its folder exists."""
    from optuna.artifacts import FileSystemArtifactStore

    from skipsearch.search import artifact_dir_for, check_url, open_storage

    _check_sqlite_file(storage)  # before check_url(), which would create the file
    check_url(storage)
    rdb = open_storage(storage, heartbeat_interval=None)
    folder = artifact_dir_for(storage, artifact_dir)
    if folder is not None and not folder.is_dir():
        if artifact_dir is not None:
            raise UserError(f"--artifact-dir (or SKIPSEARCH_ARTIFACT_DIR): folder {str(folder)!r} does not exist")
        folder = None  # the default folder appears with the first picture a worker stores
    return rdb, (FileSystemArtifactStore(folder) if folder is not None else None), folder


def _check_sqlite_file(storage: str) -> None:
    """A dashboard only reads: an SQLite file that does not exist is an error, not a new empty database."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from skipsearch.results import require_existing_file

    try:
        url = make_url(storage)
    except ArgumentError:
        return  # check_url() words the error
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        raise UserError("--storage: an in-memory SQLite database holds no studies; give a file")
    require_existing_file(storage)


def _make_server(rdb: RDBStorage, store: FileSystemArtifactStore | None, host: str, port: int) -> WSGIServer:
    """optuna-dashboard's WSGI app in a quiet wsgiref server (no line per request)."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from optuna_dashboard import wsgi

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    app = wsgi(rdb, artifact_store=store)
    try:
        return make_server(host, port, app, handler_class=QuietHandler)
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
