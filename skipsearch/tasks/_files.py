"""Tasks from the user's files: tables (CSV, Parquet), arrays (``.npz``, ``.npy``), image folders
(one sub-folder per class) and segmentation folders (``images/`` and ``masks/``).

The study file names the file; its path is stored absolute together with a content hash
(:func:`fingerprint`), so a worker on another machine either reads the very same data or refuses.
Files that moved are looked for by name in the current folder and the folders of
``SKIPSEARCH_DATA_PATH`` and accepted when their content hash matches.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from skipsearch.errors import UserError
from skipsearch.tasks._arrays import SplitSettings, check_metric, class_indices, task_from_arrays
from skipsearch.tasks._data import REGRESSION_METRICS, TaskData

DATA_PATH_ENV = "SKIPSEARCH_DATA_PATH"
"""Folders (separated by ``os.pathsep``) searched for a study's data file that is not where the
study found it, e.g. on a worker or when reproducing a bundle on another machine."""

KINDS = ("table", "arrays", "images", "segmentation")
TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
ARRAY_SUFFIXES = (".npz", ".npy")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_CATEGORIES = 100
"""A text column with more distinct values than this is refused rather than one-hot encoded
(it is most likely an identifier or free text, and would add as many input features)."""


def infer_kind(path: Path) -> str:
    """The kind of dataset a path holds, from its suffix (files) or layout (folders)."""
    if path.is_dir():
        return "segmentation" if (path / "images").is_dir() and (path / "masks").is_dir() else "images"
    suffix = path.suffix.lower()
    if suffix in TABLE_SUFFIXES:
        return "table"
    if suffix in ARRAY_SUFFIXES:
        return "arrays"
    known = ", ".join((*TABLE_SUFFIXES, *ARRAY_SUFFIXES))
    raise UserError(f"{path}: cannot tell the kind of data from its suffix (known: {known}, or a folder of images)")


def file_task(
    *,
    seed: int = 0,
    file: str,
    kind: str | None = None,
    target: str | list[str] | None = None,
    metric: str | None = None,
    test_file: str | None = None,
    test_target: str | None = None,
    size: int | list[int] | None = None,
    color: str | None = None,
    classes: int | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    data_seed: int = 0,
    standardize: bool = True,
    fingerprint: str | None = None,
) -> TaskData:
    """The task of a dataset on disk (the builder of the ``file`` task; see README "Your own data").

    ``kind`` is inferred from ``file`` when not given. ``target`` names the target column(s) of a
    table, or the labels ``.npy`` file of an ``x`` ``.npy`` file. ``metric`` is ``accuracy``
    (default; ``miou`` for segmentation), or ``rmse`` / ``r2`` for regression. ``test_file`` (and
    ``test_target``) give a test split; otherwise one is drawn (see :class:`SplitSettings`).
    ``size`` (``[height, width]`` or one number) resizes images, ``color`` (``grey`` or ``rgb``)
    converts them. ``fingerprint``, when given, must match the files' content hash.
    """
    main, test_path = Path(file), test_file
    labels = target if main.suffix.lower() == ".npy" and isinstance(target, str) else None
    named = [main, *(Path(p) for p in (labels, test_path, test_target) if p)]
    found = dict(zip(named, locate(named, fingerprint), strict=True))
    kind = kind or infer_kind(found[main])
    if kind not in KINDS:
        raise UserError(f"option 'kind' must be one of {', '.join(KINDS)}; got {kind!r}")
    metric = check_metric(metric or ("miou" if kind == "segmentation" else "accuracy"))
    split = SplitSettings(val_fraction, test_fraction, seed, data_seed, standardize)
    digest = fingerprint or combined_fingerprint(list(found.values()))
    request = _Request(found, main, target, metric, test_path, test_target, split, digest)
    if kind == "table":
        return _table_task(request)
    if kind == "arrays":
        return _arrays_task(request)
    from skipsearch.tasks._images import image_folder, segmentation_folder

    shape = _size(size)
    read = image_folder if kind == "images" else segmentation_folder
    x, y = read(found[main], shape, color)
    test = read(request.path(test_path), shape, color) if test_path else None
    return request.task(x, y, test, classes if kind == "segmentation" else None)


@dataclass(frozen=True)
class _Request:
    """What a table or array loader needs: the files as found, and the task's options."""

    found: dict[Path, Path]
    """Each file the options name -> where it was found."""
    main: Path
    target: str | list[str] | None
    metric: str
    test_path: str | None
    test_target: str | None
    split: SplitSettings
    digest: str

    def path(self, option: str) -> Path:
        """Where the file an option names was found."""
        return self.found[Path(option)]

    def task(self, x: np.ndarray, y: np.ndarray, test: Any, num_classes: int | None = None) -> TaskData:
        """The task of the loaded arrays: checked, split and scaled."""
        return task_from_arrays(
            self.main.name,
            self.metric,
            x,
            y,
            test,
            self.split,
            source=str(self.main),
            num_classes=num_classes,
            fingerprint=self.digest,
        )


def _size(size: int | list[int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    values = [size, size] if isinstance(size, int) else list(size)
    if len(values) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
        raise UserError(f"option 'size' must be a positive integer or [height, width]; got {size!r}")
    return values[0], values[1]


# -- fingerprints and finding files --------------------------------------------------------------


def fingerprint(path: Path) -> str:
    """SHA-256 of a file's bytes, or of a folder's files (relative names and bytes, in name order)."""
    digest = hashlib.sha256()
    members = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file() and not _hidden(p, path))
    for member in members:
        if member != path:
            digest.update(member.relative_to(path).as_posix().encode() + b"\0")
        with member.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def combined_fingerprint(paths: Sequence[Path]) -> str:
    """The fingerprint of a task's data: one file's own, or a hash of its files' fingerprints."""
    prints = [fingerprint(p) for p in paths]
    return prints[0] if len(prints) == 1 else hashlib.sha256("".join(prints).encode()).hexdigest()


def locate(paths: Sequence[Path], expected: str | None) -> list[Path]:
    """The task's files: where they were, or (moved) a file of the same name in the current folder
    or a ``SKIPSEARCH_DATA_PATH`` folder whose content matches ``expected``; else one line saying
    which file is needed."""
    dirs = [Path.cwd(), *(Path(d) for d in os.environ.get(DATA_PATH_ENV, "").split(os.pathsep) if d)]
    options = [[p, *(d / p.name for d in dirs if (d / p.name) != p)] for p in paths]
    if expected is None:
        for path in paths:
            if not path.exists():
                raise UserError(f"{path}: no such file or folder")
        return list(paths)
    if len(paths) == 1:
        for candidate in options[0]:
            if candidate.exists() and fingerprint(candidate) == expected:
                return [candidate]
    else:
        chosen = [next((c for c in o if c.exists()), o[0]) for o in options]
        if all(c.exists() for c in chosen) and combined_fingerprint(chosen) == expected:
            return chosen
    names = " + ".join(str(p) for p in paths)
    if all(p.exists() for p in paths):
        raise UserError(
            f"{names}: the data differs from the study's (fingerprint {combined_fingerprint(paths)[:16]}, "
            f"the study's {expected[:16]}); every worker needs the same file"
        )
    raise UserError(
        f"{names}: not found; the study needs this data (fingerprint {expected[:16]}): put it there, in the "
        f"current folder or in a folder of {DATA_PATH_ENV}"
    )


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


# -- memory ----------------------------------------------------------------------------------------


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (``None`` where that cannot be told)."""
    try:
        import psutil
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)


def check_memory(path: Path, needed: int) -> None:
    """Refuses data whose arrays would need more memory than is available, stating both sizes."""
    available = available_memory()
    if available is not None and needed > available:
        raise UserError(
            f"{path}: loading it needs about {_gib(needed)} of memory, but {_gib(available)} is available; "
            "use a smaller file or a machine with more memory"
        )


def _gib(size: int) -> str:
    return f"{size / 2**30:.1f} GiB"


# -- tables ----------------------------------------------------------------------------------------


def read_table(path: Path) -> Any:
    """A CSV or Parquet file as a pandas DataFrame (one line naming the file when unreadable)."""
    import pandas as pd

    # Parsed text and pandas' float64 columns take a few times the file's size.
    check_memory(path, path.stat().st_size * (3 if path.suffix.lower() == ".csv" else 6))
    try:
        if path.suffix.lower() == ".csv":
            return pd.read_csv(path)
        return pd.read_parquet(path)
    except (ValueError, OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        text = " ".join(str(exc).split())
        raise UserError(f"{path}: cannot read the table ({text})") from None


def _table_task(r: _Request) -> TaskData:
    import pandas as pd

    if r.target is None:
        raise UserError(f"{r.main}: a table needs option 'target' naming its target column")
    targets = [r.target] if isinstance(r.target, str) else list(r.target)
    frames = [read_table(r.path(str(r.main))), *([read_table(r.path(r.test_path))] if r.test_path else [])]
    sources = [str(r.main), *([r.test_path] if r.test_path else [])]
    for frame, source in zip(frames, sources, strict=True):
        missing = [t for t in targets if t not in frame.columns]
        if missing:
            raise UserError(f"{source}: no column {missing[0]!r} (columns: {', '.join(map(str, frame.columns))})")
    features = [c for c in frames[0].columns if c not in targets]
    if not features:
        raise UserError(f"{r.main}: no feature columns besides the target")
    if r.test_path and (absent := [c for c in features if c not in frames[1].columns]):
        raise UserError(f"{r.test_path}: no column {absent[0]!r}, which the training table has")
    for frame, source in zip(frames, sources, strict=True):
        _check_cells(frame, [*features, *targets], source)
    # One encoding for both tables: a category seen only in the test table gets its own column too.
    encoded = _one_hot(pd.concat([f[features] for f in frames], ignore_index=True), str(r.main))
    x_all = encoded.to_numpy(dtype=np.float64)
    y_all = _table_targets(pd.concat([f[targets] for f in frames], ignore_index=True), targets, r.metric, sources)
    n = len(frames[0])
    return r.task(x_all[:n], y_all[:n], (x_all[n:], y_all[n:]) if r.test_path else None)


def _check_cells(frame: Any, columns: list[str], source: str) -> None:
    """Refuses missing and infinite cells, naming the first one's row (1-based, header not counted)."""
    for column in columns:
        values = frame[column]
        missing = values.isna().to_numpy()
        if values.dtype.kind in "fc":
            missing = missing | ~np.isfinite(values.to_numpy(dtype=np.float64))
        if missing.any():
            row = int(np.flatnonzero(missing)[0])
            raise UserError(f"{source}: row {row + 1}, column {column!r}: {values.iloc[row]} is not a finite value")


def _one_hot(features: Any, source: str) -> Any:
    """Numeric columns as they are; text, category and boolean columns one-hot encoded (one
    0/1 feature per distinct value, sorted)."""
    import pandas as pd

    text = [c for c in features.columns if features[c].dtype.kind not in "iuf"]
    for column in text:
        distinct = features[column].nunique()
        if distinct > MAX_CATEGORIES:
            raise UserError(
                f"{source}: column {column!r} has {distinct} distinct non-numeric values; one-hot encoding "
                f"is limited to {MAX_CATEGORIES}: drop it or encode it as numbers"
            )
    return pd.get_dummies(features, columns=text, dtype=np.float64) if text else features


def _table_targets(frame: Any, targets: list[str], metric: str, sources: list[str]) -> np.ndarray:
    if metric in REGRESSION_METRICS:
        for column in targets:
            if frame[column].dtype.kind not in "iuf":
                value = next((v for v in frame[column] if not isinstance(v, int | float)), frame[column].iloc[0])
                raise UserError(f"{sources[0]}: regression target column {column!r} holds text ({value!r})")
        return frame[targets].to_numpy(dtype=np.float64)
    if len(targets) != 1:
        raise UserError(f"{sources[0]}: a classification task has one target column, got {len(targets)}")
    column = frame[targets[0]]
    if column.dtype.kind == "f":
        class_indices(column.to_numpy(), f"{sources[0]}: column {targets[0]!r}")  # refuses fractions
    values = column.to_numpy()
    classes = np.unique(values.astype(str) if column.dtype.kind not in "iuf" else values)
    if len(classes) > MAX_CATEGORIES and len(classes) > len(values) // 2:
        raise UserError(
            f"{sources[0]}: column {targets[0]!r} has {len(classes)} distinct values in {len(values)} rows: "
            "that looks like a continuous target; for regression set the task's metric to rmse or r2"
        )
    keyed = values.astype(str) if column.dtype.kind not in "iuf" else values
    return np.searchsorted(classes, keyed).astype(np.int64)


# -- array files -----------------------------------------------------------------------------------


def _arrays_task(r: _Request) -> TaskData:
    if r.main.suffix.lower() == ".npy":
        if not isinstance(r.target, str):
            raise UserError(f"{r.main}: an x .npy file needs option 'target' naming its labels .npy file")
        x, y = _npy(r.path(str(r.main))), _npy(r.path(r.target))
        test = None
        if r.test_path:
            if not r.test_target:
                raise UserError(f"{r.test_path}: a test x .npy file needs option 'test_target' (its labels file)")
            test = (_npy(r.path(r.test_path)), _npy(r.path(r.test_target)))
    else:
        arrays = _npz(r.path(str(r.main)))
        x, y = arrays["x"], arrays["y"]
        test = (arrays["x_test"], arrays["y_test"]) if "x_test" in arrays else None
        if r.test_path:
            other = _npz(r.path(r.test_path))
            test = (other["x"], other["y"])
    return r.task(x, y, test)


def _npy(path: Path) -> np.ndarray:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)  # the header only, until copied
    except (ValueError, OSError) as exc:
        raise UserError(f"{path}: not a numpy .npy file ({exc})") from None
    check_memory(path, array.size * 8)
    return np.asarray(array)


def _npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with zipfile.ZipFile(path) as archive:
            size = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise UserError(f"{path}: not a numpy .npz file ({exc})") from None
    check_memory(path, size * 2)
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    for key in ("x", "y"):
        if key not in arrays:
            raise UserError(f"{path}: no array {key!r} (arrays: {', '.join(arrays) or 'none'})")
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise UserError(f"{path}: give both 'x_test' and 'y_test', or neither")
    return arrays
