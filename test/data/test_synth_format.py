"""On-disk episode format: exact round trip, lazy dataset reading, reproducible bytes."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from damage_perception.core.camera import CameraIntrinsics
from damage_perception.data.episode import Episode, View
from damage_perception.data.synth_format import (
    DATASET_FILE,
    EPISODE_FILE,
    SynthDataset,
    depth_from_mm,
    depth_to_mm,
    read_episode,
    write_dataset_index,
    write_episode,
)

K = CameraIntrinsics(64, 48, 60.0, 61.0, 31.5, 23.5)


def make_view(rng: np.random.Generator, index: int) -> View:
    depth = (rng.integers(0, 3000, (48, 64)) * np.float32(0.001)).astype(np.float32)
    depth[0, :5] = np.nan
    pose = np.eye(4)
    pose[:3, 3] = rng.normal(size=3)
    return View(color=rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), depth_m=depth, intrinsics=K,
                stamp=0.5 * index, wrist_angle=0.3 * index, camera_from_gripper=pose,
                finger_poses=[np.eye(4), pose], item_mask=rng.random((48, 64)) < 0.3,
                damage_mask=rng.integers(0, 7, (48, 64)).astype(np.uint8))


def make_episode(seed: int = 0, views: int = 2) -> Episode:
    rng = np.random.default_rng(seed)
    return Episode(f"ep-{seed}", "SKU-1", "crush", [make_view(rng, i) for i in range(views)], 0.7,
                   {"kind": "carton", "packaging_version": 1, "item_size": [0.1, 0.2, 0.3]})


def tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_round_trip_is_exact(tmp_path):
    episode = make_episode()
    write_episode(episode, tmp_path / "ep")
    back = read_episode(tmp_path / "ep")
    assert (back.episode_id, back.sku, back.label, back.severity) == ("ep-0", "SKU-1", "crush", 0.7)
    assert back.metadata == episode.metadata
    for a, b in zip(episode.views, back.views):
        assert np.array_equal(a.color, b.color) and b.color.dtype == np.uint8
        assert b.depth_m.dtype == np.float32
        assert np.array_equal(np.nan_to_num(a.depth_m), b.depth_m)  # exact to the mm; NaN -> 0
        assert np.array_equal(depth_to_mm(a.depth_m), depth_to_mm(b.depth_m))
        assert np.array_equal(a.item_mask, b.item_mask) and b.item_mask.dtype == bool
        assert np.array_equal(a.damage_mask, b.damage_mask) and b.damage_mask.dtype == np.uint8
        assert b.intrinsics == K and (b.stamp, b.wrist_angle) == (a.stamp, a.wrist_angle)
        assert np.array_equal(a.camera_from_gripper, b.camera_from_gripper)
        assert all(np.array_equal(p, q) for p, q in zip(a.finger_poses, b.finger_poses))


def test_missing_ground_truth_round_trips_as_none(tmp_path):
    view = View(color=np.zeros((48, 64, 3), np.uint8), depth_m=np.zeros((48, 64), np.float32), intrinsics=K)
    write_episode(Episode("real", "SKU-9", "pristine", [view]), tmp_path / "ep")
    back = read_episode(tmp_path / "ep").views[0]
    assert back.item_mask is None and back.damage_mask is None and back.finger_poses is None
    assert back.camera_from_gripper is None and back.wrist_angle is None
    assert sorted(p.name for p in (tmp_path / "ep").iterdir()) == [EPISODE_FILE, "view_00_color.png",
                                                                     "view_00_depth.png"]


def test_depth_encoding_limits():
    mm = depth_to_mm(np.array([0.0, -1.0, np.nan, np.inf, 0.0004, 0.0006, 1.2345, 65.535, 70.0]))
    assert mm.tolist() == [0, 0, 0, 0, 0, 1, 1234, 65535, 0]
    # the simulator's quantisation: k * float32(0.001), so rendered depth reads back bit for bit
    assert depth_from_mm(np.array([1500], np.uint16))[0] == np.float32(1500) * np.float32(0.001)


def test_same_episode_gives_same_bytes(tmp_path):
    write_episode(make_episode(3), tmp_path / "a" / "ep")
    write_episode(make_episode(3), tmp_path / "b" / "ep")
    assert tree_hashes(tmp_path / "a") == tree_hashes(tmp_path / "b")
    assert tree_hashes(tmp_path / "a") != {}


def test_dataset_is_lazy_and_ordered(tmp_path):
    for seed in (2, 1):
        write_episode(make_episode(seed, views=1), tmp_path / f"f{seed}")
    write_dataset_index(tmp_path, ["f2", "f1"], ["crush", "crush"], [1, 1], {"name": "test"})
    info = json.loads((tmp_path / DATASET_FILE).read_text())
    assert info["counts"] == {"episodes": 2, "views": 2, "labels": {"crush": 2}}
    dataset = SynthDataset(tmp_path)
    assert len(dataset) == 2
    assert [e.episode_id for e in dataset] == ["ep-2", "ep-1"]
    assert dataset[-1].episode_id == "ep-1" and dataset.episode_info(0)["label"] == "crush"
    with pytest.raises(IndexError):
        dataset[2]
    (tmp_path / "f1" / "view_00_color.png").unlink()  # only the episode asked for is read
    assert dataset[0].episode_id == "ep-2"
    with pytest.raises(OSError):
        dataset[1]


def test_dataset_without_index_and_version_check(tmp_path):
    for seed in (5, 4):
        write_episode(make_episode(seed, views=1), tmp_path / f"f{seed}")
    assert [e.episode_id for e in SynthDataset(tmp_path)] == ["ep-4", "ep-5"]  # sorted folder names
    write_dataset_index(tmp_path, ["f4"], ["crush"], [1])
    data = json.loads((tmp_path / DATASET_FILE).read_text())
    data["format_version"] = 99
    (tmp_path / DATASET_FILE).write_text(json.dumps(data))
    with pytest.raises(ValueError, match="format version"):
        SynthDataset(tmp_path)
    with pytest.raises(FileNotFoundError):
        SynthDataset(tmp_path / "nowhere")
