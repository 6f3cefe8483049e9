"""docker-compose.yml and the Dockerfile: their structure, and their exact command lines run as
processes against the real PostgreSQL (there is no Docker engine where the tests run)."""

from __future__ import annotations

import re
import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from optuna.trial import TrialState
from reliability_helpers import REPO, SHORT, Processes, assert_nothing_lost, no_traceback, output, skipsearch_command
from reliability_helpers import trials as stored_trials

from skipsearch.cli import app
from skipsearch.cli._dashboard_access import TOKEN_ENV
from skipsearch.search._artifacts import ARTIFACT_DIR_ENV

pytestmark = [pytest.mark.reliability]

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
DOTENV = {"POSTGRES_PASSWORD": "not-a-real-secret", "SKIPSEARCH_DASHBOARD_TOKEN": "not-a-real-token"}
LIBRARY_ENV = {ARTIFACT_DIR_ENV, TOKEN_ENV}
"""Variables read by the library rather than by a command's options."""


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's variable syntax: ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}``, ``$$``."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if env.get(name):
            return env[name]
        if op == ":?":
            raise KeyError(f"{name}: {arg}")
        return arg or ""

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, value).replace("$$", "$")


def service_env(name: str, dotenv: dict[str, str] = DOTENV) -> dict[str, str]:
    return {key: interpolate(str(value), dotenv) for key, value in SERVICES[name].get("environment", {}).items()}


def _cli_command(name: str) -> Any:
    group = typer.main.get_command(app)
    command = group.commands.get(name)  # type: ignore[attr-defined]
    assert command is not None, f"skipsearch has no {name!r} command"
    return command


def _check_cli_line(line: list[str], env: dict[str, str]) -> None:
    """The program is skipsearch, the sub-command exists, every option it passes or reads from the
    environment is one the sub-command declares."""
    assert line[0] == "skipsearch"
    command = _cli_command(line[1])
    options = {opt for param in command.params for opt in param.opts}
    envvars = {param.envvar for param in command.params if getattr(param, "envvar", None)}
    for token in line[2:]:
        if token.startswith("--"):
            assert token in options, f"skipsearch {line[1]} has no option {token}"
    for key in env:
        if key.startswith("SKIPSEARCH_") and key not in LIBRARY_ENV:
            assert key in envvars, f"skipsearch {line[1]} does not read {key}"


# -- structure --------------------------------------------------------------------------------


def test_services_and_their_commands() -> None:
    assert set(SERVICES) == {"postgres", "migrate", "worker", "dashboard"}
    pg = SERVICES["postgres"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in pg["volumes"]) and "pgdata" in COMPOSE["volumes"]
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    assert SERVICES["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("worker", "dashboard"):
        assert SERVICES[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        _check_cli_line(SERVICES[name]["command"], service_env(name))
    _check_cli_line(SERVICES["migrate"]["command"], service_env("migrate"))
    worker = SERVICES["worker"]
    # --scale worker=N needs no fixed name or published port; a killed worker comes back.
    assert "container_name" not in worker and "ports" not in worker
    assert worker["restart"] == "on-failure" and worker["command"][1] == "worker"
    grace = float(service_env("worker")["SKIPSEARCH_STOP_GRACE"])
    assert grace < float(worker["stop_grace_period"].rstrip("s"))  # SIGTERM's grace ends before SIGKILL
    assert service_env("worker")["SKIPSEARCH_STORAGE"].startswith("postgresql+psycopg://skipsearch:")
    ports = SERVICES["dashboard"]["ports"]
    assert ports and all(p.startswith("127.0.0.1:") for p in ports)


def test_secrets_come_from_the_environment() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    assert "${POSTGRES_PASSWORD:?" in text and DOTENV["POSTGRES_PASSWORD"] not in text
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):
        service_env("worker", {})
    with pytest.raises(KeyError, match=TOKEN_ENV):  # the dashboard binds 0.0.0.0 in its container
        service_env("dashboard", {"POSTGRES_PASSWORD": "x"})
    dockerfile = (REPO / "Dockerfile").read_text()
    assert not re.search(r"^\s*(ENV|ARG)\b.*(PASSWORD|SECRET|TOKEN|STORAGE)", dockerfile, re.MULTILINE | re.IGNORECASE)
    assert ".env" in (REPO / ".dockerignore").read_text().split()
    assert ".env" in (REPO / ".gitignore").read_text().split()
    example = dict(
        line.split("=", 1)
        for line in (REPO / ".env.example").read_text().splitlines()
        if "=" in line and line[0] != "#"
    )
    assert example["SKIPSEARCH_STUDY_FILE"] in {p.name for p in (REPO / "studies").glob("*.yaml")}


# -- the command lines, run ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _local(name: str, url: str, tmp_path: Path, study_file: Path | None = None) -> dict[str, str]:
    """The service's environment with this machine's paths in place of the containers'."""
    env = service_env(name)
    env["SKIPSEARCH_STORAGE"] = url
    env["SKIPSEARCH_ARTIFACT_DIR"] = str(tmp_path / "artifacts")
    if "SKIPSEARCH_STUDY_FILE" in env and study_file is not None:
        env["SKIPSEARCH_STUDY_FILE"] = str(study_file)
    return env


def _line(name: str) -> list[str]:
    command = [interpolate(part, DOTENV) for part in SERVICES[name]["command"]]
    return [*skipsearch_command(), *command[1:]]


@pytest.mark.slow
@pytest.mark.postgres
def test_compose_command_lines_run(postgres_url: str, processes: Processes, tmp_path: Path) -> None:
    (tmp_path / "artifacts").mkdir()
    study_file = tmp_path / "study.yaml"
    study_file.write_text(yaml.safe_dump({**SHORT, "trials": 6}))
    study = service_env("worker")["SKIPSEARCH_STUDY"]

    migrate = processes.start(_line("migrate"), _local("migrate", postgres_url, tmp_path, study_file))
    assert processes.wait([migrate], timeout=120) == [0], output(migrate)
    assert f"study '{study}' ready" in output(migrate)

    workers = [processes.start(_line("worker"), _local("worker", postgres_url, tmp_path)) for _ in range(2)]
    assert processes.wait(workers, timeout=240) == [0, 0], [output(w)[-1500:] for w in workers]
    stored = assert_nothing_lost(postgres_url, study, 6)
    assert {t.user_attrs["worker"] for t in stored if t.state == TrialState.COMPLETE}  # who ran what
    assert all(no_traceback(output(w)) for w in workers)

    port = _free_port()
    line = _line("dashboard")
    line[line.index("--port") + 1] = str(port)
    dashboard = processes.start(line, _local("dashboard", postgres_url, tmp_path))
    body = _get(f"http://127.0.0.1:{port}/api/studies", dashboard, token=DOTENV["SKIPSEARCH_DASHBOARD_TOKEN"])
    assert study in body
    dashboard.terminate()
    dashboard.wait(timeout=30)
    assert len(stored_trials(postgres_url, study)) == len(stored)


def _get(url: str, proc: object, token: str, timeout: float = 60) -> str:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:  # type: ignore[attr-defined]
                raise AssertionError(output(proc)) from None  # type: ignore[arg-type]
            time.sleep(0.5)
