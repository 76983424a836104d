"""Model studies: per-SKU reference galleries and inspected items, rendered and stored as item crops.

A study is what training, calibration and evaluation of the damage models read. For each SKU it holds one
*gallery* episode (a pristine instance turned through ``gallery_views`` wrist angles: the reference views an
operator would enrol) and ``items_per_sku`` inspected items, some damaged. Each view goes through the same
segmentation as the node, and is stored as the item crop (colour, depth, mask), its ground-truth damage
labels, the item's points in the gripper frame and the model-free geometric score.

SKUs are named by split (``SKU-T0001`` for training, ``SKU-H0001`` for held-out): a held-out study never
shares a SKU or a seed with a training one. Episode i is rendered from a generator seeded (seed, i) only, so
the files do not depend on the number of workers.
"""
from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from damage_perception.core.crops import CROP_SIZE, crop_item, cut
from damage_perception.core.image_codec import clean_depth
from damage_perception.core.registered_comparison import PosedCrop, crop_camera_matrix
from damage_perception.core.shape_check import thin_points
from damage_perception.core.transforms import invert
from damage_perception.core.view_pipeline import ViewInput, ViewPipeline
from damage_perception.data.synth_format import to_jsonable
from damage_perception.data.synthesize import (
    episode_rng,
    render_episode,
    view_angles,
    worker_context,
    worker_renderer,
)
from damage_perception.sim.artwork import sku_rng
from damage_perception.sim.catalogue import (
    KIND_DAMAGES,
    KIND_PREFIX,
    sku_kind,
    sku_spec,
)

STUDY_FILE = "study.json"
SPLIT_TAGS = {"train": "T", "validation": "V", "heldout": "H", "demo": "D",
              "catalogue": "C"}   # catalogue: many SKUs, few items (product identification, tools/identify)
MIN_DAMAGE_PX = 50    # a view "shows damage" when its ground truth has this many damaged pixels


@dataclass(frozen=True)
class StudySettings:
    """What a study renders (saved in study.json)."""

    split: str = "train"
    skus_per_kind: int = 10
    items_per_sku: int = 10
    damage_rate: float = 0.3
    views: int = 6
    gallery_views: int = 8
    seed: int = 0
    kinds: tuple[str, ...] = ("carton", "book", "mailer", "bottle", "bag", "blister")
    variation: float = 1.0
    packaging_version: int = 0
    shared_station: bool = True   # a SKU's gallery and items share one station's camera and light (the
    #                               gallery is enrolled where the items are inspected); grasps still vary
    first_sku: int = 1            # SKUs are numbered from here (per kind)

    def __post_init__(self) -> None:
        if self.split not in SPLIT_TAGS:
            raise ValueError(f"split must be one of {sorted(SPLIT_TAGS)}, got {self.split!r}")


@dataclass(frozen=True)
class StudyEpisode:
    """One planned episode of a study."""

    index: int
    role: str            # "gallery" or "item"
    sku: str
    kind: str
    damage: str
    severity: float
    item_seed: int
    start_angle: float
    views: int

    @property
    def file(self) -> str:
        return f"episode_{self.index:06d}.npz"


def study_skus(settings: StudySettings) -> list[str]:
    """The study's SKUs: ``skus_per_kind`` per kind, named by split."""
    prefix = {kind: p for p, kind in KIND_PREFIX.items()}
    tag = SPLIT_TAGS[settings.split]
    numbers = range(settings.first_sku, settings.first_sku + settings.skus_per_kind)
    return [f"{prefix[kind]}-{tag}{n:04d}" for kind in settings.kinds for n in numbers]


def plan_study(settings: StudySettings) -> list[StudyEpisode]:
    """Gallery and item episodes of every SKU, drawn from ``settings.seed``."""
    rng = np.random.default_rng([settings.seed, 7])
    plan: list[StudyEpisode] = []
    for sku in study_skus(settings):
        kind = sku_kind(sku)
        plan.append(StudyEpisode(len(plan), "gallery", sku, kind, "pristine", 0.0, int(rng.integers(2**31 - 1)),
                                 0.0, settings.gallery_views))
        for _ in range(settings.items_per_sku):
            damaged = rng.random() < settings.damage_rate
            damage = str(rng.choice(KIND_DAMAGES[kind])) if damaged else "pristine"
            severity = float(rng.uniform(0.3, 1.0)) if damaged else 0.0
            plan.append(StudyEpisode(len(plan), "item", sku, kind, damage, severity, int(rng.integers(2**31 - 1)),
                                     float(rng.uniform(0, 2 * np.pi)), settings.views))
    return plan


def render_study_arrays(planned: StudyEpisode, settings: StudySettings) -> tuple[dict, dict[str, np.ndarray]]:
    """Render, segment and crop one planned episode in this process: (metadata, per-view arrays)."""
    renderer, gripper = worker_renderer()
    pipeline = ViewPipeline(gripper)
    spec = sku_spec(planned.sku, planned.damage, planned.severity, planned.item_seed,
                    f"{planned.sku}-{planned.role}-{planned.index}", packaging_version=settings.packaging_version)
    angles = view_angles(planned.views, planned.start_angle)
    start = time.perf_counter()
    station = sku_rng(planned.sku, f"station-{settings.seed}") if settings.shared_station else None
    episode = render_episode(renderer, gripper, spec, angles, episode_rng(settings.seed, planned.index),
                             variation=settings.variation, station_rng=station)
    arrays = _episode_arrays(episode, pipeline)
    meta = {**dataclasses.asdict(planned), "item_id": spec.item_id,
            "printed_damage_art": spec.printed_damage_art, "render_s": time.perf_counter() - start}
    return meta, arrays


def render_study_episode(task: tuple[StudyEpisode, StudySettings, str]) -> dict:
    """Render one planned episode, write its npz and return its index entry (the unit of work of a worker)."""
    planned, settings, out = task
    meta, arrays = render_study_arrays(planned, settings)
    np.savez_compressed(Path(out) / planned.file, meta=np.array(json.dumps(to_jsonable(meta))), **arrays)
    return {k: meta[k] for k in ("index", "role", "sku", "kind", "damage", "severity", "printed_damage_art")}


def gallery_episode(sku: str, views: int = 8, seed: int = 0, variation: float = 0.0,
                    packaging_version: int = 0) -> StudyEpisodeData:
    """A pristine instance of ``sku`` rendered at ``views`` evenly spaced wrist angles, segmented and cropped:
    the reference views an operator would enrol (default: the fixed cell, no variation)."""
    settings = StudySettings(gallery_views=views, seed=seed, variation=variation, packaging_version=packaging_version)
    planned = StudyEpisode(0, "gallery", sku, sku_kind(sku), "pristine", 0.0, seed, 0.0, views)
    meta, arrays = render_study_arrays(planned, settings)
    return episode_data(meta, arrays)


def _episode_arrays(episode: Any, pipeline: ViewPipeline) -> dict[str, np.ndarray]:
    """Per-view crops, labels, points and geometric scores of an episode, stacked."""
    size = CROP_SIZE
    count = len(episode.views)
    arrays = {"color": np.zeros((count, size, size, 3), np.uint8), "depth_mm": np.zeros((count, size, size), np.uint16),
              "mask": np.zeros((count, size, size), bool), "damage": np.zeros((count, size, size), np.uint8),
              "found": np.zeros(count, bool), "angle": np.zeros(count, np.float32),
              "damage_px": np.zeros(count, np.int32), "geometric": np.zeros(count, np.float32),
              "camera_position": np.zeros((count, 3), np.float32), "box": np.zeros((count, 4), np.int32),
              # the registered comparison (core.registered_comparison) re-projects crops between views
              "camera_from_gripper": np.zeros((count, 4, 4), np.float32),
              "intrinsics": np.zeros((count, 4), np.float32)}   # fx, fy, cx, cy of the full image
    clouds = []
    for k, view in enumerate(episode.views):
        depth = clean_depth(view.depth_m)
        result, segment = pipeline.process(ViewInput(depth, view.intrinsics, view.camera_from_gripper,
                                                     list(view.finger_poses), view.color), k, view.wrist_angle)
        arrays["angle"][k] = view.wrist_angle
        arrays["damage_px"][k] = int(np.count_nonzero(view.damage_mask))
        arrays["camera_position"][k] = invert(view.camera_from_gripper)[:3, 3]
        arrays["camera_from_gripper"][k] = view.camera_from_gripper
        arrays["intrinsics"][k] = (view.intrinsics.fx, view.intrinsics.fy, view.intrinsics.cx, view.intrinsics.cy)
        points = thin_points(segment.points) if segment.found else np.zeros((0, 3), np.float32)
        clouds.append(points)
        if not segment.found or not segment.mask.any():
            continue
        crop = crop_item(view.color, view.depth_m, segment.mask)
        arrays["found"][k] = result.found
        arrays["geometric"][k] = result.score
        arrays["color"][k], arrays["mask"][k] = crop.color, crop.mask
        arrays["depth_mm"][k] = np.clip(np.round(crop.depth_m * 1000), 0, 65535).astype(np.uint16)
        arrays["damage"][k] = cut(view.damage_mask, crop.box, size, nearest=True)
        arrays["box"][k] = crop.box
    arrays["point_offsets"] = np.cumsum([0] + [len(c) for c in clouds]).astype(np.int64)
    arrays["points"] = np.concatenate(clouds) if clouds else np.zeros((0, 3), np.float32)
    return arrays


def render_study(settings: StudySettings, out: Path | str, workers: int = 2, progress: bool = True) -> Path:
    """Render every planned episode of a study into ``out`` (npz per episode + study.json)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plan = plan_study(settings)
    done = {p.index for p in plan if (out / p.file).exists()}  # resumable: a killed run picks up where it was
    tasks = [(p, settings, str(out)) for p in plan if p.index not in done]
    entries = {}
    with tqdm(total=len(plan), initial=len(done), unit="episode", disable=not progress, dynamic_ncols=True) as bar:
        if workers <= 1:
            results = map(render_study_episode, tasks)
            for entry in results:
                entries[entry["index"]] = entry
                bar.update(1)
        else:
            with worker_context().Pool(workers) as pool:
                for entry in pool.imap_unordered(render_study_episode, tasks, chunksize=1):
                    entries[entry["index"]] = entry
                    bar.update(1)
    index = [entries.get(p.index) or _entry_of(out / p.file) for p in plan]
    (out / STUDY_FILE).write_text(json.dumps({"settings": to_jsonable(dataclasses.asdict(settings)),
                                              "episodes": index}, indent=1))
    return out


def _entry_of(path: Path) -> dict:
    meta = json.loads(str(np.load(path)["meta"]))
    return {k: meta[k] for k in ("index", "role", "sku", "kind", "damage", "severity", "printed_damage_art")}


@dataclass
class StudyEpisodeData:
    """One stored study episode, loaded."""

    meta: dict
    color: np.ndarray
    depth_m: np.ndarray
    mask: np.ndarray
    damage: np.ndarray
    found: np.ndarray
    angle: np.ndarray
    damage_px: np.ndarray
    geometric: np.ndarray
    camera_position: np.ndarray
    clouds: list[np.ndarray]
    box: np.ndarray | None = None                   # (V, 4) crop windows in the full image
    camera_from_gripper: np.ndarray | None = None   # (V, 4, 4); None in studies rendered before it was stored
    intrinsics: np.ndarray | None = None            # (V, 4) fx, fy, cx, cy

    @property
    def damaged(self) -> bool:
        return self.meta["damage"] != "pristine"

    def posed_crops(self, index: np.ndarray) -> list[PosedCrop] | None:
        """The views ``index`` as posed crops (for the registered comparison); None for studies rendered
        before the cameras were stored."""
        if self.camera_from_gripper is None or self.intrinsics is None or self.box is None:
            return None
        size = self.color.shape[1]
        return [PosedCrop(self.color[k], self.depth_m[k], self.mask[k],
                          crop_camera_matrix(*self.intrinsics[k], self.box[k], size), self.camera_from_gripper[k])
                for k in index]

    @property
    def shows_damage(self) -> np.ndarray:
        """Per view: the ground truth shows at least MIN_DAMAGE_PX damaged pixels."""
        return self.damage_px >= MIN_DAMAGE_PX


def episode_data(meta: dict, arrays) -> StudyEpisodeData:
    """A study episode from its metadata and stored arrays (npz or dict)."""
    offsets, points = arrays["point_offsets"], arrays["points"]
    return StudyEpisodeData(meta, arrays["color"], arrays["depth_mm"].astype(np.float32) / 1000, arrays["mask"],
                            arrays["damage"], arrays["found"], arrays["angle"], arrays["damage_px"],
                            arrays["geometric"], arrays["camera_position"],
                            [points[offsets[k]:offsets[k + 1]] for k in range(len(offsets) - 1)],
                            _optional(arrays, "box"), _optional(arrays, "camera_from_gripper"),
                            _optional(arrays, "intrinsics"))


def _optional(arrays, name: str) -> np.ndarray | None:
    return np.asarray(arrays[name]) if name in arrays else None


class Study:
    """A rendered study folder."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        index = json.loads((self.root / STUDY_FILE).read_text())
        self.settings = index["settings"]
        self.entries: list[dict] = index["episodes"]

    def __len__(self) -> int:
        return len(self.entries)

    def load(self, entry: dict) -> StudyEpisodeData:
        data = np.load(self.root / f"episode_{entry['index']:06d}.npz")
        return episode_data(json.loads(str(data["meta"])), data)

    def episodes(self, role: str | None = None, skus: set[str] | None = None) -> Iterator[StudyEpisodeData]:
        for entry in self.entries:
            if (role is None or entry["role"] == role) and (skus is None or entry["sku"] in skus):
                yield self.load(entry)

    def skus(self) -> list[str]:
        return sorted({e["sku"] for e in self.entries})
