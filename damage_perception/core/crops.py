"""The item crop every learned model sees: a square window around the segmented item, resized.

The crop is what the supervised classifier and the gallery anomaly detector take in a view, so it is made
the same way live (from the node's segmentation) and offline (training and evaluation studies).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from damage_perception.core.image_codec import clean_depth

CROP_SIZE = 160       # px; the backbone's stride-8 grid is then 20 x 20 cells
CROP_MARGIN = 0.12    # of the item's larger side, on each side
PAD_GREY = 128        # padding of a non-square image (the backbone's background grey)


def square_on_grey(color: np.ndarray, size: int, enlarge: int = cv2.INTER_AREA) -> np.ndarray:
    """(size, size, 3) uint8: an RGB image of any size centred on a grey square of its larger side, resized
    (area averaging when it shrinks, ``enlarge`` when it grows): a whole photo as a crop."""
    height, width = color.shape[:2]
    side = max(height, width)
    square = np.full((side, side, 3), PAD_GREY, np.uint8)
    row, col = (side - height) // 2, (side - width) // 2
    square[row:row + height, col:col + width] = color
    return cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA if side >= size else enlarge)


@dataclass
class ItemCrop:
    """One view's item window (S x S)."""

    color: np.ndarray        # uint8 RGB
    depth_m: np.ndarray      # float32 metres, 0 = no reading
    mask: np.ndarray         # bool, the segmented item
    box: tuple[int, int, int, int]  # (row0, row1, col0, col1) of the window in the full image

    @property
    def size(self) -> int:
        return int(self.mask.shape[0])


def crop_box(mask: np.ndarray, margin: float = CROP_MARGIN) -> tuple[int, int, int, int]:
    """Square window around a mask's bounding box grown by ``margin``; may reach past the image edge
    (the part outside is padded)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise ValueError("empty mask: no item to crop")
    side = int(round(max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) * (1 + 2 * margin)))
    side = max(side, 8)
    row0 = (rows[0] + rows[-1] + 1 - side) // 2
    col0 = (cols[0] + cols[-1] + 1 - side) // 2
    return int(row0), int(row0 + side), int(col0), int(col0 + side)


def cut(image: np.ndarray, box: tuple[int, int, int, int], size: int, nearest: bool) -> np.ndarray:
    """``image`` inside ``box`` (zero-padded where the box leaves the image), resized to size x size."""
    row0, row1, col0, col1 = box
    height, width = image.shape[:2]
    window = np.zeros((row1 - row0, col1 - col0) + image.shape[2:], image.dtype)
    r0, r1, c0, c1 = max(row0, 0), min(row1, height), max(col0, 0), min(col1, width)
    if r1 > r0 and c1 > c0:
        window[r0 - row0:r1 - row0, c0 - col0:c1 - col0] = image[r0:r1, c0:c1]
    interpolation = cv2.INTER_NEAREST if nearest else cv2.INTER_AREA
    source = window.astype(np.uint8) if window.dtype == bool else window
    resized = cv2.resize(source, (size, size), interpolation=interpolation)
    return resized.astype(bool) if image.dtype == bool else resized


def crop_item(color: np.ndarray, depth_m: np.ndarray, mask: np.ndarray, size: int = CROP_SIZE,
              margin: float = CROP_MARGIN) -> ItemCrop:
    """The item window of one view; every ``depth_m`` pixel that is not a reading
    (``core.image_codec.valid_depth``) is stored as 0."""
    box = crop_box(mask, margin)
    depth = clean_depth(depth_m, fill=0.0)  # negative and +-inf too: the codec's one rule
    return ItemCrop(cut(np.asarray(color, np.uint8), box, size, nearest=False),
                    cut(depth, box, size, nearest=True), cut(np.asarray(mask, bool), box, size, nearest=True), box)
