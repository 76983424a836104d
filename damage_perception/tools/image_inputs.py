"""Plain RGB images as the damage model's crops: square, resized, the whole image taken as the item.

Shared by ``evaluate-mvtec`` and ``evaluate-images``: a photo of any size is padded to a square with the
backbone's background grey (so its aspect ratio is kept) and resized to ``size`` px; its mask covers the
image and its depth is empty (2D data: the depth cues are zero, as for a view without readings).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from damage_perception.core.crops import square_on_grey
from damage_perception.data.loaders.mvtec import IMAGE_SUFFIXES, read_color


def image_files(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` (sorted); empty when there is no such folder."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def featurize_images(model, paths: list[Path], size: int, batch: int = 16):
    """Yield (paths, ``Featurized``) per batch of images read from ``paths`` as whole-image crops."""
    for start in range(0, len(paths), batch):
        chunk = paths[start:start + batch]
        colors = np.stack([square_on_grey(read_color(p), size) for p in chunk])
        masks = np.ones(colors.shape[:3], bool)
        yield chunk, model.featurize(colors, masks, np.zeros(colors.shape[:3], np.float32))


def check_size(size: int) -> str | None:
    """Why ``size`` cannot be a crop size (None when it can)."""
    return None if size >= 32 and size % 8 == 0 else f"--size must be a multiple of 8 and >= 32, got {size}"
