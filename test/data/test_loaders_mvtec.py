"""MVTec AD / 3D-AD loaders on tiny fixtures built here in their folder layouts."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile

from damage_perception.core.camera import CameraIntrinsics, backproject
from damage_perception.core.damage_types import DAMAGE_LABELS
from damage_perception.data.loaders import MVTec3DDataset, MVTecADDataset
from damage_perception.data.loaders.mvtec import damage_type_of, estimate_intrinsics_from_xyz

H, W = 12, 16
TRUE_K = CameraIntrinsics(W, H, fx=20.0, fy=22.0, cx=7.3, cy=5.6)


def _color(seed: int, gray: bool = False) -> np.ndarray:
    image = np.random.default_rng(seed).integers(0, 256, (H, W) if gray else (H, W, 3), dtype=np.uint8)
    return image


def _mask() -> np.ndarray:
    mask = np.zeros((H, W), np.uint8)
    mask[3:6, 4:9] = 255
    return mask


@pytest.fixture
def mvtec_ad(tmp_path: Path) -> Path:
    base = tmp_path / "mvtec_ad" / "bottle"
    for folder, names in (("train/good", ["000", "001"]), ("test/good", ["000"]),
                          ("test/broken_large", ["000", "001"]), ("test/hole", ["000"])):
        (base / folder).mkdir(parents=True)
        for i, name in enumerate(names):
            cv2.imwrite(str(base / folder / f"{name}.png"), _color(i, gray=folder.endswith("hole")))
            defect = folder.split("/")[1]
            if defect != "good":
                (base / "ground_truth" / defect).mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(base / "ground_truth" / defect / f"{name}_mask.png"), _mask())
    return tmp_path / "mvtec_ad"


def _xyz(k: CameraIntrinsics, seed: int) -> np.ndarray:
    depth = np.random.default_rng(seed).uniform(0.4, 0.6, (k.height, k.width)).astype(np.float32)
    depth[0, :3] = 0.0  # invalid pixels: all three channels zero, as in MVTec 3D-AD
    xyz = np.nan_to_num(backproject(depth, k), nan=0.0).astype(np.float32)
    return xyz


@pytest.fixture
def mvtec_3d(tmp_path: Path) -> Path:
    base = tmp_path / "mvtec_3d" / "cookie"
    for split, defect, n in (("train", "good", 1), ("test", "good", 1), ("test", "crack", 2)):
        folder = base / split / defect
        for sub in ("rgb", "xyz", "gt"):
            (folder / sub).mkdir(parents=True)
        for i in range(n):
            cv2.imwrite(str(folder / "rgb" / f"{i:03d}.png"), _color(i))
            tifffile.imwrite(folder / "xyz" / f"{i:03d}.tiff", _xyz(TRUE_K, i), photometric="rgb")
            cv2.imwrite(str(folder / "gt" / f"{i:03d}.png"), _mask() if defect != "good" else _mask() * 0)
    return tmp_path / "mvtec_3d"


def test_mvtec_ad_test_split(mvtec_ad: Path) -> None:
    dataset = MVTecADDataset(mvtec_ad, "bottle", "test")
    assert len(dataset) == 4
    episodes = list(dataset)
    assert [e.label for e in episodes] == ["broken_large", "broken_large", "pristine", "hole"]
    broken, good, hole = episodes[0], episodes[2], episodes[3]
    assert broken.metadata["mvtec_defect"] == "broken_large" and broken.damaged and not good.damaged
    view = broken.views[0]
    assert view.color.shape == (H, W, 3) and view.color.dtype == np.uint8
    np.testing.assert_array_equal(view.color, cv2.imread(broken.metadata["image"])[..., ::-1])
    assert view.depth_m.shape == (H, W) and view.depth_m.dtype == np.float32 and not view.depth_m.any()
    assert (view.intrinsics.width, view.intrinsics.height) == (W, H)
    assert view.intrinsics.cx == pytest.approx((W - 1) / 2)
    expected = np.where(_mask() > 0, DAMAGE_LABELS.index("tear"), 0)
    np.testing.assert_array_equal(view.damage_mask, expected)
    assert not good.views[0].damage_mask.any()
    assert hole.views[0].color.shape == (H, W, 3)  # grayscale repeated
    assert set(np.unique(hole.views[0].damage_mask)) == {0, DAMAGE_LABELS.index("hole")}


def test_mvtec_ad_train_split(mvtec_ad: Path) -> None:
    dataset = MVTecADDataset(mvtec_ad, "bottle", "train")
    assert len(dataset) == 2 and all(e.label == "pristine" and e.sku == "bottle" for e in dataset)
    with pytest.raises(FileNotFoundError):
        MVTecADDataset(mvtec_ad, "cable", "test")


def test_damage_type_table() -> None:
    assert damage_type_of("good") == "none"
    assert damage_type_of("hole") == "hole"
    assert damage_type_of("cut_inner_insulation") == "tear"
    assert damage_type_of("missing_wire") == "missing_part"
    assert damage_type_of("squeezed_teeth") == "crush"
    assert damage_type_of("faulty_imprint") == "crush"  # default
    assert all(damage_type_of(d) in DAMAGE_LABELS for d in ("contamination", "open", "oil", "xyz"))


def test_intrinsics_recovered_from_xyz() -> None:
    k = estimate_intrinsics_from_xyz(_xyz(TRUE_K, 3))
    assert k is not None
    for name in ("fx", "fy", "cx", "cy"):
        assert getattr(k, name) == pytest.approx(getattr(TRUE_K, name), abs=1e-3)
    assert estimate_intrinsics_from_xyz(np.zeros((H, W, 3), np.float32)) is None


def test_mvtec_3d(mvtec_3d: Path) -> None:
    dataset = MVTec3DDataset(mvtec_3d, "cookie", "test")
    assert len(dataset) == 3
    crack, _, good = list(dataset)
    assert (crack.label, good.label) == ("crack", "pristine")
    view = crack.views[0]
    xyz = _xyz(TRUE_K, 0)
    np.testing.assert_array_equal(view.depth_m, xyz[..., 2])
    assert view.depth_m[0, 0] == 0.0
    for name in ("fx", "fy", "cx", "cy"):
        assert getattr(view.intrinsics, name) == pytest.approx(getattr(TRUE_K, name), abs=1e-3)
    np.testing.assert_array_equal(view.damage_mask > 0, _mask() > 0)
    assert not good.views[0].damage_mask.any()
    assert len(MVTec3DDataset(mvtec_3d, "cookie", "train")) == 1
