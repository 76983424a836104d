"""Pose-matched, registered comparison of a view with its SKU's reference views.

The plain gallery score compares a view's patches with every reference patch at once: a missing blister
cavity finds its twin elsewhere, and the same wrist angle is not the same face when grasps differ. Here
the view's item cloud is registered to the SKU's reference shape (ICP, ``core.shape_check``), which says
where the view's camera sits in the reference's frame; the reference views seen from nearest that camera
are chosen, and each pixel of the view's crop is carried into them (its 3D point, through the
registration, projected into the reference's crop). Per pixel that gives:

- a **depth residual**: the reference sees the surface at the depth the view's point predicts (matched),
  in front of it (reference material the view lacks: a missing part, a hole, a dent) or behind it (material
  the reference lacks: a spill, contents breaking out, a torn flap);
- the reference's **colour** at the same surface point, so the view can be compared with an *aligned*
  reference image: per-pixel colour residual, and backbone features of the aligned image against the
  view's own, cell by cell within a small neighbourhood (``feature_residual``). Printed artwork the
  reference also shows cancels out; a change of the item does not.

Everything is per cell of the backbone's grid (8 px of the crop) and summarised per *region* (3 x 3 cells),
so a missing part is scored where it is, not as one share of the whole item. Plain numpy; no ROS.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import open3d as o3d
from scipy.spatial import cKDTree

from damage_perception.core.camera import CameraIntrinsics
from damage_perception.core.crops import ItemCrop
from damage_perception.core.shape_check import ReferenceShape, Registration, register
from damage_perception.core.transforms import invert, rotation_about_axis

DEPTH_TOLERANCE_M = 0.008    # a surface within this of the predicted depth is the same surface
DEPTH_TOLERANCE_PER_M = 0.01  # ... plus this much per metre of range (stereo/ToF noise grows with range)
REFERENCES_PER_VIEW = 2      # reference views each pixel is carried into (the nearest cameras)
REGION_CELLS = 3             # a region is REGION_CELLS x REGION_CELLS cells
TOP_CELLS = 5                # residual summaries average this many worst cells
BESIDE_MARGIN_M = 0.02       # "beside" needs the view's point this much nearer than the references' surface
SILHOUETTE_PX = 3            # item pixels this near the outline are not judged "extra"
COLOUR_VOXEL_M = 0.004       # coloured ICP runs on clouds thinned to this voxel
# (correspondence distance m, iterations) of coloured ICP. One stage on 4 mm voxels costs less than half
# of two (1 cm, then 5 mm, 20 iterations each) on 3 mm, for the same missing-part signal (reg_missing
# AUROC 0.755 vs 0.765 on bench_missing_parts.py's 64-item study, one-off measurement; 5 mm voxels: 0.687).
COLOUR_STAGES = ((0.01, 15),)
COLOUR_MAX_SHIFT_M = 0.02     # a coloured refinement moving the item more than this from ICP's is refused
COLOUR_FITNESS_SLACK = 0.02   # ... and one whose geometric fit (share of points within 1 cm) drops by more
COLOUR_GAIN = 0.8             # ... or whose colour difference does not fall below this share of ICP's
HIDDEN_CELL_SHARE = 0.25     # a cell with this share of its compared pixels hidden in the references is not judged
MIN_OVERLAP = 0.3            # below this share of matched pixels the comparison says little (grazing view)


@dataclass
class PosedCrop:
    """One view's item crop with what it takes to re-project it: the crop's camera matrix and the camera's
    pose relative to the gripper."""

    color: np.ndarray                 # (S, S, 3) uint8 RGB
    depth_m: np.ndarray               # (S, S) float32 metres, 0 = no reading (background included)
    mask: np.ndarray                  # (S, S) bool, the segmented item
    camera_matrix: np.ndarray         # 3x3 K of the crop's pixels
    camera_from_gripper: np.ndarray   # 4x4
    cache: dict = field(default_factory=dict, repr=False, compare=False)  # derived: coloured cloud, its tree

    @property
    def camera_position(self) -> np.ndarray:
        """The camera's position in the gripper frame."""
        return invert(self.camera_from_gripper)[:3, 3]


def crop_camera_matrix(fx: float, fy: float, cx: float, cy: float, box: tuple[int, int, int, int],
                       size: int) -> np.ndarray:
    """K of a crop: the full image's intrinsics shifted to the crop ``box`` (row0, row1, col0, col1) and
    scaled to ``size`` pixels (pixel centres as OpenCV's resize maps them)."""
    row0, row1, col0, col1 = (int(v) for v in box)
    scale_x, scale_y = size / (col1 - col0), size / (row1 - row0)
    return np.array([[fx * scale_x, 0.0, (cx - col0 + 0.5) * scale_x - 0.5],
                     [0.0, fy * scale_y, (cy - row0 + 0.5) * scale_y - 0.5],
                     [0.0, 0.0, 1.0]])


def posed_crop(crop: ItemCrop, intrinsics: CameraIntrinsics, camera_from_gripper: np.ndarray) -> PosedCrop:
    """A view's item ``crop`` (``core.crops.crop_item``) as a posed crop: its camera matrix from the full
    image's ``intrinsics`` and the crop's box, and the camera's pose at the frame (4x4, camera <- gripper)."""
    k = crop_camera_matrix(intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy, crop.box, crop.size)
    return PosedCrop(crop.color, crop.depth_m, crop.mask, k, np.asarray(camera_from_gripper, float).copy())


def crop_points(crop: PosedCrop, pixels: np.ndarray | None = None) -> np.ndarray:
    """Gripper-frame points of the crop's ``pixels`` (an (S, S) bool selection, default all): (n, 3), NaN
    where there is no reading."""
    pixels = np.ones(crop.depth_m.shape, bool) if pixels is None else pixels
    rows, cols = np.nonzero(pixels)
    k = crop.camera_matrix
    z = crop.depth_m[rows, cols].astype(np.float32)
    z = np.where(z > 0, z, np.nan)
    camera = np.stack([(cols - k[0, 2]) / k[0, 0] * z, (rows - k[1, 2]) / k[1, 1] * z, z], axis=-1)
    gripper_from_camera = invert(crop.camera_from_gripper).astype(np.float32)
    return camera @ gripper_from_camera[:3, :3].T + gripper_from_camera[:3, 3]


@dataclass
class Correspondence:
    """A view's pixels carried into its reference views (per crop pixel)."""

    matched: np.ndarray        # (S, S) bool, the same surface seen by a reference
    missing: np.ndarray        # (S, S) bool, item pixel; a reference sees item surface in front of its point
    extra: np.ndarray          # (S, S) bool, item pixel whose reference ray sees nothing this near
    aligned_color: np.ndarray  # (S, S, 3) uint8, the reference's colour along each compared pixel's ray
    colour_residual: np.ndarray  # (S, S) float32, |view - gain-matched reference| / 255 where matched, else 0
    region: np.ndarray         # (S, S) bool, pixels that were compared
    beside: np.ndarray         # (S, S) bool, off-item pixel clearly nearer than the references' surface
    # (S, S) bool, item pixel whose surface the references do not see: along its ray the best-agreeing
    # reference sees something nearer that is not the item (its gripper's finger, grasped elsewhere)
    hidden: np.ndarray


def nearest_references(camera_in_reference: np.ndarray, center: np.ndarray, references: list[PosedCrop],
                       count: int = REFERENCES_PER_VIEW) -> list[int]:
    """Indices of the ``count`` reference views whose cameras look at ``center`` from the directions nearest
    the view's camera (all in the reference frame)."""
    direction = camera_in_reference - center
    direction /= max(np.linalg.norm(direction), 1e-9)
    cosines = []
    for reference in references:
        other = reference.camera_position - center
        cosines.append(float(other @ direction / max(np.linalg.norm(other), 1e-9)))
    return [int(k) for k in np.argsort(cosines)[::-1][:count]]


def correspond(view: PosedCrop, reference_from_view: np.ndarray, references: list[PosedCrop],
               region: np.ndarray, coherent_colour: bool = True) -> Correspondence:
    """Carry the view's ``region`` pixels into each of ``references`` through ``reference_from_view`` (the
    registration, gripper frame of the view -> of the references) and keep, per pixel, the reference whose
    depth agrees best. With ``coherent_colour`` (the ``coloured`` alignment) a pixel's aligned colour comes
    from the nearest reference that sees its surface and only the references' item is pasted; without it
    (``shape``, the v2 models) from the best-agreeing reference, whatever it shows."""
    size = view.depth_m.shape[0]
    has_point = region & (view.depth_m > 0)
    transform = reference_from_view.astype(np.float32)
    points_ref = crop_points(view, has_point) @ transform[:3, :3].T + transform[:3, 3]
    best_error = np.full(len(points_ref), np.inf)
    best_signed = np.zeros(len(points_ref))
    best_on_item = np.zeros(len(points_ref), bool)
    best_color = np.zeros((len(points_ref), 3), np.float32)
    best_z = np.ones(len(points_ref))
    # The aligned colour of a pixel comes from the first reference (nearest camera first) that sees the same
    # surface: taking each pixel from whichever reference's depth happens to agree best mixes views lit and
    # shaded differently into a speckle whose features differ from the view everywhere.
    coherent_color = np.zeros((len(points_ref), 3), np.float32)
    coherent = np.zeros(len(points_ref), bool)
    for reference in references:
        pose = reference.camera_from_gripper.astype(np.float32)
        camera = points_ref @ pose[:3, :3].T + pose[:3, 3]
        z = camera[:, 2]
        k = reference.camera_matrix
        with np.errstate(divide="ignore", invalid="ignore"):
            col = np.round(k[0, 0] * camera[:, 0] / z + k[0, 2])
            row = np.round(k[1, 1] * camera[:, 1] / z + k[1, 2])
        inside = (z > 0) & (col >= 0) & (col < size) & (row >= 0) & (row < size)
        col_i, row_i = np.where(inside, col, 0).astype(int), np.where(inside, row, 0).astype(int)
        seen = reference.depth_m[row_i, col_i]
        inside &= seen > 0
        signed = np.where(inside, z - seen, np.inf)   # > 0: the reference sees something in front of the point
        better = np.abs(signed) < best_error
        best_error = np.where(better, np.abs(signed), best_error)
        best_signed = np.where(better, signed, best_signed)
        best_on_item = np.where(better, reference.mask[row_i, col_i], best_on_item)
        best_color = np.where(better[:, None], reference.color[row_i, col_i], best_color)
        best_z = np.where(better, z, best_z)
        first = ~coherent & (np.abs(signed) <= DEPTH_TOLERANCE_M + DEPTH_TOLERANCE_PER_M * z)
        coherent_color[first] = reference.color[row_i[first], col_i[first]]
        coherent |= first
    tolerance = DEPTH_TOLERANCE_M + DEPTH_TOLERANCE_PER_M * best_z
    if coherent_colour:
        best_color = np.where(coherent[:, None], coherent_color, best_color)
    on_item = view.mask[has_point]
    matched_flat = best_error <= tolerance
    # Only where this view sees the item: beside it, a silhouette a few pixels off (registration, a 15-degree
    # parallax) would read as missing material along every edge. A reference seeing something nearer than the
    # item's point sees its item there (material the view lacks) or not (its gripper: the surface is hidden).
    behind = on_item & np.isfinite(best_error) & (best_signed > tolerance)
    missing_flat = behind & best_on_item
    hidden_flat = behind & ~best_on_item
    # Nothing in the references at this point's depth; not within SILHOUETTE_PX of the item's outline, where a
    # silhouette a pixel or two off puts the reference's background behind the item's edge.
    inner = cv2.erode(view.mask.astype(np.uint8), np.ones((2 * SILHOUETTE_PX + 1,) * 2, np.uint8)).astype(bool)
    extra_flat = inner[has_point] & ~matched_flat & ~missing_flat
    # Beside the item (off its mask, inside the compared region): something clearly nearer than what the
    # references see along the ray, e.g. powder spilled next to an intact bag, a flap or contents hanging out.
    beside_flat = ~on_item & np.isfinite(best_error) & (best_signed < -(tolerance + BESIDE_MARGIN_M))
    matched, missing, extra, beside, hidden = (np.zeros((size, size), bool) for _ in range(5))
    matched[has_point], missing[has_point], extra[has_point] = matched_flat, missing_flat, extra_flat
    beside[has_point], hidden[has_point] = beside_flat, hidden_flat
    aligned = view.color.copy()
    residual = np.zeros((size, size), np.float32)
    if matched_flat.any():
        ours = view.color[has_point].astype(np.float64)
        # Light differs a little between views: the reference's colours are matched to the view's on the
        # surface both see.
        # (medians: a stain on part of the surface must not shift the gain of the rest)
        gain = (channel_medians(ours[matched_flat]) + 1.0) / (channel_medians(best_color[matched_flat]) + 1.0)
        theirs = np.clip(best_color * gain, 0, 255)
        rows_cols = np.argwhere(has_point)
        # The aligned image is what the reference shows along each pixel's ray, matched or not: a hole or a
        # dent shows the reference's intact face there, so the features differ where the item changed.
        # Only where the reference shows the item: its gripper or background (grasped elsewhere on the item)
        # would otherwise be pasted over the view's and read as a change.
        projected = np.isfinite(best_error) & (best_on_item | (not coherent_colour))
        aligned[rows_cols[projected, 0], rows_cols[projected, 1]] = theirs[projected].astype(np.uint8)
        same = rows_cols[matched_flat]
        residual[same[:, 0], same[:, 1]] = np.abs(ours[matched_flat] - theirs[matched_flat]).mean(axis=1) / 255.0
    return Correspondence(matched, missing, extra, aligned, residual, has_point, beside, hidden)


def channel_medians(colours: np.ndarray) -> np.ndarray:
    """``np.median(colours, axis=0)`` of (n, 3) 8-bit colour values (held in any dtype), from per-channel
    histograms: the same values, without sorting (0.1 ms against 0.3 for 10 000 pixels, one-off timing)."""
    count = len(colours)
    if count == 0:
        return np.full(colours.shape[1], np.nan)
    values = colours.astype(np.int64)
    middle = np.array([(count - 1) // 2, count // 2])   # the two middle ranks (equal for an odd count)
    medians = []
    for channel in range(values.shape[1]):
        cumulative = np.cumsum(np.bincount(values[:, channel], minlength=256))
        medians.append(np.searchsorted(cumulative, middle, side="right").mean())
    return np.asarray(medians, np.float64)


def cell_means(values: np.ndarray, weights: np.ndarray, grid: int) -> np.ndarray:
    """Per cell of a ``grid`` x ``grid`` split of an (S, S) image: the mean of ``values`` over pixels with
    ``weights`` (0 where a cell has none)."""
    size = values.shape[0]
    step = size // grid
    v = (values * weights)[:grid * step, :grid * step].reshape(grid, step, grid, step).sum(axis=(1, 3))
    w = weights[:grid * step, :grid * step].reshape(grid, step, grid, step).sum(axis=(1, 3))
    return np.where(w > 0, v / np.maximum(w, 1e-9), 0.0)


def region_max(cells: np.ndarray, valid: np.ndarray, width: int = REGION_CELLS) -> float:
    """Largest mean of ``cells`` over ``width`` x ``width`` windows of valid cells (a region's share)."""
    values = np.where(valid, cells, 0.0).astype(np.float32)
    counts = valid.astype(np.float32)
    sums = cv2.boxFilter(values, -1, (width, width), normalize=False, borderType=cv2.BORDER_CONSTANT)
    numbers = cv2.boxFilter(counts, -1, (width, width), normalize=False, borderType=cv2.BORDER_CONSTANT)
    enough = numbers >= (width * width) / 2
    return float((sums / np.maximum(numbers, 1))[enough].max()) if enough.any() else 0.0


def neighbourhood_distance(query: np.ndarray, aligned: np.ndarray, radius: int = 1) -> np.ndarray:
    """Per cell, the distance of the view's feature (h, w, D) to the nearest aligned-reference feature within
    ``radius`` cells (registration is good to a few pixels, not to the cell)."""
    h, w, _ = query.shape
    padded = np.pad(aligned, ((radius, radius), (radius, radius), (0, 0)), mode="edge")
    best = np.full((h, w), np.inf, np.float32)
    for dr in range(2 * radius + 1):
        for dc in range(2 * radius + 1):
            shifted = padded[dr:dr + h, dc:dc + w]
            best = np.minimum(best, np.linalg.norm(query - shifted, axis=-1))
    return best


def top_mean(values: np.ndarray, count: int = TOP_CELLS) -> float:
    return float(np.sort(values.reshape(-1))[-count:].mean()) if values.size else 0.0


@dataclass
class RegisteredScores:
    """A view against its pose-matched, registered references (raw, before the gallery's nominal)."""

    missing: float          # largest regional share of pixels whose reference surface is in front of them
    extra: float            # largest regional share of item pixels with no reference surface at their depth
    colour: float           # mean of the TOP_CELLS largest cell colour residuals
    feature: float          # mean of the TOP_CELLS largest cell feature residuals (neighbourhood distance)
    overlap: float          # share of compared pixels matched by a reference
    beside: float           # largest regional share of off-item pixels nearer than the references see

    def as_dict(self) -> dict[str, float]:
        return {"reg_missing": self.missing, "reg_extra": self.extra, "reg_colour": self.colour,
                "reg_feature": self.feature, "reg_overlap": self.overlap, "reg_beside": self.beside}


def cell_residuals(correspondence: Correspondence, grid: int) -> dict[str, np.ndarray]:
    """Per cell of the ``grid`` x ``grid`` backbone grid (float64): the shares of compared pixels that are
    ``missing``, ``extra`` and ``beside``, the mean colour residual of matched pixels (``colour``), and the
    shares of compared pixels ``matched`` and of pixels ``compared``. The one home of these per-cell
    summaries, for the hand-made scores (``residual_scores``) and the comparator's maps."""
    region = correspondence.region.astype(np.float64)
    matched = correspondence.matched.astype(np.float64)
    return {"missing": cell_means(correspondence.missing.astype(np.float64), region, grid),
            "extra": cell_means(correspondence.extra.astype(np.float64), region, grid),
            "beside": cell_means(correspondence.beside.astype(np.float64), region, grid),
            "colour": cell_means(correspondence.colour_residual.astype(np.float64), matched, grid),
            "matched": cell_means(matched, region, grid),
            "compared": cell_means(region, np.ones_like(region), grid)}


def hidden_cells(correspondence: Correspondence, grid: int, share: float = HIDDEN_CELL_SHARE) -> np.ndarray:
    """(grid, grid) bool: cells of the backbone grid where at least ``share`` of the compared pixels are hidden
    in the references (``Correspondence.hidden``), grown by one cell: the comparator's 3 x 3 convolution
    carries a pasted finger into the cells around it."""
    region = correspondence.region.astype(np.float64)
    cells = cell_means(correspondence.hidden.astype(np.float64), region, grid) >= share
    return cv2.dilate(cells.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)


def residual_scores(correspondence: Correspondence, query_patches: np.ndarray, aligned_patches: np.ndarray,
                    cells: np.ndarray, feature_distance: np.ndarray | None = None,
                    per_cell: dict[str, np.ndarray] | None = None) -> RegisteredScores:
    """Summaries of one view's correspondence; patches (h, w, D) of the view's and the aligned reference's
    crops, ``cells`` (h, w) the item's cells; ``feature_distance`` their ``neighbourhood_distance`` and
    ``per_cell`` the ``cell_residuals`` when the caller has them already."""
    per_cell = per_cell if per_cell is not None else cell_residuals(correspondence, cells.shape[0])
    if feature_distance is None:
        feature_distance = neighbourhood_distance(query_patches, aligned_patches)
    feature = np.where(cells, feature_distance, 0.0)
    overlap = float(correspondence.matched[correspondence.region].mean()) if correspondence.region.any() else 0.0
    compared = per_cell["compared"] > 0.25
    return RegisteredScores(region_max(per_cell["missing"], cells), region_max(per_cell["extra"], cells),
                            top_mean(per_cell["colour"][cells]), top_mean(feature[cells]), overlap,
                            region_max(per_cell["beside"], compared))


def compare_region(view: PosedCrop, grow_px: int = 8) -> np.ndarray:
    """The pixels of a view that are compared: its item mask grown by ``grow_px`` (a spill or a torn-off
    part just beside the item is in it)."""
    kernel = np.ones((2 * grow_px + 1, 2 * grow_px + 1), np.uint8)
    return cv2.dilate(view.mask.astype(np.uint8), kernel).astype(bool)


def coloured_cloud(crop: PosedCrop, normals: bool = False) -> o3d.geometry.PointCloud | None:
    """The crop's item pixels as a gripper-frame cloud with colours (thinned; cached on the crop), for
    coloured ICP; with ``normals`` its normals too (only ICP's target needs them: a reference view). None
    when too few pixels have depth."""
    if "coloured_cloud" not in crop.cache:
        pixels = crop.mask & (crop.depth_m > 0)
        points = crop_points(crop, pixels)
        colours = crop.color[pixels].astype(np.float64) / 255.0
        ok = np.isfinite(points).all(axis=1)
        cloud = None
        if ok.sum() >= 50:
            cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points[ok].astype(np.float64)))
            cloud.colors = o3d.utility.Vector3dVector(colours[ok])
            cloud = cloud.voxel_down_sample(COLOUR_VOXEL_M)
        crop.cache["coloured_cloud"] = cloud
    cloud = crop.cache["coloured_cloud"]
    if normals and cloud is not None and not cloud.has_normals():
        cloud.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=4 * COLOUR_VOXEL_M, max_nn=30))
    return cloud


def refine_with_colour(view: PosedCrop, reference: PosedCrop, transform: np.ndarray) -> np.ndarray:
    """Refine ``transform`` (reference <- view, from ICP on shape alone) with coloured ICP against the
    nearest reference view: a flat face (a card, a book cover) lets geometric ICP slide in its plane, the
    printed artwork does not. Falls back to ``transform`` when the refinement fails or moves too far."""
    source, target = coloured_cloud(view), coloured_cloud(reference, normals=True)
    if source is None or target is None or len(source.points) < 50 or len(target.points) < 50:
        return transform
    refined = transform
    try:
        for distance, iterations in COLOUR_STAGES:
            result = o3d.pipelines.registration.registration_colored_icp(
                source, target, distance, refined,
                o3d.pipelines.registration.TransformationEstimationForColoredICP(),
                o3d.pipelines.registration.ICPConvergenceCriteria(1e-6, 1e-6, iterations))
            refined = np.asarray(result.transformation)
    except RuntimeError:
        return transform
    centre = np.asarray(source.get_center())
    moved = np.linalg.norm((refined[:3, :3] - transform[:3, :3]) @ centre + refined[:3, 3] - transform[:3, 3])
    if not np.isfinite(refined).all() or moved > COLOUR_MAX_SHIFT_M:
        return transform
    # Kept only where the print now fits clearly better and the surfaces still fit as well: under a light
    # that moved with the wrist, colour alone pulls a plain face a few millimetres off its place (measured on
    # galleries, whose views share one grasp: up to 11 mm without this check).
    distance = COLOUR_STAGES[0][0]   # wider than a slide: a face moved within its plane keeps its points
    if "tree" not in reference.cache:   # a reference view serves every view compared with it
        reference.cache["tree"] = cKDTree(np.asarray(target.points))
    tree = reference.cache["tree"]
    before, after = (_colour_fit(source, target, tree, distance, t) for t in (transform, refined))
    if after[0] < before[0] - COLOUR_FITNESS_SLACK or after[1] > COLOUR_GAIN * before[1]:
        return transform
    return refined


def _colour_fit(source: o3d.geometry.PointCloud, target: o3d.geometry.PointCloud, tree: cKDTree,
                distance: float, transform: np.ndarray) -> tuple[float, float]:
    """(share of source points with a target point within ``distance``, their mean absolute colour
    difference) under ``transform``; ``tree`` holds the target's points."""
    points = np.asarray(source.points) @ transform[:3, :3].T + transform[:3, 3]
    gap, nearest = tree.query(points, distance_upper_bound=distance)
    near = np.isfinite(gap)
    if not near.any():
        return 0.0, np.inf
    difference = np.abs(np.asarray(source.colors)[near] - np.asarray(target.colors)[nearest[near]]).mean()
    return float(near.mean()), float(difference)


ALIGNMENTS = ("shape", "coloured")   # shape: ICP on the shape alone (v2 models); coloured: + coloured ICP


def misregistration(rng: np.random.Generator, center: np.ndarray, shift_m: tuple[float, float] = (0.001, 0.008),
                    angle_deg: tuple[float, float] = (0.5, 4.0)) -> np.ndarray:
    """A random small rigid error (4x4, reference frame): a rotation about ``center`` by an angle drawn from
    ``angle_deg`` about a random axis, then a shift of a length drawn from ``shift_m`` in a random direction.
    Composed onto a registration, it gives the comparator pristine pairs whose reference is pasted a little
    off, as ICP leaves it on a flat face or a sagging bag (training data only)."""
    def direction() -> np.ndarray:
        vector = rng.normal(size=3)
        return vector / max(np.linalg.norm(vector), 1e-9)

    rotation = rotation_about_axis(direction(), np.radians(rng.uniform(*angle_deg)))
    error = np.eye(4)
    error[:3, :3] = rotation
    error[:3, 3] = center - rotation @ center + rng.uniform(*shift_m) * direction()
    return error


def correspond_view(view: PosedCrop, cloud: np.ndarray, references: list[PosedCrop], shape: ReferenceShape,
                    registration: Registration | None = None, alignment: str = "coloured",
                    error: np.ndarray | None = None) -> tuple[Correspondence, Registration]:
    """Register a view (its item ``cloud``, gripper frame) to the reference ``shape`` and carry its pixels into
    the reference views seen from nearest its camera; with the ``coloured`` alignment the registration is
    refined against the nearest reference's print and the aligned image is taken coherently (``correspond``).
    ``error``: a rigid transform composed onto the found registration (``misregistration``; training only)."""
    if alignment not in ALIGNMENTS:
        raise ValueError(f"unknown alignment {alignment!r}; one of {ALIGNMENTS}")
    registration = registration or register(cloud, shape)
    camera = (registration.transform @ np.append(view.camera_position, 1.0))[:3]
    chosen = [references[k] for k in nearest_references(camera, shape.center, references)]
    coloured = alignment == "coloured"
    if coloured and chosen:
        registration = Registration(refine_with_colour(view, chosen[0], registration.transform), registration.fitness)
    if error is not None:
        registration = Registration(error @ registration.transform, registration.fitness)
    return correspond(view, registration.transform, chosen, compare_region(view), coloured), registration


LEARNED_SIGNAL = "reg_learned"   # the learned comparator's view score (core.comparator), a log-odds


def normalised(raw: dict[str, float], nominal: dict[str, float]) -> dict[str, float]:
    """The fusion inputs of a view from its raw scores (``RegisteredScores.as_dict``, with the comparator's
    ``LEARNED_SIGNAL`` when it ran): colour and feature residuals as ratios to what the gallery's own views
    score (1 = as pristine), the comparator's log-odds less theirs (0 = as pristine; left out when the
    gallery has no nominal for it), shares and overlap as they are."""
    values = dict(raw)
    for name in ("reg_colour", "reg_feature"):
        values[name] = values[name] / max(nominal.get(name, 1.0), 1e-6)
    if LEARNED_SIGNAL in values:
        if LEARNED_SIGNAL in nominal:
            values[LEARNED_SIGNAL] -= nominal[LEARNED_SIGNAL]
        else:   # a gallery enrolled by a model without a comparator: its raw log-odds mean nothing to the
            del values[LEARNED_SIGNAL]   # fusion, which then takes the pristine 0 (re-enrol the SKU)
    return values


PRISTINE = {"reg_missing": 0.0, "reg_extra": 0.0, "reg_colour": 1.0, "reg_feature": 1.0, "reg_overlap": 1.0,
            "reg_beside": 0.0}


DISAGREEING_SHARE = 0.35      # a reference view whose regional missing/extra share against the others is above
DISAGREEING_FACTOR = 3.0      # this and this many times the gallery's median disagrees with them


def disagreeing_views(leave_one_out: list[dict[str, float]]) -> dict[int, str]:
    """Reference views that disagree with the rest of their gallery (each view's registered comparison with
    the others, ``RegisteredScores.as_dict``): view index -> why. An item that slipped in the grasp, a hand
    or another object in view, a damaged or wrong item among the references: a gallery that keeps such a
    view would call the same defect pristine."""
    refused = {}
    for name in ("reg_missing", "reg_extra"):
        values = np.array([view.get(name, 0.0) for view in leave_one_out])
        if len(values) < 3:
            return {}
        limit = max(DISAGREEING_SHARE, DISAGREEING_FACTOR * float(np.median(values)))
        for k in np.flatnonzero(values > limit):
            what = "missing" if name == "reg_missing" else "extra"
            refused.setdefault(int(k), f"{100 * values[k]:.0f} % of a region is {what} against the other "
                                       f"reference views (limit {100 * limit:.0f} %)")
    return refused
