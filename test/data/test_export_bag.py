"""export-bag: in-memory episodes -> rosbag2 (MCAP and sqlite3) -> RosbagDataset gives them back."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from damage_perception import cli
from damage_perception.core.camera import CameraIntrinsics
from damage_perception.core.gripper import GripperGeometry
from damage_perception.core.image_codec import clean_depth, depth_to_mm
from damage_perception.core.transforms import transform_from_xyz_rpy
from damage_perception.data.episode import Episode, View
from damage_perception.data.loaders import RosbagDataset
from damage_perception.tools import export_bag

H, W = 10, 14


def _view(rng: np.random.Generator, angle: float | None, k: CameraIntrinsics) -> View:
    depth = rng.uniform(0.3, 0.9, (H, W)).astype(np.float32)
    depth[0, :4] = 0.0
    return View(color=rng.integers(0, 256, (H, W, 3), dtype=np.uint8), depth_m=depth, intrinsics=k,
                wrist_angle=angle,
                camera_from_gripper=transform_from_xyz_rpy(rng.uniform(-0.1, 0.1, 3) + (0, 0, 0.5),
                                                           rng.uniform(-3, 3, 3)),
                finger_poses=list(GripperGeometry().finger_transforms(rng.uniform(0.02, 0.1))))


def make_episodes() -> list[Episode]:
    rng = np.random.default_rng(5)
    k1, k2 = CameraIntrinsics(W, H, 12.0, 12.5, 6.5, 4.5), CameraIntrinsics(W, H, 15.0, 14.0, 7.1, 5.2)
    with_masks = [_view(rng, a, k1) for a in (0.0, 1.0, -2.5)]
    for view in with_masks:
        view.item_mask = rng.random((H, W)) > 0.5
        view.damage_mask = (rng.integers(0, 7, (H, W)) * view.item_mask).astype(np.uint8)
    return [Episode("e0", "SKU-A", "pristine", with_masks),
            Episode("e1", "SKU-B", "hole", [_view(rng, None, k2) for _ in range(2)], severity=0.7,
                    metadata={"seed": np.int64(3), "kind": "carton"})]


def assert_same(read: list[Episode], written: list[Episode]) -> None:
    assert len(read) == len(written)
    for got, want in zip(read, written):
        assert (got.episode_id, got.sku, got.label, got.severity) == (want.episode_id, want.sku, want.label,
                                                                      want.severity)
        assert len(got.views) == len(want.views)
        for g, w in zip(got.views, want.views):
            np.testing.assert_array_equal(g.color, w.color)
            # the episode's 0 = no reading comes back NaN (the codec's one rule): compare in mm, 0 = no reading
            np.testing.assert_array_equal(depth_to_mm(g.depth_m), depth_to_mm(w.depth_m))
            assert g.intrinsics == w.intrinsics
            np.testing.assert_allclose(g.camera_from_gripper, w.camera_from_gripper, atol=1e-6)
            for gf, wf in zip(g.finger_poses, w.finger_poses):
                np.testing.assert_allclose(gf, wf, atol=1e-6)
            for mask in ("item_mask", "damage_mask"):
                if getattr(w, mask) is None:
                    assert getattr(g, mask) is None
                else:
                    np.testing.assert_array_equal(getattr(g, mask), getattr(w, mask))
            if w.wrist_angle is None:
                assert g.wrist_angle is None
            else:
                assert g.wrist_angle == pytest.approx(w.wrist_angle, abs=1e-6)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_round_trip(tmp_path: Path, storage: str) -> None:
    episodes = make_episodes()
    counts = export_bag.export_episodes(iter(episodes), tmp_path / "bag", storage)
    assert counts == {"episodes": 2, "views": 5}
    read = list(RosbagDataset(tmp_path / "bag"))
    assert_same(read, episodes)
    assert read[1].metadata["seed"] == 3 and read[1].metadata["kind"] == "carton"


def test_32fc1_depth(tmp_path: Path) -> None:
    episodes = make_episodes()[:1]
    export_bag.export_episodes(episodes, tmp_path / "bag", "mcap", depth_encoding="32FC1")
    (got,) = RosbagDataset(tmp_path / "bag")
    np.testing.assert_array_equal(got.views[0].depth_m, clean_depth(episodes[0].views[0].depth_m))  # 0 -> NaN


def test_bad_storage(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="storage"):
        export_bag.export_episodes([], tmp_path / "bag", "rosbag1")


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The sub-command reads a dataset folder in our format (SynthDataset) and writes the bag."""
    from damage_perception.data.synth_format import write_episode

    episodes = make_episodes()
    for episode in episodes:
        write_episode(episode, tmp_path / "ds" / episode.episode_id)
    argv = ["export-bag", str(tmp_path / "ds"), "--out", str(tmp_path / "bag"), "--storage", "sqlite3"]
    assert cli.main(argv) == 0
    assert "2 episodes, 5 views" in capsys.readouterr().out
    assert_same(list(RosbagDataset(tmp_path / "bag")), episodes)
    assert cli.main(argv) == 1  # exists
    assert cli.main(argv + ["--overwrite"]) == 0
    parser = argparse.ArgumentParser()
    export_bag.add_arguments(parser)
    assert parser.parse_args(["d", "--out", "o"]).storage == "mcap"
