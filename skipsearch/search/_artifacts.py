"""Topology pictures as Optuna artifacts, so optuna-dashboard shows each trial's network next to its numbers.

Where artifacts live: a folder (an Optuna ``FileSystemArtifactStore``). It is, in this order, the
folder given explicitly (``--artifact-dir``), the environment variable ``SKIPSEARCH_ARTIFACT_DIR``,
or, for an SQLite storage, ``skipsearch-artifacts/`` next to the database file. A server database
(PostgreSQL) has no natural folder: without one of the first two, pictures are skipped with a
warning. Workers on several machines must all see the same folder (a shared file system).
``SKIPSEARCH_ARTIFACT_DIR=off`` turns pictures off.

Optuna refuses to change a trial once it has finished, and study callbacks only run after that, so
the picture is uploaded by a thin wrapper around the objective, right after the objective returns
(or prunes or fails the trial on purpose) and while the trial is still running. A failed upload
logs a warning and never fails the trial. Pictures are cached per topology hash within a worker,
so a reused topology costs a file copy, not a drawing.

optuna-dashboard shows artifacts as 200-pixel cards, so each picture is also put in the trial's
note (Markdown, shown at full width on the trial's page): an SVG at least
:data:`skipsearch.viz.MIN_FILE_WIDTH_IN` inches (over 600 pixels) wide.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.artifacts import FileSystemArtifactStore
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from skipsearch.search._objective import TrialFailed
from skipsearch.search._parsed import trial_topology

ARTIFACT_DIR_ENV = "SKIPSEARCH_ARTIFACT_DIR"
"""Environment variable naming the artifact folder (``off`` disables topology pictures)."""

ARTIFACT_FOLDER = "skipsearch-artifacts"
"""The default artifact folder's name, next to an SQLite database file."""

_logger = logging.getLogger("skipsearch.artifacts")


def artifact_dir_for(storage_url: str, artifact_dir: str | Path | None = None) -> Path | None:
    """The artifact folder of a storage (see the module docstring); ``None`` when there is none."""
    chosen = str(artifact_dir) if artifact_dir is not None else os.environ.get(ARTIFACT_DIR_ENV, "")
    if chosen.strip().lower() == "off":
        return None
    if chosen.strip():
        return Path(chosen).expanduser().resolve()
    try:
        url = make_url(storage_url)
    except ArgumentError:
        return None
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(url.database).expanduser().resolve().parent / ARTIFACT_FOLDER
    return None


def open_artifact_store(storage_url: str, artifact_dir: str | Path | None = None) -> FileSystemArtifactStore | None:
    """The artifact store workers upload to (its folder created); ``None``, with a warning, without one."""
    folder = artifact_dir_for(storage_url, artifact_dir)
    if folder is None:
        if os.environ.get(ARTIFACT_DIR_ENV, "").strip().lower() != "off":
            _logger.warning(
                "no artifact folder for this storage: topology pictures are skipped "
                "(set %s to a folder every worker and the dashboard can reach)",
                ARTIFACT_DIR_ENV,
            )
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _logger.warning("cannot create artifact folder %s (%s): topology pictures are skipped", folder, exc)
        return None
    return FileSystemArtifactStore(folder)


class TopologyArtifacts:
    """Wraps a study objective: uploads a drawing of the trial's topology as a trial artifact.

    The upload happens after the objective returns, prunes the trial or fails it on purpose
    (:class:`TrialFailed`); a trial that failed on an unexpected error gets no picture. Upload
    errors are logged, never raised.
    """

    def __init__(self, objective: Callable[[optuna.Trial], Any], store: Any) -> None:
        self.objective = objective
        self.store = store
        self._folder: tempfile.TemporaryDirectory[str] | None = None  # made on the first drawing
        self._drawn: dict[str, Path] = {}

    def __call__(self, trial: optuna.Trial) -> Any:
        try:
            result = self.objective(trial)
        except (optuna.TrialPruned, TrialFailed):
            self.upload(trial)
            raise
        self.upload(trial)
        return result

    def upload(self, trial: optuna.Trial) -> str | None:
        """Draws (or reuses) the trial's topology picture and uploads it; returns the artifact id."""
        if self.store is None:
            return None
        try:
            path = self._drawn.get(trial.user_attrs.get("hash", ""))  # drawn before: no need to parse it again
            if path is None:
                topology = trial_topology(trial)  # reads user attrs, as a FrozenTrial's
                if topology is None:
                    return None
                path = self._picture(topology)
            artifact_id = optuna.artifacts.upload_artifact(
                artifact_store=self.store, file_path=str(path), study_or_trial=trial, mimetype="image/svg+xml"
            )
            self._note(trial, artifact_id)
            return artifact_id
        except Exception as exc:  # a picture is never worth a trial
            _logger.warning("trial %d: topology picture not stored (%s: %s)", trial.number, type(exc).__name__, exc)
            return None

    @staticmethod
    def _note(trial: optuna.Trial, artifact_id: str) -> None:
        """A trial note that shows the picture at full size: optuna-dashboard draws artifacts as
        200-pixel cards, too small to read a topology from."""
        from skipsearch.search._plots import save_trial_note

        study_id, trial_id = trial.study._study_id, trial._trial_id
        skips = trial.user_attrs.get("active_skips", "?")
        url = f"/artifacts/{study_id}/{trial_id}/{artifact_id}"
        body = (
            f"**Topology** `{trial.user_attrs.get('hash', '')}` ({skips} active skips); the same drawing is "
            f"the artifact below.\n\n![topology of trial {trial.number}]({url})\n"
        )
        save_trial_note(trial.storage, study_id, trial_id, body)

    def _picture(self, topology: Any) -> Path:
        path = self._drawn.get(topology.hash)
        if path is None:
            from skipsearch.viz import draw_topology

            if self._folder is None:
                self._folder = tempfile.TemporaryDirectory(prefix="skipsearch-pictures-")
            path = Path(self._folder.name) / f"topology-{topology.hash}.svg"
            draw_topology(topology, path)
            self._drawn[topology.hash] = path
        return path

    def close(self) -> None:
        """Removes the cached drawings (the uploaded copies stay in the store)."""
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None
        self._drawn.clear()
