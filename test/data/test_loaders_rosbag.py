"""RosbagDataset on tiny rosbag2 recordings written here with rosbags' Writer (MCAP and sqlite3)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer

from damage_perception.core.camera import CameraIntrinsics
from damage_perception.core.transforms import make_transform, rotation_about_z, transform_from_xyz_rpy
from damage_perception.data.loaders import RosbagDataset
from damage_perception.data.loaders import ros_messages as rm
from damage_perception.data.loaders.tf_buffer import TransformHistory

H, W = 6, 8
K = CameraIntrinsics(W, H, 10.0, 11.0, 3.5, 2.5)
T0 = 100 * 10**9
PERIOD = 10**8  # 0.1 s
STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
CAMERA_FROM_INSPECTION = transform_from_xyz_rpy((0.01, -0.02, 0.5), (0.3, -0.2, 0.1))
FINGER = make_transform((0.0, 0.05, 0.03))


def _color(i: int) -> np.ndarray:
    return np.random.default_rng(i).integers(0, 256, (H, W, 3), dtype=np.uint8)


def _depth(i: int) -> np.ndarray:
    depth = np.full((H, W), 0.5 + 0.01 * i, np.float32)
    depth[0, 0] = np.nan
    return depth


def _padded_bgr(image: np.ndarray, head, ts):
    """A bgr8 image with 4 bytes of row padding (step > width * 3)."""
    rows = np.zeros((H, W * 3 + 4), np.uint8)
    rows[:, :W * 3] = image[..., ::-1].reshape(H, -1)
    return ts.types[rm.IMAGE](header=head, height=H, width=W, encoding="bgr8", is_bigendian=0,
                              step=W * 3 + 4, data=rows.reshape(-1))


def write_bag(path: Path, storage: str, frames: int = 6, markers: tuple[int, ...] = (0, 3)) -> None:
    """Frames every 0.1 s: bgr8 color, 32FC1 depth 2 ms later, TF at every other frame, markers at frames."""
    ts = rm.default_typestore()
    with Writer(path, version=9, storage_plugin=STORAGES[storage]) as writer:
        conn = {t: writer.add_connection(t, m, typestore=ts) for t, m in (
            ("/camera/color/image_raw", rm.IMAGE), ("/camera/depth/image_raw", rm.IMAGE),
            ("/camera/color/camera_info", rm.CAMERA_INFO), ("/tf", rm.TF_MESSAGE), ("/tf_static", rm.TF_MESSAGE),
            ("/inspection/episode", rm.STRING))}

        def put(topic: str, ns: int, msg) -> None:
            writer.write(conn[topic], ns, ts.serialize_cdr(msg, conn[topic].msgtype))

        static = [rm.matrix_to_transform_stamped(CAMERA_FROM_INSPECTION, "camera_color_optical_frame",
                                                 "inspection_pose", T0, ts)]
        put("/tf_static", T0 - PERIOD, ts.types[rm.TF_MESSAGE](transforms=static))
        for i in range(frames):
            ns = T0 + i * PERIOD
            if i in markers:
                info = {"episode_id": f"ep{i}", "sku": "SKU-1", "label": "tear" if i else "pristine", "severity": 0.5}
                put("/inspection/episode", ns - PERIOD // 2, ts.types[rm.STRING](data=json.dumps(info)))
            head = rm.header(ns, "camera_color_optical_frame", ts)
            put("/camera/color/image_raw", ns + 1000, _padded_bgr(_color(i), head, ts))
            depth_head = rm.header(ns + 2_000_000, "camera_color_optical_frame", ts)
            put("/camera/depth/image_raw", ns + 3000, rm.array_to_image(_depth(i), "32FC1", depth_head, ts))
            put("/camera/color/camera_info", ns, rm.intrinsics_to_camera_info(K, head, ts))
            if i % 2 == 0 or i == frames - 1:  # TF at a lower rate: odd frames are interpolated
                tfs = [rm.matrix_to_transform_stamped(make_transform(rotation=rotation_about_z(0.2 * i)),
                                                      "inspection_pose", "gripper_link", ns, ts)]
                tfs += [rm.matrix_to_transform_stamped(FINGER, "gripper_link", f, ns, ts)
                        for f in ("gripper_left_finger", "gripper_right_finger")]
                put("/tf", ns, ts.types[rm.TF_MESSAGE](transforms=tfs))


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_markers_split_episodes(tmp_path: Path, storage: str) -> None:
    write_bag(tmp_path / "bag", storage)
    dataset = RosbagDataset(tmp_path / "bag")
    assert len(dataset) == 2
    first, second = dataset
    assert (first.episode_id, first.label, second.label, second.sku) == ("ep0", "pristine", "tear", "SKU-1")
    assert second.severity == 0.5 and second.metadata["source"] == "rosbag2"
    assert [len(e.views) for e in dataset] == [3, 3]
    view = second.views[1]  # frame 4
    np.testing.assert_array_equal(view.color, _color(4))
    assert np.isnan(view.depth_m[0, 0])  # no reading: the codec's one rule, as live
    np.testing.assert_allclose(view.depth_m[1:, 1:], 0.54, atol=1e-6)
    assert view.intrinsics == K
    assert view.stamp == pytest.approx((T0 + 4 * PERIOD) * 1e-9)
    assert view.wrist_angle == pytest.approx(0.8)
    expected = CAMERA_FROM_INSPECTION @ make_transform(rotation=rotation_about_z(0.8))
    np.testing.assert_allclose(view.camera_from_gripper, expected, atol=1e-9)
    np.testing.assert_allclose(view.finger_poses[0], FINGER, atol=1e-12)
    assert first.views[1].wrist_angle == pytest.approx(0.2, abs=1e-9)  # interpolated between frames 0 and 2


def test_without_markers_one_episode(tmp_path: Path) -> None:
    write_bag(tmp_path / "bag", "mcap", frames=3, markers=())
    dataset = RosbagDataset(tmp_path / "bag")
    assert len(dataset) == 1
    episode = dataset[0]
    assert episode.label == "unknown" and len(episode.views) == 3
    with pytest.raises(IndexError):
        dataset[1]


def test_depth_outside_slop_skipped(tmp_path: Path) -> None:
    write_bag(tmp_path / "bag", "mcap", frames=2, markers=())
    assert len(RosbagDataset(tmp_path / "bag", slop=0.001)) == 0  # depth is 2 ms after color


def test_missing_topic_named(tmp_path: Path) -> None:
    write_bag(tmp_path / "bag", "sqlite3", frames=1)
    with pytest.raises(ValueError, match="rgb/image_raw"):
        RosbagDataset(tmp_path / "bag", color_topic="rgb/image_raw")


def test_image_encodings() -> None:
    ts = rm.default_typestore()
    head = rm.header(0, "cam", ts)
    mm = np.array([[0, 1000], [1234, 65535]], np.uint16)
    depth = rm.depth_to_meters(rm.array_to_image(mm, "16UC1", head, ts))
    np.testing.assert_allclose(depth, np.where(mm > 0, mm * 0.001, np.nan), rtol=1e-6)  # 0 mm: no reading
    big = rm.array_to_image(mm, "16UC1", head, ts)
    big.data, big.is_bigendian = mm.astype(">u2").view(np.uint8).reshape(-1), 1
    np.testing.assert_array_equal(rm.image_to_array(big), mm)
    rgba = np.arange(2 * 2 * 4, dtype=np.uint8).reshape(2, 2, 4)
    np.testing.assert_array_equal(rm.color_to_rgb(rm.array_to_image(rgba, "rgba8", head, ts)), rgba[..., :3])
    with pytest.raises(ValueError, match="encoding"):
        rm.color_to_rgb(rm.array_to_image(mm, "16UC1", head, ts))


def test_transform_history_chain_and_tolerance() -> None:
    tf = TransformHistory(tolerance_ns=10)
    tf.add("a", "b", 0, make_transform((1, 0, 0)), static=True)
    tf.add("b", "c", 100, make_transform((0, 1, 0)))
    tf.add("b", "c", 200, make_transform((0, 3, 0)))
    np.testing.assert_allclose(tf.lookup("a", "c", 150)[:3, 3], (1, 2, 0))
    np.testing.assert_allclose(tf.lookup("c", "a", 150)[:3, 3], (-1, -2, 0))
    assert tf.lookup("a", "c", 205) is not None and tf.lookup("a", "c", 300) is None
    assert tf.lookup("a", "zzz", 150) is None
    assert math.isclose(tf.lookup("a", "a", 0)[0, 0], 1.0)
