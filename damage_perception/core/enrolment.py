"""Reference views of one item collected at the station, turned into a SKU gallery (no ROS here).

The node's enrolment turns the wrist through evenly spaced angles like a ``fixed`` inspection, runs each view
through the same segmentation, and hands the item's crop and points here; ``build`` makes the gallery with
the damage model exactly as ``damage-perception enrol`` does from rendered or recorded views.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from damage_perception.core.crops import crop_item
from damage_perception.core.segmentation import ItemSegment
from damage_perception.core.shape_check import thin_points


class EnrolmentError(ValueError):
    """The collected views cannot make a gallery; the message says why."""


@dataclass
class EnrolmentViews:
    """Item crops, wrist angles and gripper-frame points of the views in which the item was found."""

    colors: list[np.ndarray] = field(default_factory=list)
    masks: list[np.ndarray] = field(default_factory=list)
    depths_m: list[np.ndarray] = field(default_factory=list)
    angles: list[float] = field(default_factory=list)
    clouds: list[np.ndarray] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.angles)

    def add(self, color: np.ndarray, depth_m: np.ndarray, segment: ItemSegment, angle: float) -> None:
        """Keep one view's item crop (``depth_m`` in metres, NaN or 0 = no reading) and thinned points."""
        crop = crop_item(color, depth_m, segment.mask)
        self.colors.append(crop.color)
        self.masks.append(crop.mask)
        self.depths_m.append(crop.depth_m)
        self.angles.append(float(angle))
        self.clouds.append(thin_points(segment.points))

    def build(self, model, sku: str, requested: int, min_share: float = 0.5):
        """The SKU's gallery (``core.gallery.SkuGallery``) built by ``model`` (a ``DamageModel``); raises
        ``EnrolmentError`` when fewer than ``min_share`` of the ``requested`` views showed the item."""
        needed = max(2, math.ceil(min_share * requested))  # a gallery compares views with each other
        if len(self) < needed:
            raise EnrolmentError(f"the item was found in {len(self)} of {requested} views, at least {needed} "
                                 "are needed for a gallery")
        return model.build_gallery(sku, np.stack(self.colors), np.stack(self.masks), np.stack(self.depths_m),
                                   np.asarray(self.angles, float), self.clouds)


def enrolment_angles(num_views: int) -> list[float]:
    """``num_views`` wrist angles evenly spread over a turn (those of a ``fixed`` inspection)."""
    if num_views < 1:
        raise EnrolmentError("an enrolment needs at least one view")
    return [2.0 * math.pi * k / num_views for k in range(num_views)]
