"""Image folders (one sub-folder per class) and segmentation folders (``images/`` + ``masks/``),
read with Pillow into ``(N, C, H, W)`` arrays scaled to [0, 1]."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from skipsearch.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
COLORS = {"grey": "L", "gray": "L", "rgb": "RGB"}
"""``color`` option values and the Pillow mode each converts to."""


def image_files(folder: Path) -> list[Path]:
    """The PNG and JPEG files of a folder, by name (hidden files left out)."""
    return sorted(
        p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not p.name.startswith(".")
    )


def image_folder(folder: Path, size: tuple[int, int] | None, color: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, C, H, W)`` and class indices (sub-folders in name order) of a class-per-folder tree."""
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise UserError(f"{folder}: no class sub-folders (an image folder holds one sub-folder of images per class)")
    files: list[Path] = []
    labels: list[int] = []
    for index, class_dir in enumerate(classes):
        members = image_files(class_dir)
        if not members:
            raise UserError(f"{class_dir}: empty class folder (no PNG or JPEG images)")
        files += members
        labels += [index] * len(members)
    return read_images(files, size, color), np.array(labels, dtype=np.int64)


def segmentation_folder(folder: Path, size: tuple[int, int] | None, color: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, C, H, W)`` of ``folder/images`` and per-pixel class maps ``(N, H, W)`` of
    ``folder/masks`` (a mask has its image's name stem; its pixel values are the class indices)."""
    images_dir, masks_dir = folder / "images", folder / "masks"
    for part in (images_dir, masks_dir):
        if not part.is_dir():
            raise UserError(f"{part}: no such folder (a segmentation folder holds images/ and masks/)")
    files = image_files(images_dir)
    if not files:
        raise UserError(f"{images_dir}: no PNG or JPEG images")
    masks_by_stem = {p.stem: p for p in image_files(masks_dir)}
    masks = []
    for image in files:
        if image.stem not in masks_by_stem:
            raise UserError(f"{image}: no mask {masks_dir / image.stem}.png")
        masks.append(masks_by_stem[image.stem])
    x = read_images(files, size, color)
    y = read_images(masks, (x.shape[2], x.shape[3]), None, mask=True)[:, 0]
    return x, y


def read_images(
    files: list[Path], size: tuple[int, int] | None, color: str | None, *, mask: bool = False
) -> np.ndarray:
    """The images as one array: ``float32`` in [0, 1] (``int64`` pixel values for masks).

    Without ``size`` all images must have one size, and without ``color`` one mode; otherwise
    the first two that differ are named. Masks are resized with the nearest neighbour.
    """
    from PIL import Image, UnidentifiedImageError

    from skipsearch.tasks._files import check_memory

    if color is not None and color not in COLORS:
        raise UserError(f"option 'color' must be one of grey, rgb; got {color!r}")
    arrays: list[np.ndarray] = []
    first: tuple[Path, tuple[int, int], str] | None = None
    for path in files:
        try:
            with Image.open(path) as image:
                image.load()
                shape, mode = image.size, image.mode
                if first is None:
                    first = (path, shape, mode)
                    channels = {"L": 1, "RGB": 3}.get(COLORS.get(color or "", mode), 1)
                    height, width = size or (shape[1], shape[0])
                    check_memory(path, len(files) * channels * height * width * 8)
                if size is None and shape != first[1]:
                    raise UserError(
                        f"{path}: {shape[0]}x{shape[1]} pixels, but {first[0]} is {first[1][0]}x{first[1][1]}; "
                        "images of mixed sizes need the task option 'size'"
                    )
                if not mask and color is None and mode != first[2]:
                    raise UserError(
                        f"{path}: mode {mode}, but {first[0]} is {first[2]}; images of mixed modes need "
                        "the task option 'color' (grey or rgb)"
                    )
                arrays.append(_pixels(image, path, size, color, mask))
        except (UnidentifiedImageError, OSError) as exc:
            raise UserError(f"{path}: cannot read the image ({exc})") from None
    return np.stack(arrays)


def _pixels(image: Any, path: Path, size: tuple[int, int] | None, color: str | None, mask: bool) -> np.ndarray:
    from PIL import Image

    if mask:
        if image.mode not in ("L", "P", "I", "I;16"):
            raise UserError(f"{path}: a mask must be a one-channel image of class indices, got mode {image.mode}")
        if size is not None and image.size != (size[1], size[0]):
            image = image.resize((size[1], size[0]), Image.Resampling.NEAREST)
        return np.asarray(image, dtype=np.int64)[None]
    if color is not None:
        image = image.convert(COLORS[color])
    elif image.mode not in ("L", "RGB"):
        image = image.convert("RGB" if image.mode in ("RGBA", "P", "CMYK", "YCbCr") else "L")
    if size is not None and image.size != (size[1], size[0]):
        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
