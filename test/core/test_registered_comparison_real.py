"""Registration (``core.shape_check.register``) and the registered comparison (``core.registered_comparison``)
on real RGB-D views: five views of a tissue box in a shelf bin, with the cameras' poses (test/fixtures/apc2016,
from the Princeton APC 2016 shelf data; see its README).

The box stands still in the world while the camera moves, so the world frame plays the gripper frame:
camera_from_gripper is the inverse of a frame's camera pose. The fixture's depth is registered to the colour
camera, so the colour intrinsics serve both images (checked: the depth's jumps at the box's top edge and at
a metal rod beside it fall on the colour edges, and the box's face ends within 0-4 px of its colour edges;
the source's raw/ depth, in the depth camera's own pixels at fx 478, frames the scene visibly otherwise).
By the camera poses alone, the depth a view sees along another view's rays agrees with that view's to a
median 1.2-1.5 mm (frames 2, 7, 12; 4-5 mm for 6 and 8).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from damage_perception.core.camera import CameraIntrinsics, backproject
from damage_perception.core.crops import crop_item, cut
from damage_perception.core.registered_comparison import (
    DEPTH_TOLERANCE_M,
    DEPTH_TOLERANCE_PER_M,
    Correspondence,
    PosedCrop,
    cell_means,
    correspond_view,
    posed_crop,
    residual_scores,
)
from damage_perception.core.shape_check import Registration, build_reference, register, thin_points
from damage_perception.core.transforms import invert, make_transform

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "apc2016"
QUERY = "frame-000007"     # camera in front of the box, 0.64 m away, looking 10 degrees down
# 6 cm below, 7.5 cm left, 7.5 cm right and 6 cm above the query's camera
REFERENCES = ("frame-000002", "frame-000006", "frame-000008", "frame-000012")


def decode_depth(raw: np.ndarray) -> np.ndarray:
    """Metres from the Princeton toolbox's uint16 depth PNG (bits rotated by 3, 0.1 mm units)."""
    raw = raw.astype(np.uint32)
    return ((((raw >> 3) | (raw << 13)) & 0xFFFF) / 10000.0).astype(np.float32)


def fill_registration_holes(depth_m: np.ndarray) -> np.ndarray:
    """Depth with each no-reading pixel next to a reading given its nearest 3 x 3 neighbour's depth (one pass).

    The depth was registered to the colour camera by projecting each depth pixel (fx 478) into the colour
    image (fx 615): one colour row and column in four or five receives none, a grid of 1 px holes over about
    half of the item's pixels. ``depth_edges`` counts a neighbour without a reading as an edge, so as stored
    no item point is "reliable" and the view pipeline would refuse every view (it needs 50 %); after this
    pass 84 % are (frame 7). Unfilled, the holes in the references also read as "extra" (pristine overlap
    0.815 instead of 0.975, measured).
    """
    nearest = cv2.erode(np.where(depth_m > 0, depth_m, np.inf).astype(np.float32), np.ones((3, 3), np.uint8))
    return np.where((depth_m > 0) | ~np.isfinite(nearest), depth_m, nearest).astype(np.float32)


@dataclass
class RealView:
    posed: PosedCrop
    cloud: np.ndarray       # (n, 3) world-frame item points, thinned as the view pipeline thins them
    patch: np.ndarray       # (S, S) bool, the crop pixels of ``face_patch`` (where a test edits the view)


def load_frame(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """(colour RGB, depth metres after the hole fill, item mask, camera entry) of a fixture frame."""
    color = cv2.cvtColor(cv2.imread(str(FIXTURES / f"{name}.color.png")), cv2.COLOR_BGR2RGB)
    raw = cv2.imread(str(FIXTURES / f"{name}.depth.png"), cv2.IMREAD_UNCHANGED)
    mask = cv2.imread(str(FIXTURES / f"{name}.mask.png"), cv2.IMREAD_UNCHANGED) > 0
    return color, fill_registration_holes(decode_depth(raw)), mask, json.loads(
        (FIXTURES / "cameras.json").read_text())["frames"][name]


def face_patch(mask: np.ndarray, depth_m: np.ndarray) -> np.ndarray:
    """Item pixels with a reading in rows 25-50 % and columns 20-45 % of the item's bounding box: ~32 x 32 px
    of the box's front face (~4 x 4 cells of the crop), clear of its edges."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    height, width = rows[-1] - rows[0], cols[-1] - cols[0]
    patch = np.zeros(mask.shape, bool)
    patch[rows[0] + int(0.25 * height):rows[0] + int(0.5 * height),
          cols[0] + int(0.2 * width):cols[0] + int(0.45 * width)] = True
    return patch & mask & (depth_m > 0)


def make_view(name: str, dent_m: float = 0.0, stain: tuple[int, int, int] | None = None,
              moved: np.ndarray | None = None) -> RealView:
    """A fixture frame as the view pipeline makes a view: the item crop with its camera, and the item's cloud.

    ``dent_m``: the ``face_patch`` pushed this far back from the camera (the surface behind a missing part);
    ``stain``: the patch's colour blended 60 % towards this RGB; ``moved``: the item as if it had slipped in
    the grasp, its points ``moved`` @ p in the frame the view's camera pose is given in.
    """
    color, depth, mask, camera = load_frame(name)
    patch = face_patch(mask, depth)
    depth = np.where(patch, depth + dent_m, depth).astype(np.float32)
    if stain is not None:
        color = color.copy()
        color[patch] = (0.4 * color[patch] + 0.6 * np.array(stain)).astype(np.uint8)
    intrinsics = CameraIntrinsics.from_matrix(np.array(camera["K"]), mask.shape[1], mask.shape[0])
    camera_from_world = invert(np.array(camera["camera_to_world"]))
    if moved is not None:
        camera_from_world = camera_from_world @ invert(moved)
    world_from_camera = invert(camera_from_world)
    points = backproject(depth, intrinsics)[mask & (depth > 0)]
    cloud = thin_points((points @ world_from_camera[:3, :3].T + world_from_camera[:3, 3]).astype(np.float32))
    crop = crop_item(color, depth, mask)
    return RealView(posed_crop(crop, intrinsics, camera_from_world), cloud, cut(patch, crop.box, crop.size, True))


def rms_shift(transform: np.ndarray, points: np.ndarray) -> float:
    """Root-mean-square distance ``transform`` moves ``points`` (m)."""
    moved = points @ transform[:3, :3].T + transform[:3, 3]
    return float(np.sqrt(((moved - points) ** 2).sum(axis=1).mean()))


def rotation_deg(transform: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(transform[:3, :3]) - 1) / 2, -1.0, 1.0))))


@pytest.fixture(scope="module")
def model():
    from damage_perception.core.damage_model import DamageModel
    from damage_perception.core.station import SHIPPED_MODEL_FILE
    return DamageModel.load(SHIPPED_MODEL_FILE)


@pytest.fixture(scope="module")
def references() -> list[RealView]:
    """The views just below and above the query's camera (10 degrees either way): ``correspond_view``
    carries the query into both. (Given all four neighbours it keeps the two whose cameras are nearest in
    direction, and the four are nearly equally near: ICP's 1.3 mm correction flips its pick from frames
    12 and 2 to 2 and 8, and with 8 the pristine reg_extra rose from 0.17 to 0.43, measured.)"""
    return [make_view("frame-000002"), make_view("frame-000012")]


def compare(view: RealView, references: list[RealView], model, registration: Registration | None = None,
            alignment: str = "shape") -> tuple[Correspondence, Registration, dict[str, float], np.ndarray]:
    """The registered comparison of ``view`` with ``references`` as ``DamageModel.registered_comparison`` runs
    it: (correspondence, registration, raw ``residual_scores``, the view's item cells)."""
    shape = build_reference([reference.cloud for reference in references])
    correspondence, registration = correspond_view(view.posed, view.cloud, [r.posed for r in references], shape,
                                                   registration=registration, alignment=alignment)
    batch = model.featurize(np.stack([view.posed.color, correspondence.aligned_color]),
                            np.stack([view.posed.mask] * 2), np.stack([view.posed.depth_m] * 2))
    scores = residual_scores(correspondence, batch.patches[0], batch.patches[1], batch.cells[0])
    return correspondence, registration, scores.as_dict(), batch.cells[0]


def item_shares(correspondence: Correspondence, view: RealView) -> tuple[float, float]:
    """(missing, extra) shares of the item's compared pixels."""
    item = view.posed.mask & correspondence.region
    return float(correspondence.missing[item].mean()), float(correspondence.extra[item].mean())


# --- registration -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [QUERY, "frame-000002", "frame-000008", "frame-000012"])
def test_icp_keeps_the_true_poses_of_real_views(name):
    # Each view's cloud, put in the world by its camera's pose, registered to the reference shape of the other
    # four views: the correction ICP makes on top of the true poses. Measured (rms shift of the view's points
    # / rotation / fitness): frame 7 1.3 mm / 0.9 deg / 0.92, frame 2 3.9 / 2.3 / 0.90, frame 8 6.9 / 2.6 /
    # 0.80, frame 12 3.9 / 2.9 / 0.86. The box shows one large flat face, which ICP may slide and turn in
    # its plane at little cost: degrees, not the tenths a textured object would allow.
    # Frame 6 is not asked: a patch of its front face reads ~2 cm nearer than in every other view (a sensor
    # artefact, see the fixture's README), which pulls ICP 15.6 mm / 6.0 deg off (fitness 0.62).
    views = {n: make_view(n) for n in (QUERY, *REFERENCES)}
    view = views.pop(name)
    registration = register(view.cloud, build_reference([other.cloud for other in views.values()]))
    assert rms_shift(registration.transform, view.cloud) < 0.010
    assert rotation_deg(registration.transform) < 4.0
    assert registration.fitness > 0.7


def test_icp_between_the_views_above_and_below_barely_moves_the_true_pose(references):
    # Frame 7 against frames 2 and 12 alone: measured 0.7 mm rms, 0.46 deg.
    view = make_view(QUERY)
    registration = register(view.cloud, build_reference([reference.cloud for reference in references]))
    assert rms_shift(registration.transform, view.cloud) < 0.003
    assert rotation_deg(registration.transform) < 1.5


PERTURBATIONS = [((1, 0, 0), (0, 0, 1)), ((-1, 0, 0), (0, 1, 0)), ((0, 1, 0), (1, 0, 0)), ((0, -1, 0), (0, 0, -1)),
                 ((0, 0, 1), (1, 1, 0)), ((0, 0, -1), (0, 1, -1)), ((1, 1, 1), (1, -1, 1)), ((-1, 1, -1), (-1, 0, 1))]


def test_icp_from_a_pose_1_5_cm_and_5_degrees_off_comes_back(references, model):
    # The item "slipped": its points turned 5 degrees about their centroid and shifted 1.5 cm (eight
    # directions; world x points into the shelf, z up), ~16 mm rms off. ``correspond_view`` registers from
    # there. Measured, rms error left / rotation left, in PERTURBATIONS' order: 1.7 / 1.2, 3.3 / 1.2, 2.4 /
    # 0.8, 2.4 / 1.6, 9.1 / 2.7 (lifted and turned about a horizontal axis: the flat face lets ICP stop
    # short), 5.4 / 2.2, 5.5 / 1.5, 2.7 / 1.8 mm / deg; the comparison then still matches >= 0.930 of the
    # pixels (0.975 from the true pose), reg_missing <= 0.112 (0.080).
    pristine = make_view(QUERY)
    centre = pristine.cloud.mean(axis=0)
    errors = []
    for shift, axis in PERTURBATIONS:
        rotation = cv2.Rodrigues(np.radians(5.0) * np.array(axis, float) / np.linalg.norm(axis))[0]
        offset = 0.015 * np.array(shift, float) / np.linalg.norm(shift)
        slip = make_transform(centre + offset - rotation @ centre, rotation)
        view = make_view(QUERY, moved=slip)
        correspondence, registration, scores, _ = compare(view, references, model)
        left = registration.transform @ slip     # the true pose when ICP undid the slip exactly
        errors.append(rms_shift(left, pristine.cloud))
        assert rms_shift(left, pristine.cloud) < 0.012, (shift, axis)
        assert rotation_deg(left) < 4.0, (shift, axis)
        assert scores["reg_overlap"] > 0.9, (shift, axis)
        assert scores["reg_missing"] < 0.25, (shift, axis)
    assert np.median(errors) < 0.005        # measured 3.0 mm


# --- the aligned comparison ---------------------------------------------------------------------------------

@pytest.mark.parametrize("alignment", ["shape", "coloured"])
def test_pristine_real_views_match_despite_real_depth_noise(references, model, alignment):
    # Measured (both alignments alike: the coloured refinement is refused on the box's plain print):
    # reg_overlap 0.975, item missing / extra shares 0.007 / 0.008, regional reg_missing 0.080, reg_extra
    # 0.166 (the box's right edge, where the side face is seen at a grazing angle). From the true poses
    # (no ICP): overlap 0.974, reg_missing 0.104, reg_extra 0.164.
    view = make_view(QUERY)
    correspondence, _, scores, _ = compare(view, references, model, alignment=alignment)
    missing, extra = item_shares(correspondence, view)
    assert scores["reg_overlap"] > 0.93
    assert missing < 0.03 and extra < 0.03
    assert scores["reg_missing"] < 0.25
    assert scores["reg_extra"] < 0.35
    _, _, true_scores, _ = compare(view, references, model, Registration(np.eye(4), 1.0), alignment)
    assert abs(scores["reg_overlap"] - true_scores["reg_overlap"]) < 0.03


@pytest.mark.parametrize("dent_m", [0.02, 0.04])
def test_a_missing_part_reads_as_missing_where_it_was_made(references, model, dent_m):
    # ~32 x 32 px of the box's front face pushed back (the surface behind a part that is gone); colour as it
    # was. Measured for 2 and 4 cm: 0.99 and 1.00 of the patch's pixels missing, 0.006-0.008 of the item's
    # pixels elsewhere; reg_missing 1.00 (pristine 0.080); the worst region centred in the patch's cells.
    pristine = make_view(QUERY)
    range_m = float(np.median(pristine.posed.depth_m[pristine.posed.mask & (pristine.posed.depth_m > 0)]))
    assert dent_m > DEPTH_TOLERANCE_M + DEPTH_TOLERANCE_PER_M * range_m   # 14 mm at the box's 0.64 m
    view = make_view(QUERY, dent_m=dent_m)
    correspondence, _, scores, cells = compare(view, references, model)
    _, _, clean, _ = compare(pristine, references, model)
    patch = view.patch & (view.posed.depth_m > 0)
    elsewhere = view.posed.mask & ~cv2.dilate(view.patch.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert correspondence.missing[patch].mean() > 0.9
    assert correspondence.missing[elsewhere].mean() < 0.03
    assert clean["reg_missing"] < 0.25
    assert scores["reg_missing"] > 0.9
    # where: the 3 x 3-cell region with the largest missing share sits on the patch
    grid = cells.shape[0]
    missing = np.where(cells, cell_means(correspondence.missing.astype(float),
                                         correspondence.region.astype(float), grid), 0.0).astype(np.float32)
    sums = cv2.boxFilter(missing, -1, (3, 3), normalize=False, borderType=cv2.BORDER_CONSTANT)
    counts = cv2.boxFilter(cells.astype(np.float32), -1, (3, 3), normalize=False, borderType=cv2.BORDER_CONSTANT)
    row, col = np.unravel_index(np.argmax(np.where(counts >= 4.5, sums / np.maximum(counts, 1), -1)), sums.shape)
    patch_cells = cell_means(view.patch.astype(float), np.ones(view.patch.shape), grid) > 0.5
    assert patch_cells[row, col]


def test_a_stain_raises_the_colour_and_feature_residuals_not_the_shape_shares(references, model):
    # The same patch's colour blended 60 % towards red (a spill), its depth as it was. Measured: reg_colour
    # 0.136 -> 0.262, reg_feature (backbone, raw) 50.3 -> 72.3; reg_missing / reg_extra unchanged.
    _, _, clean, _ = compare(make_view(QUERY), references, model)
    _, _, stained, _ = compare(make_view(QUERY, stain=(200, 40, 30)), references, model)
    assert stained["reg_colour"] > 1.5 * clean["reg_colour"]
    assert stained["reg_feature"] > 1.25 * clean["reg_feature"]
    assert stained["reg_missing"] == pytest.approx(clean["reg_missing"], abs=0.02)
    assert stained["reg_extra"] == pytest.approx(clean["reg_extra"], abs=0.02)
