"""Small datasets on disk for the user-data tests: tables, arrays, PNG folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml


def write_table(path: Path, rows: int = 120, *, regression: bool = False, seed: int = 0) -> Path:
    """A table of three numeric features, one text feature and a target ``label`` (3 classes)
    or ``value`` (regression), learnable from the features."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    frame["colour"] = rng.choice(["red", "green", "blue"], rows)
    if regression:
        frame["value"] = 10 + 3 * x[:, 0] - 2 * x[:, 1] + 0.1 * rng.normal(size=rows)
    else:
        frame["label"] = np.where(x[:, 0] > 0.5, "high", np.where(x[:, 0] < -0.5, "low", "mid"))
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    return path


def write_images(
    folder: Path, classes: int = 2, per_class: int = 12, size: int = 12, *, mode: str = "L", seed: int = 0
) -> Path:
    """A class-per-folder tree of PNGs: class ``k`` has a bright square in quadrant ``k``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    half = size // 2
    for k in range(classes):
        (folder / f"class{k}").mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 60, (size, size)).astype(np.uint8)
            top, left = (k // 2) * half, (k % 2) * half
            pixels[top : top + half, left : left + half] += 150
            image = Image.fromarray(pixels, "L").convert(mode)
            image.save(folder / f"class{k}" / f"{i:03d}.png")
    return folder


def write_study(folder: Path, task: Any, **changes: Any) -> Path:
    """A tiny MLP study file on ``task`` in ``folder`` (``changes`` replace top-level keys)."""
    data = {
        "name": "mine",
        "seed": 0,
        "task": task,
        "backbone": {"family": "mlp", "args": {"input_features": 6, "hidden": [16, 16], "classes": 3}},
        "space": {"max_span": 2, "choices": ["off", "add"]},
        "objectives": ["accuracy:max", "macs:min"],
        "sampler": {"name": "random"},
        "training": {"epochs": 1, "batch_size": 32},
        "trials": 2,
        **changes,
    }
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    return path
