"""``shapes-seg``: synthetic images of circles and squares for semantic segmentation."""

from __future__ import annotations

import functools
import math

import numpy as np

from skipsearch.tasks._data import TaskData, check_int, check_split_sizes, make_task_data, split_fixed_test

BACKGROUND, CIRCLE, SQUARE = 0, 1, 2
MAX_SHAPES = 100
"""The most shapes one image may hold (``max_shapes``)."""
CLASSES = ("background", "circle", "square")


def shapes_seg(
    *,
    seed: int = 0,
    size: int = 32,
    train_size: int = 2000,
    val_size: int = 500,
    test_size: int = 500,
    max_shapes: int = 3,
    noise: float = 0.3,
    data_seed: int = 0,
) -> TaskData:
    """``1 x size x size`` images of 1 to ``max_shapes`` filled circles and squares on a noisy,
    shaded background; per-pixel labels background / circle / square.

    Circles and squares of one image have the same size distribution (equal areas for equal
    radius) and the same brightness distribution, so only their outline tells them apart; later
    shapes cover earlier ones. Images are standardised. The data comes from ``data_seed``; the
    test split is fixed, and ``seed`` picks the validation images among the others.
    """
    sizes = check_split_sizes(train_size, val_size, test_size)
    # Each shape slot is drawn for every image: a bound keeps the generation's time bounded.
    size, max_shapes = check_int("size", size, 16), check_int("max_shapes", max_shapes, 1, MAX_SHAPES)
    x, y = _generate(sum(sizes), size, max_shapes, float(noise), int(data_seed))
    return make_task_data("shapes-seg", "miou", len(CLASSES), *split_fixed_test(x, y, sizes, seed))


@functools.lru_cache(maxsize=2)
def _generate(count: int, size: int, max_shapes: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(count, 1, size, size)`` and masks ``(count, size, size)``, all shape slots drawn
    for all images at once (vectorised: a few thousand images take milliseconds)."""
    rng = np.random.default_rng(seed)
    grid = np.arange(size, dtype=np.float32)
    yy, xx = grid[None, :, None], grid[None, None, :]
    # Background: a random linear shading plus white noise.
    slope = rng.uniform(-1, 1, (count, 2, 1, 1)).astype(np.float32) / size
    image = slope[:, 0] * (yy - size / 2) + slope[:, 1] * (xx - size / 2)
    image = image + rng.normal(0, noise, (count, size, size)).astype(np.float32)
    mask = np.zeros((count, size, size), dtype=np.int64)
    shown = rng.integers(1, max_shapes + 1, count)
    for slot in range(max_shapes):
        radius = rng.uniform(size * 0.09, size * 0.22, count).astype(np.float32)[:, None, None]
        cy, cx = (rng.uniform(radius[:, 0, 0], size - radius[:, 0, 0]).astype(np.float32)[:, None, None] for _ in "yx")
        is_circle = (rng.random(count) < 0.5)[:, None, None]
        circle = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
        half_side = radius * math.sqrt(math.pi) / 2  # a square of the circle's area
        square = np.maximum(np.abs(yy - cy), np.abs(xx - cx)) <= half_side
        inside = np.where(is_circle, circle, square) & (slot < shown)[:, None, None]
        brightness = rng.uniform(0.6, 1.4, count).astype(np.float32)[:, None, None]
        image = np.where(inside, brightness + rng.normal(0, noise, image.shape).astype(np.float32), image)
        mask = np.where(inside, np.where(is_circle, CIRCLE, SQUARE), mask)
    image = (image - image.mean()) / image.std()
    return image[:, None].astype(np.float32), mask
