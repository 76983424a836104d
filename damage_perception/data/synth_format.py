"""On-disk episode format (version 1): one folder per episode of PNG images and an ``episode.json``.

Layout (see docs/dataset_format.md)::

    ROOT/dataset.json                      format version, generator settings, counts, episode folders
    ROOT/<episode>/episode.json            ids, labels, item facts, per-view poses and intrinsics
    ROOT/<episode>/view_XX_color.png       RGB (stored as an 8-bit 3-channel PNG)
    ROOT/<episode>/view_XX_depth.png       uint16 millimetres, 0 = no reading
    ROOT/<episode>/view_XX_item_mask.png   uint8, 255 = item, 0 = not
    ROOT/<episode>/view_XX_damage_mask.png uint8 labels, index into DAMAGE_LABELS

Bytes are a function of the content only: PNGs are written by OpenCV at a fixed compression level and
JSON with sorted keys and no wall-clock time, so the same episodes give the same files.
"""
from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from damage_perception.core.camera import CameraIntrinsics
from damage_perception.core.damage_types import DAMAGE_LABELS
from damage_perception.data.episode import Episode, View

FORMAT_NAME = "damage_perception.synth"
FORMAT_VERSION = 1
DATASET_FILE = "dataset.json"
EPISODE_FILE = "episode.json"
# Fixed PNG settings (reproducible files): fast zlib run-length coding of "sub"-filtered rows is ~3x faster
# than OpenCV's default for noisy sensor images, and smaller.
PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
if hasattr(cv2, "IMWRITE_PNG_FILTER"):  # OpenCV >= 4.10
    PNG_PARAMS += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_SUB]
DEPTH_SCALE = 1000           # depth PNG units per metre (millimetres)
IMAGE_KINDS = ("color", "depth", "item_mask", "damage_mask")


# --- JSON helpers --------------------------------------------------------------------------------------
def to_jsonable(value: Any) -> Any:
    """Plain JSON types from numpy arrays/scalars, tuples and dataclasses (recursively); other objects as text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)  # enums, paths, ...: their text


def _json_text(value: Any, indent: int) -> str:
    """Indented JSON with sorted keys; lists of numbers (matrix rows, sizes) stay on one line."""
    if isinstance(value, dict) and value:
        pad = " " * (indent + 1)
        items = [f"{pad}{json.dumps(str(k))}: {_json_text(v, indent + 1)}" for k, v in sorted(value.items())]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    if isinstance(value, list) and value and not all(isinstance(v, (int, float)) or v is None for v in value):
        pad = " " * (indent + 1)
        return "[\n" + ",\n".join(pad + _json_text(v, indent + 1) for v in value) + "\n" + " " * indent + "]"
    return json.dumps(value, allow_nan=False)


def dump_json(data: dict, path: Path) -> None:
    """Write ``data`` as indented JSON with sorted keys and no NaN (reproducible bytes)."""
    path.write_text(_json_text(to_jsonable(data), 0) + "\n", encoding="utf-8")


def load_json(path: Path) -> dict:
    """Read a JSON file."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def intrinsics_to_dict(k: CameraIntrinsics) -> dict:
    """JSON form of intrinsics."""
    return {"width": k.width, "height": k.height, "fx": k.fx, "fy": k.fy, "cx": k.cx, "cy": k.cy}


def intrinsics_from_dict(d: dict) -> CameraIntrinsics:
    """Intrinsics from their JSON form."""
    return CameraIntrinsics(int(d["width"]), int(d["height"]), float(d["fx"]), float(d["fy"]),
                            float(d["cx"]), float(d["cy"]))


# --- images --------------------------------------------------------------------------------------------
def depth_to_mm(depth_m: np.ndarray) -> np.ndarray:
    """uint16 millimetres from metres; 0 for no reading (0, NaN, negative) and beyond 65.535 m."""
    mm = np.rint(np.asarray(depth_m, np.float32) * np.float32(DEPTH_SCALE))
    valid = (mm > 0) & (mm <= np.iinfo(np.uint16).max)  # False for NaN
    return np.where(valid, mm, np.float32(0)).astype(np.uint16)


def depth_from_mm(mm: np.ndarray) -> np.ndarray:
    """float32 metres from uint16 millimetres (0 stays 0)."""
    return mm.astype(np.float32) * np.float32(1.0 / DEPTH_SCALE)


def write_png(path: Path, image: np.ndarray) -> None:
    """Write a PNG at the fixed compression level; raises on failure."""
    if not cv2.imwrite(str(path), image, PNG_PARAMS):
        raise OSError(f"could not write {path}")


def read_png(path: Path) -> np.ndarray:
    """Read a PNG unchanged (bit depth and channels kept); raises when missing or unreadable."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise OSError(f"could not read {path}")
    return image


def _view_images(view: View) -> dict[str, np.ndarray | None]:
    """The arrays written for a view, in their on-disk encoding (None = not available)."""
    color = cv2.cvtColor(np.asarray(view.color, np.uint8), cv2.COLOR_RGB2BGR)
    item = None if view.item_mask is None else np.where(np.asarray(view.item_mask) > 0, 255, 0).astype(np.uint8)
    damage = None if view.damage_mask is None else np.asarray(view.damage_mask).astype(np.uint8)
    return {"color": color, "depth": depth_to_mm(view.depth_m), "item_mask": item, "damage_mask": damage}


# --- episodes ------------------------------------------------------------------------------------------
def _matrix(value: np.ndarray | None) -> list | None:
    return None if value is None else np.asarray(value, float).reshape(4, 4).tolist()


def _view_record(index: int, view: View, files: dict[str, str | None]) -> dict:
    return {
        "index": index,
        "stamp": float(view.stamp),
        "wrist_angle": None if view.wrist_angle is None else float(view.wrist_angle),
        "camera_from_gripper": _matrix(view.camera_from_gripper),
        "finger_poses": None if view.finger_poses is None else [_matrix(p) for p in view.finger_poses],
        "intrinsics": intrinsics_to_dict(view.intrinsics),
        "files": files,
    }


def write_episode(episode: Episode, folder: Path | str) -> Path:
    """Write ``episode`` into ``folder`` (created; existing files of the same names are replaced)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for index, view in enumerate(episode.views):
        files: dict[str, str | None] = {}
        for kind, image in _view_images(view).items():
            files[kind] = None if image is None else f"view_{index:02d}_{kind}.png"
            if image is not None:
                write_png(folder / files[kind], image)
        records.append(_view_record(index, view, files))
    dump_json({"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "episode_id": episode.episode_id,
               "sku": episode.sku, "label": episode.label, "severity": float(episode.severity),
               "metadata": episode.metadata, "views": records}, folder / EPISODE_FILE)
    return folder


def _check_version(data: dict, path: Path) -> None:
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(f"{path}: format version {version}, this reader knows {FORMAT_VERSION}")


def _load_view(folder: Path, record: dict) -> View:
    files = record["files"]
    image = {kind: None if files.get(kind) is None else read_png(folder / files[kind]) for kind in IMAGE_KINDS}
    return View(
        color=np.ascontiguousarray(image["color"][..., ::-1]),
        depth_m=depth_from_mm(image["depth"]),
        intrinsics=intrinsics_from_dict(record["intrinsics"]),
        stamp=float(record["stamp"]),
        wrist_angle=record["wrist_angle"],
        camera_from_gripper=None if record["camera_from_gripper"] is None else np.array(record["camera_from_gripper"]),
        finger_poses=None if record["finger_poses"] is None else [np.array(p) for p in record["finger_poses"]],
        item_mask=None if image["item_mask"] is None else image["item_mask"] > 0,
        damage_mask=image["damage_mask"],
    )


def read_episode(folder: Path | str) -> Episode:
    """Load the episode written by ``write_episode`` in ``folder`` (all views, images included)."""
    folder = Path(folder)
    data = load_json(folder / EPISODE_FILE)
    _check_version(data, folder / EPISODE_FILE)
    return Episode(episode_id=data["episode_id"], sku=data["sku"], label=data["label"],
                   views=[_load_view(folder, record) for record in data["views"]],
                   severity=float(data["severity"]), metadata=data.get("metadata", {}))


# --- dataset -------------------------------------------------------------------------------------------
def write_dataset_index(root: Path | str, folders: Sequence[str], labels: Sequence[str], views: Sequence[int],
                        generator: dict | None = None) -> Path:
    """Write ``ROOT/dataset.json`` listing episode ``folders`` (in order) with their labels and view counts."""
    root = Path(root)
    counts = {"episodes": len(folders), "views": int(sum(views)), "labels": dict(sorted(Counter(labels).items()))}
    path = root / DATASET_FILE
    dump_json({"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "generator": generator or {},
               "counts": counts, "damage_labels": list(DAMAGE_LABELS),
               "episodes": [{"folder": f, "label": lab, "views": int(n)} for f, lab, n in zip(folders, labels, views)]},
              path)
    return path


class SynthDataset:
    """Episodes of a dataset folder in this format; implements ``EpisodeDataset``.

    Lazy: only ``dataset.json`` is read up front (or, without it, the sub-folders holding an
    ``episode.json``, sorted by name); ``dataset[i]`` loads episode i's images.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        index = self.root / DATASET_FILE
        if index.is_file():
            self.info = load_json(index)
            _check_version(self.info, index)
            self.folders = [entry["folder"] for entry in self.info["episodes"]]
        elif self.root.is_dir():
            self.info = {}
            self.folders = sorted(p.name for p in self.root.iterdir() if (p / EPISODE_FILE).is_file())
        else:
            raise FileNotFoundError(f"no dataset at {self.root}")

    def __len__(self) -> int:
        return len(self.folders)

    def _folder(self, index: int) -> Path:
        if not -len(self) <= index < len(self):
            raise IndexError(f"episode {index} of {len(self)}")
        return self.root / self.folders[index]

    def __getitem__(self, index: int) -> Episode:
        return read_episode(self._folder(index))

    def __iter__(self) -> Iterator[Episode]:
        return (self[i] for i in range(len(self)))

    def episode_info(self, index: int) -> dict:
        """The ``episode.json`` of episode ``index`` (labels, poses; no images loaded)."""
        return load_json(self._folder(index) / EPISODE_FILE)
