"""MVTec AD and MVTec 3D-AD folder layouts as ``EpisodeDataset``s: one image = one single-view Episode.

Labels: ``"pristine"`` for ``good``, otherwise MVTec's defect name as it is (``"hole"``, ``"crack"``,
``"squeezed_teeth"``...); the name is also in ``metadata["mvtec_defect"]`` and our closest damage type in
``metadata["damage_type"]`` (``damage_type_of``, a keyword table; unmatched names count as ``"crush"``, a
generic surface/shape defect). ``damage_mask`` is the ground-truth mask with every defect pixel set to that
type's index in ``DAMAGE_LABELS`` (MVTec masks do not separate defect kinds); good images get all zeros.
Grayscale images are repeated to three channels.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from damage_perception.core.camera import CameraIntrinsics
from damage_perception.core.damage_types import DAMAGE_LABELS
from damage_perception.data.episode import Episode, View

GOOD = "good"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
# first keyword found in the MVTec defect name -> our damage type
DAMAGE_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("hole", "hole"), ("poke", "hole"),
    ("missing", "missing_part"), ("misplaced", "missing_part"),
    ("open", "deconstruction"),
    ("cut", "tear"), ("crack", "tear"), ("broken", "tear"), ("split", "tear"), ("tear", "tear"),
    ("contamination", "spill"), ("liquid", "spill"), ("oil", "spill"), ("glue", "spill"), ("stain", "spill"),
    ("squeeze", "crush"), ("bent", "crush"), ("fold", "crush"), ("dent", "crush"),
)
DEFAULT_DAMAGE_TYPE = "crush"


def damage_type_of(defect: str) -> str:
    """Our damage type (DAMAGE_LABELS) closest to an MVTec defect name; ``"none"`` for ``good``."""
    if defect == GOOD:
        return "none"
    name = defect.lower()
    return next((ours for keyword, ours in DAMAGE_KEYWORDS if keyword in name), DEFAULT_DAMAGE_TYPE)


def nominal_intrinsics(width: int, height: int) -> CameraIntrinsics:
    """A nominal pinhole for 2D images: f = max(W, H) px (about 53 degrees across), centred principal point."""
    focal = float(max(width, height))
    return CameraIntrinsics(width, height, focal, focal, (width - 1) / 2.0, (height - 1) / 2.0)


def estimate_intrinsics_from_xyz(xyz: np.ndarray, min_points: int = 10) -> CameraIntrinsics | None:
    """Pinhole intrinsics fitted to an organised point image (H, W, 3) in the camera frame.

    Least squares on u = fx * x/z + cx and v = fy * y/z + cy over the valid pixels (finite, z > 0);
    None when fewer than ``min_points`` are valid or the fit is degenerate.
    """
    height, width = xyz.shape[:2]
    x, y, z = (xyz[..., i].astype(np.float64) for i in range(3))
    valid = np.isfinite(x) & np.isfinite(y) & np.isfinite(z) & (z > 0)
    if valid.sum() < min_points:
        return None
    v, u = np.nonzero(valid)

    def fit(ratio: np.ndarray, pixel: np.ndarray) -> tuple[float, float]:
        a = np.stack([ratio, np.ones_like(ratio)], axis=1)
        (focal, centre), *_ = np.linalg.lstsq(a, pixel.astype(np.float64), rcond=None)
        return float(focal), float(centre)

    (fx, cx), (fy, cy) = fit(x[valid] / z[valid], u), fit(y[valid] / z[valid], v)
    if not (np.isfinite([fx, fy, cx, cy]).all() and fx > 0 and fy > 0):
        return None
    return CameraIntrinsics(width, height, fx, fy, cx, cy)


def read_color(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image file (grayscale repeated, 16-bit scaled to 8)."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise OSError(f"could not read {path}")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB))


def read_mask(path: Path | None, shape: tuple[int, int], value: int) -> np.ndarray:
    """uint8 label mask: ``value`` where the mask file is > 0; zeros when there is no file."""
    if path is None or not path.is_file():
        return np.zeros(shape, np.uint8)
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise OSError(f"could not read {path}")
    if mask.shape != shape:
        raise ValueError(f"{path}: mask is {mask.shape}, image is {shape}")
    return np.where(mask > 0, value, 0).astype(np.uint8)


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []


def _defects(split_dir: Path) -> list[str]:
    if not split_dir.is_dir():
        raise FileNotFoundError(f"no folder {split_dir}")
    return sorted(p.name for p in split_dir.iterdir() if p.is_dir())


def _episode(source: str, category: str, split: str, defect: str, stem: str, view: View, files: dict) -> Episode:
    damage = damage_type_of(defect)
    return Episode(episode_id=f"{category}/{split}/{defect}/{stem}", sku=category,
                   label="pristine" if defect == GOOD else defect, views=[view],
                   severity=0.0 if defect == GOOD else 1.0,
                   metadata={"source": source, "category": category, "split": split, "mvtec_defect": defect,
                             "damage_type": damage, **{k: str(v) for k, v in files.items()}})


class MVTecADDataset:
    """MVTec AD: ``root/<category>/{train/good, test/<defect>}/*.png`` and
    ``root/<category>/ground_truth/<defect>/<name>_mask.png``.

    Views have all-zero float32 depth (2D data), ``nominal_intrinsics`` of the image size and no poses.
    """

    def __init__(self, root: Path | str, category: str, split: str = "test") -> None:
        self.root, self.category, self.split = Path(root), category, split
        base = self.root / category
        self.items: list[tuple[str, Path, Path | None]] = []
        for defect in _defects(base / split):
            for image in _images(base / split / defect):
                mask = None if defect == GOOD else base / "ground_truth" / defect / f"{image.stem}_mask.png"
                self.items.append((defect, image, mask))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Episode:
        defect, image_path, mask_path = self.items[index]
        color = read_color(image_path)
        height, width = color.shape[:2]
        mask = read_mask(mask_path, (height, width), DAMAGE_LABELS.index(damage_type_of(defect)))
        view = View(color=color, depth_m=np.zeros((height, width), np.float32),
                    intrinsics=nominal_intrinsics(width, height), damage_mask=mask)
        return _episode("mvtec_ad", self.category, self.split, defect, image_path.stem, view,
                        {"image": image_path, "mask": mask_path or ""})

    def __iter__(self) -> Iterator[Episode]:
        return (self[i] for i in range(len(self)))


def read_xyz(path: Path) -> np.ndarray:
    """(H, W, 3) float32 points (metres in MVTec 3D-AD) of an xyz TIFF; channels x, y, z as stored."""
    import tifffile  # cv2 reverses the channels of RGB TIFFs and misreads 3-sample grayscale ones

    xyz = np.asarray(tifffile.imread(str(path)), np.float32)
    if xyz.ndim != 3 or xyz.shape[2] != 3:
        raise ValueError(f"{path}: expected an (H, W, 3) xyz image, got {xyz.shape}")
    return xyz


class MVTec3DDataset:
    """MVTec 3D-AD: ``root/<category>/<split>/<defect>/{rgb/NNN.png, xyz/NNN.tiff, gt/NNN.png}``.

    Depth is the z channel of ``xyz`` (metres; 0 where not finite or <= 0); intrinsics are fitted to the
    points (``estimate_intrinsics_from_xyz``; ``nominal_intrinsics`` when the fit fails). If the RGB image
    and xyz differ in size, depth and intrinsics are resized/scaled to the RGB image.
    """

    def __init__(self, root: Path | str, category: str, split: str = "test") -> None:
        self.root, self.category, self.split = Path(root), category, split
        self.items: list[tuple[str, Path]] = []
        for defect in _defects(self.root / category / split):
            folder = self.root / category / split / defect
            self.items += [(defect, rgb) for rgb in _images(folder / "rgb")]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Episode:
        defect, rgb_path = self.items[index]
        folder = rgb_path.parent.parent
        xyz_path, gt_path = folder / "xyz" / f"{rgb_path.stem}.tiff", folder / "gt" / f"{rgb_path.stem}.png"
        color = read_color(rgb_path)
        height, width = color.shape[:2]
        depth, intrinsics = self._depth(read_xyz(xyz_path), width, height)
        mask = read_mask(gt_path, (height, width), DAMAGE_LABELS.index(damage_type_of(defect)))
        view = View(color=color, depth_m=depth, intrinsics=intrinsics, damage_mask=mask)
        return _episode("mvtec_3d_ad", self.category, self.split, defect, rgb_path.stem, view,
                        {"image": rgb_path, "xyz": xyz_path, "mask": gt_path if gt_path.is_file() else ""})

    @staticmethod
    def _depth(xyz: np.ndarray, width: int, height: int) -> tuple[np.ndarray, CameraIntrinsics]:
        z = xyz[..., 2]
        with np.errstate(invalid="ignore"):
            depth = np.where(np.isfinite(z) & (z > 0), z, 0).astype(np.float32)
        intrinsics = estimate_intrinsics_from_xyz(xyz) or nominal_intrinsics(xyz.shape[1], xyz.shape[0])
        if depth.shape != (height, width):
            depth = cv2.resize(depth, (width, height), interpolation=cv2.INTER_NEAREST)
            sx, sy = width / intrinsics.width, height / intrinsics.height
            intrinsics = CameraIntrinsics(width, height, intrinsics.fx * sx, intrinsics.fy * sy,
                                          (intrinsics.cx + 0.5) * sx - 0.5, (intrinsics.cy + 0.5) * sy - 0.5)
        return depth, intrinsics

    def __iter__(self) -> Iterator[Episode]:
        return (self[i] for i in range(len(self)))
