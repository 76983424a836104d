"""Tiny generated photo folders for the image tools' tests (`DIR/damaged`, `DIR/intact`)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write_photos(folder: Path, count: int, damaged: bool, rng: np.random.Generator, largest: int = 200,
                 prefix: str = "") -> None:
    """``count`` JPEG photos of random size (90 to ``largest`` px a side) of a brown box face, a dark crack
    across the damaged ones; named ``{prefix}{k}.jpg``."""
    folder.mkdir(parents=True)
    for k in range(count):
        size = (int(rng.integers(90, largest)), int(rng.integers(90, largest)))  # photos of any size
        image = np.full(size + (3,), (150, 110, 70), np.uint8) + rng.integers(0, 20, size + (3,), dtype=np.uint8)
        if damaged:
            cv2.line(image, (5, 5), (size[1] - 5, size[0] - 5), (20, 20, 20), 9)
        cv2.imwrite(str(folder / f"{prefix}{k}.jpg"), image)
