"""What a shared ``skipsearch dashboard`` lets through: WSGI middleware in front of optuna-dashboard.

:class:`AccessGuard` answers, in this order:

- a ``Host`` header naming neither the bound address, ``localhost``, ``127.0.0.1``, ``::1`` nor a
  name given with ``--allowed-host`` (or a port other than the served one): 403. A page on another
  site that rebinds its DNS name to this machine sends its own name, so it cannot read the studies;
- a request without the secret when one is set (``SKIPSEARCH_DASHBOARD_TOKEN`` as a bearer token or a
  basic-auth password, ``SKIPSEARCH_DASHBOARD_PASSWORD`` as a basic-auth password, for the user
  ``SKIPSEARCH_DASHBOARD_USER`` when that is set): 401 with a basic-auth challenge, so a browser asks;
- any method but GET, HEAD and OPTIONS unless the dashboard was started with ``--allow-writes``:
  403 (optuna-dashboard creates, renames and deletes studies, saves notes, tells trials and uploads
  or deletes artifacts through POST, PUT and DELETE). With writes allowed, a write whose ``Origin``
  is another site is refused too (cross-site request forgery).

:class:`StudyRowsFollower` keeps the results rows with their studies when the dashboard deletes
(rows deleted) or renames (rows moved to the new name) a study.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import io
import ipaddress
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from skipsearch.errors import UserError

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from optuna.storages import BaseStorage

TOKEN_ENV = "SKIPSEARCH_DASHBOARD_TOKEN"
PASSWORD_ENV = "SKIPSEARCH_DASHBOARD_PASSWORD"
USER_ENV = "SKIPSEARCH_DASHBOARD_USER"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_WILDCARDS = frozenset({"0.0.0.0", "::", ""})
REALM = "skipsearch dashboard"


@dataclass
class Access:
    """Who may use the dashboard and how: the names it answers to, its secret, whether it writes."""

    hosts: frozenset[str]
    """Host names and addresses (lower case, no port) that ``Host`` headers may name."""
    port: int | None = None
    """The port served (once bound): a ``Host`` header with another port is refused."""
    token: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    user: str | None = None
    allow_writes: bool = False

    @classmethod
    def for_server(
        cls,
        host: str,
        allowed_hosts: Iterable[str] = (),
        *,
        allow_writes: bool = False,
        environ: Mapping[str, str] | None = None,
    ) -> Access:
        """The access of a dashboard bound to ``host``; the secret comes from ``environ`` (default:
        the process environment). Raises :class:`UserError` when ``host`` is beyond this machine and
        no secret is set, or a name of ``allowed_hosts`` is not a host name."""
        env = os.environ if environ is None else environ
        names = set(LOCAL_NAMES)
        if _normalise(host) not in _WILDCARDS:
            names.add(_normalise(host))
        for name in allowed_hosts:
            if not re.fullmatch(r"[A-Za-z0-9._:\-\[\]]+", name):
                raise UserError(f"--allowed-host {name!r}: not a host name or address")
            names.add(_normalise(name))
        access = cls(
            frozenset(names),
            token=env.get(TOKEN_ENV) or None,
            password=env.get(PASSWORD_ENV) or None,
            user=env.get(USER_ENV) or None,
            allow_writes=allow_writes,
        )
        if not is_loopback(host) and not access.has_secret:
            raise UserError(
                f"--host {host}: a dashboard reachable beyond this machine needs a secret; set {TOKEN_ENV} "
                f"or {PASSWORD_ENV} in the environment (never on the command line), or bind 127.0.0.1"
            )
        return access

    @property
    def has_secret(self) -> bool:
        return bool(self.token or self.password)

    def host_allowed(self, header: str | None) -> bool:
        if not header:
            return False
        name, port = _split_host(header)
        return name in self.hosts and (port is None or self.port is None or port == self.port)

    def authorised(self, header: str | None) -> bool:
        """Whether an ``Authorization`` header carries the secret (compared in constant time)."""
        if not self.has_secret:
            return True
        scheme, _, credentials = (header or "").strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            return _matches(credentials.strip(), self.token)
        if scheme != "basic":
            return False
        try:
            user, _, password = base64.b64decode(credentials.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user_ok = self.user is None or _matches(user, self.user)
        # Both comparisons run whichever matches, so the time taken tells nothing about the secrets.
        secret_ok = [_matches(password, self.password), _matches(password, self.token)]
        return user_ok and any(secret_ok)

    def origin_allowed(self, origin: str | None) -> bool:
        """A write's ``Origin`` (absent for non-browser clients) must be this dashboard's."""
        if origin is None:
            return True
        try:
            parts = urlsplit(origin)
            port = parts.port
        except ValueError:
            return False
        return (parts.hostname or "") in self.hosts and (port is None or self.port is None or port == self.port)


class AccessGuard:
    """WSGI middleware enforcing an :class:`Access` (see the module docstring)."""

    def __init__(self, app: WSGIApplication, access: Access) -> None:
        self.app = app
        self.access = access

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        refusal = self.refusal(environ)
        if refusal is None:
            return self.app(environ, start_response)
        status, reason, headers = refusal
        body = json.dumps({"reason": reason}).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *headers])
        return [body]

    def refusal(self, environ: WSGIEnvironment) -> tuple[str, str, list[tuple[str, str]]] | None:
        """``(status, reason, extra headers)`` of a refused request; ``None`` lets it through."""
        access = self.access
        host = environ.get("HTTP_HOST")
        if not access.host_allowed(host):
            return "403 Forbidden", f"this dashboard does not serve the host {host!r} (see --allowed-host)", []
        if not access.authorised(environ.get("HTTP_AUTHORIZATION")):
            challenge = ("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"')
            return "401 Unauthorized", "this dashboard needs its token or password", [challenge]
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if method in READ_METHODS:
            return None
        if not access.allow_writes:
            reason = (
                "this dashboard is read-only: start it with --allow-writes to create, rename or delete studies, "
                "save notes or change trials"
            )
            return "403 Forbidden", reason, []
        if not access.origin_allowed(environ.get("HTTP_ORIGIN")):
            return "403 Forbidden", f"a write from another site ({environ.get('HTTP_ORIGIN')}) is refused", []
        return None


_DELETE = re.compile(r"^/api/studies/(\d+)/?$")
_RENAME = re.compile(r"^/api/studies/(\d+)/rename/?$")


class StudyRowsFollower:
    """WSGI middleware: when optuna-dashboard deletes or renames a study, the study's results rows
    are deleted or moved to the new name (``open_results`` opens the results database on first use)."""

    def __init__(self, app: WSGIApplication, storage: BaseStorage, open_results: Callable[[], Any]) -> None:
        self.app = app
        self.storage = storage
        self.open_results = open_results
        self._engine: Any = None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method, path = environ.get("REQUEST_METHOD", "GET").upper(), environ.get("PATH_INFO", "")
        deleting = method == "DELETE" and _DELETE.match(path)
        renaming = method == "POST" and _RENAME.match(path)
        match = deleting or renaming
        if not match:
            return self.app(environ, start_response)
        try:
            old = self.storage.get_study_name_from_id(int(match.group(1)))
        except KeyError:
            return self.app(environ, start_response)  # the dashboard answers 404
        new = _json_body(environ).get("study_name") if renaming else None
        statuses: list[str] = []

        def recording(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            statuses.append(status)
            return start_response(status, headers, exc_info)

        body = list(self.app(environ, recording))
        if statuses and statuses[-1].startswith("204") and deleting:
            self._results_rows(delete=old)
        elif statuses and statuses[-1].startswith("201") and renaming and isinstance(new, str):
            self._results_rows(rename=(old, new))
        return body

    def _results_rows(self, *, delete: str | None = None, rename: tuple[str, str] | None = None) -> None:
        from skipsearch.results import delete_study_rows, rename_study_rows

        if self._engine is None:
            self._engine = self.open_results()
        if delete is not None:
            delete_study_rows(self._engine, delete)
        if rename is not None:
            rename_study_rows(self._engine, *rename)


_MAX_BODY = 1 << 16
"""A rename's body is a few bytes; a bigger one is left to the dashboard unread."""


def _json_body(environ: WSGIEnvironment) -> dict[str, Any]:
    """The request's JSON object (the body is put back for the application to read)."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if not 0 < length <= _MAX_BODY:
        return {}
    raw = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(raw)
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps a server on this machine."""
    name = _normalise(host)
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _normalise(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def _split_host(header: str) -> tuple[str, int | None]:
    """``(name, port)`` of a ``Host`` header: ``example.org:8080``, ``[::1]:8080``, ``localhost``."""
    header = header.strip()
    if header.startswith("["):
        name, _, rest = header[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif header.count(":") == 1:
        name, _, port_text = header.partition(":")
    else:
        name, port_text = header, ""
    if port_text and not port_text.isdigit():
        return "", None  # a malformed port matches no allowed host
    return _normalise(name), int(port_text) if port_text else None


def _matches(given: str, secret: str | None) -> bool:
    if secret is None:
        return False
    return hmac.compare_digest(given.encode(), secret.encode())
