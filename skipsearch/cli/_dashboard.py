"""``skipsearch dashboard``: optuna-dashboard on a study storage, with the topology pictures."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from skipsearch.cli._common import DEFAULT_STORAGE, StorageOption
from skipsearch.cli._dashboard_access import Access, AccessGuard, StudyRowsFollower, is_loopback
from skipsearch.errors import UserError

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from _typeshed.wsgi import WSGIApplication
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
    allow_writes: Annotated[
        bool,
        typer.Option(
            "--allow-writes",
            help="Let the dashboard create, rename and delete studies, save notes (default: read-only).",
        ),
    ] = False,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(help="Another name the dashboard is reached by (Host header); repeatable."),
    ] = None,
) -> None:
    """Serve optuna-dashboard for the studies in a storage (Ctrl+C stops it).

    Read-only unless --allow-writes. Beyond 127.0.0.1 it needs a secret from the environment:
    SKIPSEARCH_DASHBOARD_TOKEN (bearer token, or basic-auth password) or SKIPSEARCH_DASHBOARD_PASSWORD
    (basic auth, user SKIPSEARCH_DASHBOARD_USER if set). See docs/reliability.md.
    """
    import optuna

    from skipsearch.search import safe_url

    access = Access.for_server(host, allowed_host or (), allow_writes=allow_writes)  # before any work
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    rdb, store, folder = _open(storage, artifact_dir)
    server = _make_server(rdb, store, host, port, access, storage)
    shown = f"[{host}]" if ":" in host else host
    print(f"optuna-dashboard for {safe_url(storage)}", file=sys.stderr)
    if folder is not None:
        print(f"topology pictures from {folder}", file=sys.stderr)
    else:
        print("no artifact folder: trials show no topology pictures (see --artifact-dir)", file=sys.stderr)
    mode = "writes allowed (--allow-writes)" if allow_writes else "read-only (--allow-writes lets it change studies)"
    secret = ", token or password required" if access.has_secret else ""
    print(f"{mode}{secret}; answers Host names {', '.join(sorted(access.hosts))}", file=sys.stderr)
    if not is_loopback(host):
        print(f"warning: listening on {host} over plain HTTP: put it behind TLS to share it", file=sys.stderr)
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


def _make_server(
    rdb: RDBStorage, store: FileSystemArtifactStore | None, host: str, port: int, access: Access, storage: str
) -> WSGIServer:
    """optuna-dashboard's WSGI app behind :class:`AccessGuard` in a quiet wsgiref server (no line per
    request); deleted and renamed studies take their results rows along."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    try:
        server = make_server(host, port, dashboard_app(rdb, store, access, storage), handler_class=QuietHandler)
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    access.port = server.server_port  # known once bound (--port 0 takes any free one)
    return server


def dashboard_app(
    rdb: RDBStorage, store: FileSystemArtifactStore | None, access: Access, storage: str
) -> WSGIApplication:
    """optuna-dashboard's WSGI app, with results rows following deleted and renamed studies, behind
    the :class:`AccessGuard` of ``access``."""
    from optuna_dashboard import wsgi

    from skipsearch.results import connect

    app = StudyRowsFollower(wsgi(rdb, artifact_store=store), rdb, lambda: connect(storage))
    return AccessGuard(app, access)
