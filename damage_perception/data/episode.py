"""The one episode type every dataset yields: an item seen from several views, with what is known of it.

Synthetic episodes carry everything (poses, masks, labels); real captures carry what they have, and the
missing parts are None. Tools (train, evaluate, tune, replay) read episodes only through this type.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from damage_perception.core.camera import CameraIntrinsics


@dataclass
class View:
    """One RGB-D view of the held item."""

    color: np.ndarray                            # (H, W, 3) uint8 RGB
    depth_m: np.ndarray                          # (H, W) float32 metres; 0 or NaN = no reading
    intrinsics: CameraIntrinsics
    stamp: float = 0.0                           # seconds
    wrist_angle: float | None = None             # rad about the presentation frame's z
    camera_from_gripper: np.ndarray | None = None  # 4x4, camera optical <- gripper
    finger_poses: list[np.ndarray] | None = None   # gripper <- finger
    item_mask: np.ndarray | None = None          # (H, W) bool, ground truth
    damage_mask: np.ndarray | None = None        # (H, W) uint8, index into DAMAGE_LABELS


@dataclass
class Episode:
    """An item inspected from one or more views."""

    episode_id: str
    sku: str
    label: str                                   # "pristine" or a damage type of DAMAGE_LABELS
    views: list[View]
    severity: float = 0.0
    metadata: dict = field(default_factory=dict)  # free-form: item kind, seed, packaging version, source, ...

    @property
    def damaged(self) -> bool:
        """True when the item has any damage."""
        return self.label != "pristine"


class EpisodeDataset(Protocol):
    """What every dataset (ours, MVTec AD / 3D-AD, rosbag2) provides."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Episode: ...

    def __iter__(self) -> Iterator[Episode]: ...
