"""A dashboard safe to share: read-only unless --allow-writes, only the Host names it serves, a secret
from the environment beyond localhost; and results rows that follow deleted and renamed studies.

Requests go straight to the WSGI application (no server, no port), built as ``skipsearch dashboard``
builds it, on a copy of a finished study's database."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import optuna
import pytest
from dashboard_helpers import FinishedStudy

from skipsearch.cli._dashboard import dashboard_app
from skipsearch.cli._dashboard_access import PASSWORD_ENV, TOKEN_ENV, USER_ENV, Access, AccessGuard
from skipsearch.errors import UserError
from skipsearch.results import connect, evaluations
from skipsearch.search import open_storage

PORT = 8080
WSGIApp = Callable[..., Any]


def request(
    app: WSGIApp,
    method: str,
    path: str,
    *,
    host: str | None = f"127.0.0.1:{PORT}",
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request through the WSGI app: ``(status code, headers, body)``."""
    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    environ.update(REQUEST_METHOD=method, PATH_INFO=path, SERVER_PORT=str(PORT))
    environ.pop("HTTP_HOST", None)
    if host is not None:
        environ["HTTP_HOST"] = host
    raw = b"" if body is None else json.dumps(body).encode()
    environ.update({"wsgi.input": io.BytesIO(raw), "CONTENT_LENGTH": str(len(raw)), "CONTENT_TYPE": "application/json"})
    for name, value in (headers or {}).items():
        environ[f"HTTP_{name.upper().replace('-', '_')}"] = value
    answer: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        answer.update(status=int(status[:3]), headers=dict(response_headers))

    content = b"".join(app(environ, start_response))
    return answer["status"], answer["headers"], content


def _ok_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"served"]


def guarded(host: str = "127.0.0.1", allowed: tuple[str, ...] = (), writes: bool = False, **env: str) -> AccessGuard:
    access = Access.for_server(host, allowed, allow_writes=writes, environ=env)
    access.port = PORT
    return AccessGuard(_ok_app, access)


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# -- the guard alone ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_writes_are_refused_unless_allowed(method: str) -> None:
    status, headers, body = request(guarded(), method, "/api/studies/1")
    assert status == 403 and headers["Content-Type"] == "application/json"
    assert "read-only" in json.loads(body)["reason"] and "--allow-writes" in json.loads(body)["reason"]
    assert request(guarded(writes=True), method, "/api/studies/1")[0] == 200
    for read in ("GET", "HEAD", "OPTIONS"):
        assert request(guarded(), read, "/api/studies")[0] == 200


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1:8080", True),
        ("localhost:8080", True),
        ("LOCALHOST", True),
        ("[::1]:8080", True),
        ("evil.example:8080", False),  # a rebound DNS name
        ("evil.example", False),
        ("127.0.0.1:9999", False),  # another port than the one served
        ("127.0.0.1:80x", False),
        ("", False),
        (None, False),
    ],
)
def test_only_the_hosts_it_serves_are_answered(host: str | None, allowed: bool) -> None:
    status, _, body = request(guarded(), "GET", "/api/studies", host=host)
    assert (status == 200) is allowed
    if not allowed:
        assert status == 403 and "does not serve the host" in json.loads(body)["reason"]


def test_allowed_host_names_and_the_bound_address_are_served() -> None:
    app = guarded("10.1.2.3", ("dash.lab.example",), **{TOKEN_ENV: "t" * 32})
    auth = {"Authorization": "Bearer " + "t" * 32}
    for host in ("dash.lab.example:8080", "10.1.2.3:8080", "dash.lab.example."):
        assert request(app, "GET", "/", host=host, headers=auth)[0] == 200, host
    assert request(app, "GET", "/", host="other.lab.example:8080", headers=auth)[0] == 403
    with pytest.raises(UserError, match="--allowed-host"):
        Access.for_server("127.0.0.1", ["bad host/"])


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "dash.lab.example"])
def test_binding_beyond_localhost_needs_a_secret_from_the_environment(host: str) -> None:
    with pytest.raises(UserError) as refused:
        Access.for_server(host, environ={})
    message = str(refused.value)
    assert "\n" not in message and TOKEN_ENV in message and PASSWORD_ENV in message
    assert Access.for_server(host, environ={TOKEN_ENV: "x" * 24}).has_secret
    assert not Access.for_server("127.0.0.1", environ={}).has_secret  # localhost alone needs none


def test_a_token_is_required_as_bearer_or_basic_password() -> None:
    app = guarded("0.0.0.0", **{TOKEN_ENV: "s3cret-token"})
    status, headers, _ = request(app, "GET", "/api/studies")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic realm=")
    assert request(app, "GET", "/", headers={"Authorization": "Bearer s3cret-token"})[0] == 200
    assert request(app, "GET", "/", headers=_basic("anyone", "s3cret-token"))[0] == 200
    for wrong in (
        {"Authorization": "Bearer s3cret-tokeN"},
        {"Authorization": "Bearer "},
        {"Authorization": "Token s3cret-token"},
        {"Authorization": "Basic !!not-base64!!"},
        _basic("anyone", "s3cret"),
    ):
        assert request(app, "GET", "/", headers=wrong)[0] == 401, wrong


def test_a_password_with_a_user_name() -> None:
    app = guarded("0.0.0.0", **{PASSWORD_ENV: "pa:ss", USER_ENV: "lab"})
    assert request(app, "GET", "/", headers=_basic("lab", "pa:ss"))[0] == 200
    assert request(app, "GET", "/", headers=_basic("other", "pa:ss"))[0] == 401
    assert request(app, "GET", "/", headers={"Authorization": "Bearer pa:ss"})[0] == 401  # not a token
    # The secret is checked before writes: without it, even a refused write says 401, revealing nothing.
    assert request(app, "DELETE", "/api/studies/1")[0] == 401


def test_a_secret_set_on_localhost_is_enforced_too() -> None:
    app = guarded("127.0.0.1", **{PASSWORD_ENV: "pw"})
    assert request(app, "GET", "/")[0] == 401
    assert request(app, "GET", "/", headers=_basic("x", "pw"))[0] == 200


def test_writes_from_another_site_are_refused_even_when_allowed() -> None:
    app = guarded(writes=True)
    assert request(app, "POST", "/api/studies", headers={"Origin": "http://127.0.0.1:8080"})[0] == 200
    status, _, body = request(app, "POST", "/api/studies", headers={"Origin": "https://evil.example"})
    assert status == 403 and "another site" in json.loads(body)["reason"]
    assert request(app, "POST", "/api/studies", headers={"Origin": "http://127.0.0.1:1"})[0] == 403
    assert request(app, "GET", "/api/studies", headers={"Origin": "https://evil.example"})[0] == 200


@pytest.mark.slow
def test_the_cli_refuses_a_wide_bind_without_a_secret(
    finished_study: FinishedStudy, monkeypatch: pytest.MonkeyPatch, cli: Any
) -> None:
    for name in (TOKEN_ENV, PASSWORD_ENV):
        monkeypatch.delenv(name, raising=False)
    code, _, err = cli(["dashboard", "--storage", finished_study.url, "--host", "0.0.0.0", "--port", "0"])
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: --host 0.0.0.0"), err
    assert "--token" not in cli(["dashboard", "--help"])[1]  # no secret on the command line


# -- the real optuna-dashboard app behind it ----------------------------------------------------


@pytest.fixture
def storage(finished_study: FinishedStudy, tmp_path: Path) -> str:
    """A copy of the finished study's database, for a test to change."""
    with sqlite3.connect(finished_study.folder / "study.db") as source, sqlite3.connect(tmp_path / "s.db") as copy:
        source.backup(copy)
    return f"sqlite:///{tmp_path / 's.db'}"


def _dashboard(storage: str, *, writes: bool) -> WSGIApp:
    access = Access.for_server("127.0.0.1", allow_writes=writes, environ={})
    access.port = PORT
    return dashboard_app(open_storage(storage, heartbeat_interval=None), None, access, storage)


def _rows(storage: str) -> dict[str, int]:
    return evaluations(connect(storage))["study"].value_counts().to_dict()


def _study_id(app: WSGIApp, name: str) -> int:
    status, _, body = request(app, "GET", "/api/studies")
    assert status == 200
    (study,) = [s for s in json.loads(body)["study_summaries"] if s["study_name"] == name]
    return int(study["study_id"])


@pytest.mark.slow
def test_the_real_dashboard_is_read_only_by_default(storage: str, finished_study: FinishedStudy) -> None:
    app = _dashboard(storage, writes=False)
    study_id = _study_id(app, finished_study.name)
    attempts = [
        ("POST", "/api/studies", {"study_name": "new", "directions": ["minimize"]}),
        ("POST", f"/api/studies/{study_id}/rename", {"study_name": "renamed"}),
        ("DELETE", f"/api/studies/{study_id}", None),
        ("PUT", f"/api/studies/{study_id}/note", {"version": 1, "body": "hello"}),
    ]
    for method, path, body in attempts:
        assert request(app, method, path, body=body)[0] == 403, path
    assert optuna.get_all_study_names(storage) == [finished_study.name]
    assert _rows(storage) == {finished_study.name: 3}
    assert request(app, "GET", f"/api/studies/{study_id}")[0] == 200


@pytest.mark.slow
def test_with_writes_allowed_rows_follow_a_renamed_then_deleted_study(
    storage: str, finished_study: FinishedStudy
) -> None:
    app = _dashboard(storage, writes=True)
    study_id = _study_id(app, finished_study.name)
    status, _, _ = request(app, "POST", f"/api/studies/{study_id}/rename", body={"study_name": "renamed"})
    assert status == 201
    assert optuna.get_all_study_names(storage) == ["renamed"]
    assert _rows(storage) == {"renamed": 3}  # moved, not orphaned or duplicated
    status, _, _ = request(app, "DELETE", f"/api/studies/{_study_id(app, 'renamed')}")
    assert status == 204
    assert optuna.get_all_study_names(storage) == [] and _rows(storage) == {}
    assert request(app, "DELETE", f"/api/studies/{study_id}")[0] == 404  # gone already: nothing to follow


# -- the real server --------------------------------------------------------------------------


@pytest.mark.slow
def test_the_server_requires_its_secret_and_refuses_writes(finished_study: FinishedStudy, tmp_path: Path) -> None:
    """``skipsearch dashboard`` as a process with a token in its environment, over HTTP."""
    env = {**os.environ, TOKEN_ENV: "tok-" + "9" * 20}
    command = [sys.executable, "-m", "skipsearch", "dashboard", "--storage", finished_study.url, "--port", "0"]
    log = tmp_path / "stderr.txt"
    with log.open("w") as err:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, env=env)
    try:
        deadline = time.monotonic() + 120  # cold imports on a busy machine
        while not (match := re.search(r"listening on (http://127\.0\.0\.1:\d+)/", log.read_text())):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        base = match.group(1)
        assert "read-only" in log.read_text() and "token or password required" in log.read_text()

        def call(method: str, headers: dict[str, str]) -> int:
            req = urllib.request.Request(f"{base}/api/studies", method=method, headers=headers, data=None)
            try:
                with urllib.request.urlopen(req, timeout=60) as response:
                    return int(response.status)
            except urllib.error.HTTPError as exc:
                return int(exc.code)

        bearer = {"Authorization": f"Bearer {env[TOKEN_ENV]}"}
        assert call("GET", {}) == 401
        assert call("GET", bearer) == 200
        assert call("POST", {**bearer, "Content-Type": "application/json"}) == 403
        assert call("GET", {**bearer, "Host": "rebound.example"}) == 403
    finally:
        proc.kill()
        proc.wait(timeout=30)
