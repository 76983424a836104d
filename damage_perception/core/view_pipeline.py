"""One view in, one ViewResult out: back-projection, item segmentation and damage scoring."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from damage_perception.core.camera import CameraIntrinsics, backproject
from damage_perception.core.crops import crop_item
from damage_perception.core.gallery import CORESET_RATIO
from damage_perception.core.geometric_score import GeometricScoreConfig, score_geometry
from damage_perception.core.gripper import GripperGeometry
from damage_perception.core.identification import view_embedding
from damage_perception.core.image_codec import valid_depth
from damage_perception.core.registered_comparison import posed_crop
from damage_perception.core.segmentation import ItemSegment, SegmentationConfig, segment_item
from damage_perception.core.shape_check import thin_points
from damage_perception.core.transforms import invert
from damage_perception.core.verdict import ViewResult

REG_COMPUTED = "reg_computed"   # view signal: 1 when the registered comparison ran, 0 when reg_* are defaults


@dataclass(frozen=True)
class ViewPipelineConfig:
    """Parameters of every stage of the per-view pipeline."""

    segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)
    scoring: GeometricScoreConfig = field(default_factory=GeometricScoreConfig)
    max_outline_on_edge: float = 0.1   # more of the item's outline on the image edge: cut off, view unusable
    edge_jump: float = 0.008           # m; a neighbour this much (+ edge_jump_per_m * z) nearer or farther is a
    edge_jump_per_m: float = 0.01      # depth jump: points there are left out of the damage score
    min_reliable_depth: float = 0.5    # fewer of the item's points with a reliable reading: invalid depth, view
    #                                    unusable (clean renders >= 0.72, the real D4xx frames 0.93; 2 % of
    #                                    scattered no-reading pixels bring it to ~0.59, 5 % to ~0.31)


@dataclass
class ViewInput:
    """Everything one view needs, already converted from messages."""

    depth_m: np.ndarray                # (H, W) metres, NaN or 0 = no reading
    intrinsics: CameraIntrinsics
    camera_from_gripper: np.ndarray    # 4x4, camera optical <- gripper at the frame's stamp
    finger_poses: list[np.ndarray]     # gripper <- finger, one per finger
    color: np.ndarray | None = None    # (H, W, 3) RGB; needed by the learned models


class ViewPipeline:
    """Per-view processing; safe to call from a worker thread. With a ``DamageModel`` (whose fusion is
    fitted) a view's score is the fused probability that it shows damage; without, the geometric score.
    With ``keep_gallery_data`` a view scored against a gallery keeps its item-cell patches and thinned cloud
    (``ViewResult.patches``, ``.cloud``, ``.posed``) for auto-enrolment; off, they are not kept. Each view's
    crop goes with its camera (``core.registered_comparison.PosedCrop``) into the registered comparison,
    which runs when the gallery's reference views have theirs too (``ViewResult.signals["reg_computed"]``)."""

    def __init__(self, gripper: GripperGeometry, config: ViewPipelineConfig = ViewPipelineConfig(),
                 model=None, keep_gallery_data: bool = False):
        self.gripper = gripper
        self.config = config
        self.model = model   # damage_perception.core.damage_model.DamageModel | None
        self.keep_gallery_data = keep_gallery_data

    def process(self, view: ViewInput, index: int = 0, wrist_angle: float = 0.0,
                gallery=None) -> tuple[ViewResult, ItemSegment]:
        """Segment the item and score its damage (against the SKU's ``gallery`` when the model has one);
        never raises on an empty or odd view."""
        timings: dict[str, float] = {}
        start = time.perf_counter()
        points = backproject(view.depth_m, view.intrinsics)
        gripper_from_camera = invert(view.camera_from_gripper)
        timings["backproject"] = time.perf_counter() - start

        start = time.perf_counter()
        segment = segment_item(points, gripper_from_camera, view.finger_poses, self.gripper,
                               self.config.segmentation)
        timings["segment"] = time.perf_counter() - start
        if not segment.found:
            return ViewResult(index, wrist_angle, False, reason=segment.reason, timings=timings), segment

        cut_off = outline_on_edge(segment.mask)
        if cut_off > self.config.max_outline_on_edge:
            reason = (f"item cut off by the image edge ({100 * cut_off:.0f} % of its outline on the edge, "
                      f"allowed {100 * self.config.max_outline_on_edge:.0f} %): is it outside the camera's view?")
            return ViewResult(index, wrist_angle, False, reason=reason, timings=timings), segment

        start = time.perf_counter()
        camera_position = gripper_from_camera[:3, 3]
        # Points at depth jumps are unreliable (flying pixels between foreground and background): the
        # mask keeps them, the damage score does not.
        reliable = ~edges_at(view.depth_m, segment.pixels, self.config.edge_jump, self.config.edge_jump_per_m)
        reliable_fraction = float(reliable.mean())
        if reliable_fraction < self.config.min_reliable_depth:
            # Scattered no-reading pixels (NaN, inf, negative, zero) hide the surface the score looks at: judged
            # anyway, a damaged item would look intact. The view is unusable instead (and retried).
            reason = (f"invalid depth: {100 * reliable_fraction:.0f} % of the item's points have a reliable "
                      f"reading (need {100 * self.config.min_reliable_depth:.0f} %)")
            return ViewResult(index, wrist_angle, False, reason=reason, timings=timings), segment
        if self.model is None or self.model.fusion is None or self.model.fusion.reads_geometric:
            geometry = score_geometry(segment.points[reliable], camera_position,
                                      self.config.scoring)
            result = ViewResult(index, wrist_angle, True, geometry.score, geometry.type_scores,
                                geometry.damage_location, len(segment.points), timings=timings)
        else:   # the model's fusion does not read the RANSAC score: not computed (10-13 ms a view)
            result = ViewResult(index, wrist_angle, True, 0.0, {}, None, len(segment.points), timings=timings)
        timings["score"] = time.perf_counter() - start
        if self.model is not None:
            if view.color is None or view.color.shape[:2] != view.depth_m.shape:
                return ViewResult(index, wrist_angle, False, reason="no colour image of the depth's size for the "
                                  "damage model", timings=timings), segment
            self._apply_model(result, view, segment, gripper_from_camera[:3, 3], gallery)
        return result, segment

    def _apply_model(self, result: ViewResult, view: ViewInput, segment: ItemSegment, camera_position: np.ndarray,
                     gallery) -> None:
        """Run the damage model on the view's item crop and put its fused view score into ``result``."""
        crop = crop_item(view.color, view.depth_m, segment.mask)
        cloud = thin_points(segment.points)
        posed = posed_crop(crop, view.intrinsics, view.camera_from_gripper)
        signals = self.model.view_signals(crop.color[None], crop.mask[None], crop.depth_m[None], [result.wrist_angle],
                                          [cloud], [camera_position], [result.score], gallery, posed=[posed])[0]
        logit = self.model.fusion.view_logit(signals.as_dict(), has_gallery=gallery is not None)
        result.timings.update(signals.timings)
        # reg_computed 0: the reg_* signals are their pristine defaults (no gallery, or one enrolled without
        # its views' cameras: a gallery stored before they were kept; re-enrol the SKU).
        result.signals = {**signals.as_dict(), "logit": logit, REG_COMPUTED: float(signals.registered is not None)}
        result.logit = logit
        result.score = float(1.0 / (1.0 + np.exp(-logit)))
        result.type_scores = {**result.type_scores, **signals.classifier.type_probabilities}
        result.heatmap, result.crop_box = signals.damage_heatmap(), crop.box
        if signals.patches is not None and len(signals.patches):
            start = time.perf_counter()
            result.embedding = view_embedding(signals.patches, CORESET_RATIO, seed=result.index)
            result.timings["embedding"] = time.perf_counter() - start
        if self.keep_gallery_data and gallery is not None:
            result.patches, result.cloud, result.posed = signals.patches, cloud, posed
        if signals.shape is not None and signals.shape.location is not None:
            result.damage_location = signals.shape.location
        else:
            result.damage_location = heatmap_location(result.heatmap, crop.box, segment, view.depth_m.shape)


def heatmap_location(heatmap: np.ndarray, box: tuple[int, int, int, int], segment: ItemSegment,
                     image_shape: tuple[int, int]) -> np.ndarray | None:
    """The item point (gripper frame) under the heatmap's hottest cell: mean of the segment's points whose
    pixels fall in that cell's footprint of the full image; None when no point does."""
    if heatmap is None or not np.any(heatmap > 0):
        return None
    row, col = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    row0, row1, col0, col1 = box
    cell_h, cell_w = (row1 - row0) / heatmap.shape[0], (col1 - col0) / heatmap.shape[1]
    rows, cols = np.divmod(segment.pixels, image_shape[1])
    inside = ((rows >= row0 + row * cell_h) & (rows < row0 + (row + 1) * cell_h)
              & (cols >= col0 + col * cell_w) & (cols < col0 + (col + 1) * cell_w))
    return segment.points[inside].mean(axis=0) if inside.any() else None


def depth_edges(depth_m: np.ndarray, jump: float, jump_per_m: float, grow_px: int = 1) -> np.ndarray:
    """Pixels next to a depth discontinuity (a 4-neighbour differing by more than ``jump + jump_per_m * z``,
    or without a reading, or the image border), grown by ``grow_px``: where stereo and ToF cameras put
    flying pixels."""
    depth = np.where(valid_depth(depth_m), depth_m, np.inf).astype(np.float32)
    # The largest 4-neighbour difference is max(neighbour max - depth, depth - neighbour min): two cv2
    # morphology passes instead of four shifted copies (same values; a third of the time at 640x480).
    # Outside the image is no reading (inf), so the border is an edge.
    padded = cv2.copyMakeBorder(depth, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=float(np.inf))
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    with np.errstate(invalid="ignore"):
        step = np.fmax(cv2.dilate(padded, cross)[1:-1, 1:-1] - depth, depth - cv2.erode(padded, cross)[1:-1, 1:-1])
    step = np.where(np.isnan(step), np.inf, step)  # inf - inf: no reading on either side
    edges = ~(step <= jump + jump_per_m * np.where(np.isfinite(depth), depth, 0.0))
    if grow_px > 0:
        kernel = np.ones((2 * grow_px + 1, 2 * grow_px + 1), np.uint8)
        edges = cv2.dilate(edges.astype(np.uint8), kernel).astype(bool)
    return edges


def edges_at(depth_m: np.ndarray, pixels: np.ndarray, jump: float, jump_per_m: float, grow_px: int = 1) -> np.ndarray:
    """``depth_edges`` at the flat pixel indices ``pixels`` only: computed on their bounding box grown by
    ``grow_px + 2`` (the same values there; an item covers a small part of the frame)."""
    if pixels.size == 0:
        return np.zeros(0, bool)
    height, width = depth_m.shape
    rows, cols = np.divmod(pixels, width)
    margin = grow_px + 2   # a window border inside the image reads as an edge: keep it beyond the dilation
    row0, col0 = max(int(rows.min()) - margin, 0), max(int(cols.min()) - margin, 0)
    row1, col1 = min(int(rows.max()) + margin + 1, height), min(int(cols.max()) + margin + 1, width)
    window = depth_edges(depth_m[row0:row1, col0:col1], jump, jump_per_m, grow_px)
    # a window that reaches the image border has the image's own border there: the same edge as the full frame
    return window[rows - row0, cols - col0]


def outline_on_edge(mask: np.ndarray) -> float:
    """Fraction of a mask's outline (its pixels with a neighbour outside it) that lies on the image edge."""
    if not mask.any():
        return 0.0
    padded = np.pad(mask, 1)  # outside the image counts as outside the mask
    interior = (padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:])
    outline = mask & ~interior
    on_edge = outline[0].sum() + outline[-1].sum() + outline[1:-1, 0].sum() + outline[1:-1, -1].sum()
    return float(on_edge / outline.sum())
