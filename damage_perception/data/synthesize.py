"""Synthetic dataset generation: render catalogue items in the simulated cell and write them to disk.

Episode i of a run is rendered with a generator seeded by (seed, i) only, in whichever worker process
takes it, so the files do not depend on the number of workers. Each worker builds its own ``CellRenderer``
(processes are started with forkserver/spawn: nothing from the parent's open3d state is inherited).
"""
from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from damage_perception.core.damage_types import DAMAGE_LABELS, DAMAGE_TYPES
from damage_perception.core.gripper import GripperGeometry
from damage_perception.data.episode import Episode, View
from damage_perception.data.synth_format import (
    to_jsonable,
    write_dataset_index,
    write_episode,
)
from damage_perception.sim.catalogue import ALL_KINDS, make_catalogue
from damage_perception.sim.items import build_item
from damage_perception.sim.renderer import CellRenderer, RenderedView
from damage_perception.sim.scene import SceneConfig
from damage_perception.sim.variation import EpisodeVariation, episode_variation

GENERATOR = "damage_perception.data.synthesize"
VIEW_PERIOD = 0.5   # s between the stamps of consecutive views of an episode (a wrist turn and settle)


@dataclass(frozen=True)
class SynthSettings:
    """What a run renders; saved in dataset.json (nothing here may depend on the machine or the workers)."""

    items: int
    damage_rate: float = 0.4
    seed: int = 0
    views: int = 8
    view_period: float = VIEW_PERIOD
    kinds: tuple[str, ...] = ALL_KINDS
    variation: float = 1.0   # scale of per-episode grasp, camera, lighting variation (0 = none, no flying pixels)

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(ALL_KINDS)
        if not self.kinds or unknown:
            raise ValueError(f"unknown item kinds {sorted(unknown)}; choose from {', '.join(ALL_KINDS)}")
        if self.items < 0 or self.views < 1:
            raise ValueError(f"need items >= 0 and views >= 1, got {self.items} and {self.views}")
        if not 0.0 <= self.damage_rate <= 1.0:
            raise ValueError(f"damage rate must be in [0, 1], got {self.damage_rate}")


@dataclass(frozen=True)
class EpisodeResult:
    """What a worker reports back for one written episode."""

    index: int
    folder: str
    label: str
    views: int
    render_s: float
    write_s: float
    cpu_s: float        # CPU time of the worker process (all its threads) for render + write


@dataclass
class SynthReport:
    """Outcome of a run: per-episode results (in episode order) and the wall time."""

    results: list[EpisodeResult]
    wall_s: float
    workers: int
    out: Path = field(default_factory=Path)

    @property
    def views(self) -> int:
        return sum(r.views for r in self.results)

    @property
    def views_per_s(self) -> float:
        return self.views / self.wall_s if self.wall_s > 0 else float("nan")


# --- one episode ---------------------------------------------------------------------------------------
def view_angles(n: int, start: float = 0.0) -> list[float]:
    """``n`` wrist angles evenly spaced over a full turn, from ``start`` (rad)."""
    return [float(start + 2.0 * math.pi * k / n) for k in range(n)]


def episode_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of episode ``index`` of a run seeded ``seed`` (independent of other episodes)."""
    return np.random.default_rng([int(seed), int(index)])


def episode_folder(index: int) -> str:
    """Folder name of episode ``index``."""
    return f"episode_{index:06d}"


def damage_label_map(mask: np.ndarray, label: str) -> np.ndarray:
    """uint8 label map: a boolean mask becomes the label's DAMAGE_LABELS index; label maps pass through."""
    mask = np.asarray(mask)
    if mask.dtype == bool:
        code = DAMAGE_LABELS.index(label) if label in DAMAGE_LABELS else 1
        return mask.astype(np.uint8) * np.uint8(code)
    return mask.astype(np.uint8)


def spec_metadata(spec: Any, item: Any = None) -> dict:
    """Episode metadata of a catalogue item: every ItemSpec field, plus kind / packaging version defaults."""
    fields = to_jsonable(dataclasses.asdict(spec)) if dataclasses.is_dataclass(spec) else {}
    meta = {"source": "synth", "item": fields, "item_id": getattr(spec, "item_id", ""),
            "kind": getattr(spec, "kind", "carton"), "packaging_version": getattr(spec, "packaging_version", 0),
            "seed": getattr(spec, "seed", 0), "item_size": to_jsonable(getattr(spec, "size", None))}
    center = getattr(item, "damage_center", None)
    meta["damage_center_gripper"] = None if center is None else to_jsonable(np.asarray(center, float))
    return to_jsonable(meta)


def to_view(rendered: RenderedView, label: str, stamp: float) -> View:
    """Episode view of a rendered frame."""
    return View(color=rendered.color, depth_m=rendered.depth_m, intrinsics=rendered.intrinsics, stamp=stamp,
                wrist_angle=rendered.wrist_angle, camera_from_gripper=rendered.T_optical_gripper,
                finger_poses=[np.asarray(p) for p in rendered.finger_transforms],
                item_mask=rendered.item_mask, damage_mask=damage_label_map(rendered.damage_mask, label))


def render_episode(renderer: CellRenderer, gripper: GripperGeometry, spec: Any, angles: Sequence[float],
                   rng: np.random.Generator, view_period: float = VIEW_PERIOD, variation: float = 0.0,
                   station_rng: np.random.Generator | None = None) -> Episode:
    """Render ``spec`` held in the gripper at each wrist angle, with this episode's camera, light and grasp
    drawn from ``rng`` (``variation`` scales their ranges; 0 is the fixed cell). With ``station_rng`` the
    camera, light and colour model come from it instead (one station's, shared by the episodes rendered
    with a generator in the same state) and only the grasp from ``rng``."""
    varied = (episode_variation(rng, spec, gripper=gripper, scale=variation) if variation > 0
              else EpisodeVariation.none())
    if station_rng is not None and variation > 0:
        station = episode_variation(station_rng, spec, gripper=gripper, scale=variation)
        varied = dataclasses.replace(station, grasp=varied.grasp)
    varied.apply(renderer)  # a no-op when the scene is unchanged
    item = build_item(spec, gripper, varied.grasp)
    renderer.set_item(item)
    label = spec.damage
    views = [to_view(renderer.render(float(a), rng), label, k * view_period) for k, a in enumerate(angles)]
    metadata = {**spec_metadata(spec, item), "variation": to_jsonable(varied.to_dict())}
    return Episode(episode_id=spec.item_id, sku=spec.sku, label=label, views=views,
                   severity=float(spec.severity), metadata=metadata)


# --- workers -------------------------------------------------------------------------------------------
_WORKER: dict[str, Any] = {}


def worker_renderer() -> tuple[CellRenderer, GripperGeometry]:
    """This process's renderer (built on first use)."""
    if "renderer" not in _WORKER:
        gripper = GripperGeometry()
        _WORKER["gripper"], _WORKER["renderer"] = gripper, CellRenderer(SceneConfig(), gripper)
    return _WORKER["renderer"], _WORKER["gripper"]


def make_episode(task: tuple[int, Any, SynthSettings, str]) -> EpisodeResult:
    """Render and write episode ``index`` of a run (the unit of work of a worker)."""
    index, spec, settings, out = task
    renderer, gripper = worker_renderer()
    start, cpu = time.perf_counter(), time.process_time()
    episode = render_episode(renderer, gripper, spec, view_angles(settings.views),
                             episode_rng(settings.seed, index), settings.view_period, settings.variation)
    rendered = time.perf_counter()
    folder = episode_folder(index)
    write_episode(episode, Path(out) / folder)
    return EpisodeResult(index, folder, episode.label, len(episode.views), rendered - start,
                         time.perf_counter() - rendered, time.process_time() - cpu)


def worker_context() -> multiprocessing.context.BaseContext:
    """forkserver (workers fork from a server that has imported this module once: fast start-up, no
    inherited open3d threads), else spawn."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def _run_tasks(tasks: list, workers: int) -> Iterable[EpisodeResult]:
    """Results of ``make_episode`` over tasks, as they finish (in-process when one worker)."""
    if workers <= 1 or len(tasks) <= 1:
        yield from map(make_episode, tasks)
        return
    with worker_context().Pool(min(workers, len(tasks))) as pool:
        yield from pool.imap_unordered(make_episode, tasks, chunksize=1)


def synthesize(settings: SynthSettings, out: Path | str, workers: int | None = None,
               progress: bool = True) -> SynthReport:
    """Render ``settings.items`` catalogue episodes into ``out`` with ``workers`` processes (default: CPUs)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    workers = max(1, workers or os.cpu_count() or 1)
    catalogue = make_catalogue(settings.items, settings.damage_rate, settings.seed, kinds=settings.kinds)
    tasks = [(i, spec, settings, str(out)) for i, spec in enumerate(catalogue)]
    results: list[EpisodeResult] = []
    start = time.perf_counter()
    with tqdm(total=len(tasks), unit="episode", disable=not progress, dynamic_ncols=True) as bar:
        for result in _run_tasks(tasks, workers):
            results.append(result)
            bar.update(1)
            bar.set_postfix(views_per_s=f"{sum(r.views for r in results) / (time.perf_counter() - start):.1f}")
    results.sort(key=lambda r: r.index)
    write_dataset_index(out, [r.folder for r in results], [r.label for r in results], [r.views for r in results],
                        generator={"name": GENERATOR, "settings": dataclasses.asdict(settings)})
    return SynthReport(results, time.perf_counter() - start, workers, out)


# --- contact sheet -------------------------------------------------------------------------------------
SHEET_TILE = 200        # px, square tiles of the contact sheet
SHEET_CAPTION = 190     # px, width of the caption column
SHEET_BITS = 5          # bits per colour channel kept (sensor noise compresses badly otherwise)


def damage_types() -> tuple[str, ...]:
    """"pristine" and every damage type."""
    return ("pristine", *DAMAGE_TYPES)


def pick_examples(types: Sequence[str], seed: int, pool: int = 600, per_type: int = 3) -> list[list[Any]]:
    """Up to ``per_type`` catalogue specs per type (severity >= 0.6 and no printed damage-like artwork
    preferred, one per item kind first); types the catalogue never draws are left out."""
    catalogue = make_catalogue(pool, 0.95, seed)
    picks = []
    for kind in types:
        candidates = [s for s in catalogue if s.damage == kind]
        clear = [s for s in candidates if not getattr(s, "printed_damage_art", False)] or candidates
        strong = [s for s in clear if kind == "pristine" or s.severity >= 0.6] or clear
        first_of_kind = {getattr(s, "kind", ""): s for s in reversed(strong)}
        ordered = sorted(first_of_kind.values(), key=strong.index) + strong
        chosen = list(dict.fromkeys(ordered))[:per_type]  # unique, in order
        if chosen:
            picks.append(chosen)
    return picks


def _facing_angle(renderer: CellRenderer, scene: SceneConfig, item: Any) -> tuple[float, int]:
    """Wrist angle that turns the damage to the camera and how many damaged pixels it shows there."""
    if item.damage_center is None:
        return 0.6, 0
    angle = scene.wrist_angle_facing(item.damage_center - item.center)
    view = renderer.render(angle, np.random.default_rng(0))
    return angle, int(np.count_nonzero(np.asarray(view.damage_mask) > 0))


def _depth_rgb(depth_m: np.ndarray, item_mask: np.ndarray) -> np.ndarray:
    """Turbo colour map stretched over the item's depth range; farther surfaces grey, no reading black."""
    item = depth_m[(item_mask > 0) & (depth_m > 0)]
    near, far = (np.percentile(item, [1, 99]) + [-0.02, 0.03]) if item.size else (0.3, 1.5)
    scaled = np.clip((depth_m - near) / (far - near), 0, 1)
    rgb = cv2.applyColorMap((scaled * 255).astype(np.uint8), cv2.COLORMAP_TURBO)[..., ::-1]
    rgb[depth_m > far] = 70
    rgb[depth_m <= 0] = 0
    return rgb


def _truth_rgb(view: View) -> np.ndarray:
    """Colour dimmed outside the item, item tinted green, damage red."""
    out = view.color.astype(np.float32) * 0.45
    item = view.item_mask > 0
    out[item] = 0.5 * view.color[item] + 0.5 * np.array((40, 200, 60), np.float32)
    damaged = view.damage_mask > 0
    out[damaged] = 0.4 * view.color[damaged] + 0.6 * np.array((255, 30, 30), np.float32)
    return out.astype(np.uint8)


def _crop_box(views: Sequence[View], margin: float = 0.12) -> tuple[int, int, int, int]:
    """Square (row0, row1, col0, col1) around the item in all views, with a margin."""
    height, width = views[0].color.shape[:2]
    mask = np.any([v.item_mask for v in views], axis=0)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if len(rows) == 0:
        return 0, height, 0, width
    side = int(max(rows[-1] - rows[0], cols[-1] - cols[0]) * (1 + 2 * margin)) + 1
    side = min(side, height, width)
    r0 = int(np.clip((rows[0] + rows[-1] - side) // 2, 0, height - side))
    c0 = int(np.clip((cols[0] + cols[-1] - side) // 2, 0, width - side))
    return r0, r0 + side, c0, c0 + side


def _tile(image: np.ndarray, box: tuple[int, int, int, int], caption: str) -> np.ndarray:
    r0, r1, c0, c1 = box
    tile = cv2.resize(np.ascontiguousarray(image[r0:r1, c0:c1]), (SHEET_TILE, SHEET_TILE),
                      interpolation=cv2.INTER_AREA)
    cv2.putText(tile, caption, (6, SHEET_TILE - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(tile, caption, (6, SHEET_TILE - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1,
                cv2.LINE_AA)
    return tile


def _caption_cell(lines: Sequence[str]) -> np.ndarray:
    cell = np.full((SHEET_TILE, SHEET_CAPTION, 3), 32, np.uint8)
    for k, text in enumerate(lines):
        scale, thick = (0.8, 2) if k == 0 else (0.5, 1)
        width = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)[0][0]
        scale *= min(1.0, (SHEET_CAPTION - 16) / width)
        cv2.putText(cell, text, (10, 34 + 28 * k + (6 if k else 0)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (255, 255, 255), thick, cv2.LINE_AA)
    return cell


def contact_sheet_row(episode: Episode) -> np.ndarray:
    """Caption | colour of each view | depth and ground truth of the first view (faces the damage)."""
    views = episode.views
    box = _crop_box(views)
    meta = episode.metadata
    caption = [episode.label, episode.sku, f"kind {meta.get('kind', '?')}",
               f"severity {episode.severity:.2f}", f"packaging v{meta.get('packaging_version', 0)}"]
    if meta.get("item", {}).get("printed_damage_art"):
        caption.append("printed damage art")
    tiles = [_caption_cell(caption)]
    tiles += [_tile(v.color, box, f"{math.degrees(v.wrist_angle or 0.0) % 360:.0f} deg") for v in views]
    tiles += [_tile(_depth_rgb(views[0].depth_m, views[0].item_mask), box, "depth"),
              _tile(_truth_rgb(views[0]), box, "truth")]
    return np.hstack(tiles)


def contact_sheet(seed: int = 3, views: int = 5, types: Sequence[str] | None = None) -> np.ndarray:
    """RGB image, one row per damage type: ``views`` wrist angles (the first facing the damage), depth and
    ground truth of the first view."""
    gripper = GripperGeometry()
    scene = SceneConfig()
    renderer = CellRenderer(scene, gripper)
    rows = []
    for index, candidates in enumerate(pick_examples(types or damage_types(), seed)):
        best = (-1, None, 0.0)
        for spec in candidates:  # the one showing the most damage when turned towards the camera
            renderer.set_item(build_item(spec, gripper))
            angle, pixels = _facing_angle(renderer, scene, renderer.item)
            best = max(best, (pixels, spec, angle), key=lambda b: b[0])
        _, spec, start = best
        episode = render_episode(renderer, gripper, spec, view_angles(views, start), episode_rng(seed, index))
        rows.append(contact_sheet_row(episode))
    sheet = np.vstack(rows)
    return sheet & np.uint8((0xFF << (8 - SHEET_BITS)) & 0xFF)


def write_contact_sheet(path: Path | str, seed: int = 3, views: int = 5) -> Path:
    """Render the contact sheet and save it as a PNG (maximum compression: it is committed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(contact_sheet(seed, views)[..., ::-1]),
                       [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise OSError(f"could not write {path}")
    return path
