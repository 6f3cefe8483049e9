"""Studies from Python, without a study file: for notebooks and scripts.

::

    from sklearn.datasets import load_breast_cancer
    import skipsearch

    x, y = load_breast_cancer(return_X_y=True)
    study = skipsearch.Study.from_arrays(x, y, name="cancer", trials=12, training={"epochs": 5})
    study.run()
    study.pareto()                                   # a pandas DataFrame, best first
    study.export("exports", knee=True)               # a bundle: code, ONNX, weights, manifest

A :class:`Study` is the same study ``skipsearch run`` makes from a file: its trials land in the
same storage and results tables, and every command (``report``, ``dashboard``, ``export``) works on it.
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from skipsearch.errors import UserError
from skipsearch.search import StudyConfig, create_study, load_study_config, parse_study_config, run_worker
from skipsearch.tasks import METRIC_DIRECTIONS, REGRESSION_METRICS

DEFAULT_STORAGE = "sqlite:///skipsearch.db"
"""An SQLite file in the working directory, as the command line's default."""

DATA_DIR = "skipsearch-data"
"""Where :meth:`Study.from_arrays` keeps its arrays (an ``.npz`` file named by its content hash)."""


class Study:
    """A search study: its configuration and the storage its trials go to."""

    def __init__(self, config: StudyConfig, storage: str = DEFAULT_STORAGE, name: str | None = None) -> None:
        self.config = config
        self.storage = storage
        self.name = name or config.name

    @classmethod
    def from_file(cls, path: str | Path, storage: str = DEFAULT_STORAGE, name: str | None = None) -> Study:
        """The study of a study file (``studies/*.yaml``)."""
        return cls(load_study_config(path), storage, name)

    @classmethod
    def from_config(
        cls,
        config: StudyConfig | Mapping[str, Any],
        storage: str = DEFAULT_STORAGE,
        *,
        base_dir: str | Path | None = None,
        name: str | None = None,
    ) -> Study:
        """The study of a :class:`~skipsearch.search.StudyConfig`, or of a mapping with a study file's
        keys (validated as a file would be; data paths are relative to ``base_dir``, default the
        current folder)."""
        if not isinstance(config, StudyConfig):
            config = parse_study_config(dict(config), "study config", base_dir)
        return cls(config, storage, name)

    @classmethod
    def from_arrays(
        cls,
        x: Any,
        y: Any,
        *,
        name: str,
        x_test: Any = None,
        y_test: Any = None,
        metric: str = "accuracy",
        hidden: Sequence[int] = (64, 64, 64),
        backbone: Mapping[str, Any] | None = None,
        space: Mapping[str, Any] | None = None,
        objectives: Sequence[str] | None = None,
        training: Mapping[str, Any] | None = None,
        trials: int = 20,
        seed: int = 0,
        sampler: Mapping[str, Any] | None = None,
        storage: str = DEFAULT_STORAGE,
        data_dir: str | Path = DATA_DIR,
        **task_options: Any,
    ) -> Study:
        """A study of in-memory arrays: ``x`` (samples first) and ``y`` (class indices, or targets
        for ``metric`` ``rmse`` / ``r2``), optionally a test split.

        The arrays are saved in ``data_dir`` as an ``.npz`` named by its content hash, and the study
        is an ordinary ``file`` task study of it (so workers, exports and ``reproduce`` find the
        data). Defaults: an MLP of ``hidden`` widths sized to the data, candidate skips up to span 2
        (``off``/``add``), objectives the metric and MACs. ``backbone``, ``space``, ``objectives``,
        ``training`` and ``sampler`` take a study file's values; ``task_options`` the ``file``
        task's (``val_fraction``, ``test_fraction``, ``standardize``, ...).
        """
        if metric not in METRIC_DIRECTIONS:
            raise UserError(f"metric {metric!r}: use one of {', '.join(METRIC_DIRECTIONS)}")
        arrays = {"x": np.asarray(x), "y": np.asarray(y)}
        if (x_test is None) != (y_test is None):
            raise UserError("give both x_test and y_test, or neither")
        if x_test is not None:
            arrays.update(x_test=np.asarray(x_test), y_test=np.asarray(y_test))
        path = save_arrays(arrays, Path(data_dir))
        if backbone is None:
            features = math.prod(arrays["x"].shape[1:]) if arrays["x"].ndim > 1 else 1
            backbone = {
                "family": "mlp",
                "args": {"input_features": features, "hidden": list(hidden), "classes": _outputs(arrays, metric)},
            }
        config = {
            "name": name,
            "seed": seed,
            "task": {"file": str(path.resolve()), "metric": metric, **task_options},
            "backbone": dict(backbone),
            "space": dict(space or {"max_span": 2, "choices": ["off", "add"]}),
            "objectives": list(objectives or [f"{metric}:{METRIC_DIRECTIONS[metric]}", "macs:min"]),
            "sampler": dict(sampler or {"name": "tpe"}),
            "training": dict(training or {}),
            "trials": trials,
        }
        return cls.from_config(config, storage)

    # -- running ---------------------------------------------------------------------------------

    def run(self, n_trials: int | None = None, timeout: float | None = None) -> Study:
        """Creates (or resumes) the study and runs trials in this process until it has
        ``n_trials`` (default: the configuration's ``trials``) or ``timeout`` seconds pass."""
        created = create_study(self.config, self.storage, self.name)
        run_worker(self.storage, created.study_name, target=n_trials or self.config.trials, timeout=timeout)
        return self

    # -- results ---------------------------------------------------------------------------------

    @property
    def metric(self) -> str:
        """The task's metric (``accuracy``, ``miou``, ``rmse`` or ``r2``)."""
        return self.config.task.metric

    def results(self) -> pd.DataFrame:
        """Every evaluated trial, one row each (the results tables' columns; the task's metric is
        also under its own name when it is not accuracy)."""
        from skipsearch.results import connect, evaluations

        return self._named(evaluations(connect(self.storage, existing=True), [self.name]))

    def pareto(self) -> pd.DataFrame:
        """The Pareto front of the study's objectives, sorted by the first one (best first)."""
        from skipsearch.results import connect, pareto

        front = pareto(connect(self.storage, existing=True), [self.name], self.config.objective_pairs).front
        return self._named(front)

    def export(
        self,
        output: str | Path,
        *,
        format: str = "bundle",
        rank: int | None = None,
        knee: bool = False,
        trial: int | None = None,
        hash: str | None = None,
    ) -> list[Path]:
        """Writes one trial (chosen by exactly one of ``rank``, ``knee``, ``trial``, ``hash``) in
        ``format`` (``bundle``, ``pytorch``, ``onnx``, ``json``, ...) into ``output``; returns the files."""
        from skipsearch.export import describe, export_topology, resolve_output, select_trial

        folder = resolve_output(output)
        selected = select_trial(self.storage, self.name, rank=rank, knee=knee, trial=trial, hash=hash)
        info = describe(selected)
        provenance = {**{k: info[k] for k in ("study", "trial", "selector", "state")}, "trial_metrics": info["metrics"]}
        result = export_topology(
            selected.topology,
            format,
            folder,
            name=selected.stem,
            recipe=selected.recipe,
            seed=selected.recipe.seed if selected.recipe else 0,
            provenance=provenance,
        )
        return result.files

    def _named(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self.metric != "accuracy" and "accuracy" in frame.columns:
            frame = frame.copy()
            frame.insert(frame.columns.get_loc("accuracy") + 1, self.metric, frame["accuracy"])
            if "test_accuracy" in frame.columns:
                frame.insert(frame.columns.get_loc("test_accuracy") + 1, f"test_{self.metric}", frame["test_accuracy"])
        return frame

    def __repr__(self) -> str:
        return f"Study({self.name!r}, task={self.config.task.name!r}, metric={self.metric!r}, storage={self.storage!r})"


def save_arrays(arrays: Mapping[str, np.ndarray], folder: Path) -> Path:
    """Saves arrays as ``folder/arrays-<hash>.npz``, the hash of their names, types, shapes and values:
    the same arrays give the same file, written once (an ``.npz`` holds timestamps, so rewriting it
    would change the study's data fingerprint)."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}:{array.dtype.str}:{array.shape}".encode())
        digest.update(array.tobytes() if array.dtype != object else repr(array.tolist()).encode())
    path = folder / f"arrays-{digest.hexdigest()[:16]}.npz"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.savez(buffer, **dict(arrays))  # type: ignore[arg-type]
        path.write_bytes(buffer.getvalue())
    return path


def _outputs(arrays: Mapping[str, np.ndarray], metric: str) -> int:
    """Outputs the default backbone needs: target columns (regression) or classes."""
    y = arrays["y"]
    if metric in REGRESSION_METRICS:
        return 1 if y.ndim == 1 else int(math.prod(y.shape[1:]))
    labels = [y, arrays["y_test"]] if "y_test" in arrays else [y]
    try:
        return int(max(np.max(v) for v in labels)) + 1
    except (TypeError, ValueError):
        return 1  # not class indices: the task's own check names the problem
