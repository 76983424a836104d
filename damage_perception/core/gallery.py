"""Per-SKU reference gallery and PatchCore-style anomaly scoring against it.

A gallery holds, for each enrolled pristine view of a SKU, a coreset of its patch features (PatchCore,
Roth et al. 2022: locally averaged mid-level CNN features, greedy k-centre coreset) and its wrist angle, plus
the SKU's reference shape for the 3D check. A view is scored against the reference views nearest in wrist
angle: each of its item cells gets the distance to its nearest reference patch; the view's anomaly score is
the mean of its ``TOP_CELLS`` largest distances, divided by the gallery's own leave-one-out score (what a
pristine view of this SKU scores): 1 is typical of a pristine view, and artwork the gallery shows, however
damage-like, is not anomalous.

Two scorings (``SCORINGS``): ``top_mean`` (above; what model files without a ``gallery_scoring`` use) and
``patchcore``, the paper's and anomalib's: one memory bank of every reference view's patches, the image score
is the largest patch nearest-neighbour distance re-weighted by how isolated that nearest reference patch is
among its own ``SUPPORT_NEIGHBOURS`` neighbours (``1 - softmax`` of the distances, anomalib's
``compute_anomaly_score``), divided by its own leave-one-out nominal. Measured with ``evaluate-mvtec`` on
MVTec AD bottle (docs/models.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from damage_perception.core.registered_comparison import PosedCrop
from damage_perception.core.shape_check import ReferenceShape, build_reference

# Chosen on the validation study (SKUs apart from training and the held-out set), view-level AUROC of the
# anomaly score alone: 3 nearest views / top 3 cells / coreset 0.25 gave 0.724; 8 views 0.760; 8 views, top 5,
# coreset 0.1 gave 0.777 (grasps differ, so the same wrist angle is not quite the same face; a k-centre
# coreset of 10 % keeps the look and drops near-duplicate patches that also sit near damage).
NEAREST_VIEWS = 8        # reference views compared with a view (nearest in wrist angle; a default gallery has 8)
CORESET_RATIO = 0.1      # patches kept per reference view
TOP_CELLS = 5            # the view score averages this many worst cells
PROJECTION_DIM = 64      # random projection used only to pick the coreset (as PatchCore does)
SCORINGS = ("top_mean", "patchcore")
SUPPORT_NEIGHBOURS = 9   # anomalib's num_neighbors for the re-weighting


# The gallery metadata entry naming what measured its registered nominal (``DamageModel.nominal_key``).
NOMINAL_KEY = "nominal_key"


@dataclass
class ReferenceView:
    """One enrolled pristine view: its wrist angle and a coreset of its patch features."""

    angle: float
    patches: np.ndarray      # (n, D) float32
    posed: PosedCrop | None = None   # the view's crop and camera, for the registered comparison


@dataclass
class SkuGallery:
    """Everything known of a SKU's pristine look and shape."""

    sku: str
    views: list[ReferenceView]
    shape: ReferenceShape
    nominal_score: float = 1.0   # leave-one-out raw score of the gallery's own views (median)
    version: int = 1
    metadata: dict = field(default_factory=dict)
    registered_nominal: dict[str, float] = field(default_factory=dict)  # what the gallery's own views score
    #                                      in the registered comparison (median leave-one-out, per signal)
    cache: dict = field(default_factory=dict, repr=False, compare=False)  # derived, never stored or copied


@dataclass
class AnomalyResult:
    """How one view departs from the gallery."""

    score: float             # normalised: ~1 for pristine views
    heatmap: np.ndarray      # (h, w) per-cell normalised distance (0 outside the item)


def patch_features(features: torch.Tensor) -> torch.Tensor:
    """PatchCore's locally aware patch features: 3x3 average of the backbone cells. (B, D, h, w) in and out
    (held channels-last: ``.permute(0, 2, 3, 1)`` of the result is contiguous, the (B, h, w, D) callers use)."""
    # torch's CPU average pooling is ~13x faster on channels-last memory (0.16 against 2.2 ms for 4 crops of
    # 152 x 20 x 20 on one thread) and gives the same values to the bit (test_gallery checks it).
    return F.avg_pool2d(features.contiguous(memory_format=torch.channels_last), 3, stride=1, padding=1,
                        count_include_pad=False)


def greedy_coreset(features: np.ndarray, ratio: float = CORESET_RATIO, seed: int = 0,
                   projection_dim: int = PROJECTION_DIM) -> np.ndarray:
    """Indices of a greedy k-centre coreset of ``features`` (N, D): each next pick is the point farthest from
    those picked, distances taken in a seeded random projection."""
    count = len(features)
    keep = max(1, int(round(ratio * count)))
    if keep >= count:
        return np.arange(count)
    rng = np.random.default_rng(seed)
    projection = rng.normal(size=(features.shape[1], projection_dim)).astype(np.float32) / np.sqrt(projection_dim)
    projected = features.astype(np.float32) @ projection
    chosen = [int(rng.integers(count))]
    nearest = np.linalg.norm(projected - projected[chosen[0]], axis=1)
    for _ in range(keep - 1):
        pick = int(np.argmax(nearest))
        chosen.append(pick)
        nearest = np.minimum(nearest, np.linalg.norm(projected - projected[pick], axis=1))
    return np.asarray(chosen)


def angular_distance(a: np.ndarray | float, b: float) -> np.ndarray:
    """|a - b| wrapped to [0, pi]."""
    return np.abs(np.angle(np.exp(1j * (np.asarray(a, float) - b))))


def _cell_distances(views: list[ReferenceView], query: np.ndarray, angle: float,
                    exclude: int | None = None) -> np.ndarray:
    """Distance of each query patch (n, D) to its nearest patch of the reference views nearest in angle."""
    candidates = [k for k in range(len(views)) if k != exclude]
    order = sorted(candidates, key=lambda k: float(angular_distance(views[k].angle, angle)))[:NEAREST_VIEWS]
    if len(query) == 0 or not order:
        return np.zeros(0, np.float32)
    bank = torch.from_numpy(np.concatenate([views[k].patches for k in order]))
    return torch.cdist(torch.from_numpy(np.ascontiguousarray(query, np.float32)), bank).min(dim=1).values.numpy()


def _top_mean(distances: np.ndarray) -> float:
    """The raw view score: mean of the ``TOP_CELLS`` largest cell distances (0 without cells)."""
    return float(np.sort(distances)[-TOP_CELLS:].mean()) if len(distances) else 0.0


def _raw_scores(views: list[ReferenceView], patches: np.ndarray, cells: np.ndarray, angle: float,
                exclude: int | None = None) -> tuple[float, np.ndarray]:
    """Raw anomaly score and per-cell distance map of one view (patches (h, w, D), cells (h, w) bool)."""
    distances = _cell_distances(views, patches[cells], angle, exclude)
    heatmap = np.zeros(cells.shape, np.float32)
    if len(distances):
        heatmap[cells] = distances
    return _top_mean(distances), heatmap


def reference_view(patches: np.ndarray, angle: float, coreset_ratio: float = CORESET_RATIO,
                   seed: int = 0) -> ReferenceView:
    """A reference view from one pristine view's item-cell patches (n, D): their greedy coreset."""
    patches = np.asarray(patches, np.float32)
    return ReferenceView(float(angle), patches[greedy_coreset(patches, coreset_ratio, seed=seed)])


def nominal_score(views: list[ReferenceView], queries: list[np.ndarray]) -> float:
    """What a pristine view of the SKU scores: the median leave-one-out raw score of each view's item-cell
    patches ``queries[k]`` (n, D) against the other reference views (1.0 when that is 0)."""
    # Against full (not coreset) patches of the others would be kinder; the coreset is what live views meet,
    # so it is what the nominal uses.
    loo = [_top_mean(_cell_distances(views, queries[k], views[k].angle, exclude=k)) for k in range(len(views))]
    median = float(np.median(loo))
    return median if median > 0 else 1.0


def build_gallery(sku: str, patches: np.ndarray, cells: np.ndarray, angles: np.ndarray,
                  clouds: list[np.ndarray], coreset_ratio: float = CORESET_RATIO, version: int = 1,
                  posed: list[PosedCrop] | None = None) -> SkuGallery:
    """A SKU's gallery from its pristine views: patch features (V, h, w, D), item cells (V, h, w),
    wrist angles (V,), item clouds in the gripper frame and, where known, each view's posed crop."""
    if len(patches) < 2:
        raise ValueError(f"gallery of {sku} needs at least 2 views, got {len(patches)}")
    queries = [patches[k][cells[k]].astype(np.float32) for k in range(len(patches))]
    views = [reference_view(queries[k], angles[k], coreset_ratio, seed=k) for k in range(len(patches))]
    for view, crop in zip(views, posed or []):
        view.posed = crop
    nominal = nominal_score(views, queries)
    return SkuGallery(sku, views, build_reference(clouds), nominal, version)


def patchcore_score(bank: torch.Tensor, query: np.ndarray) -> tuple[float, np.ndarray]:
    """PatchCore's image score of query patches (n, D) against a memory bank (m, D), and each patch's
    nearest-neighbour distance: the largest distance, times ``1 - softmax`` weight of that patch's distance to
    the ``SUPPORT_NEIGHBOURS`` bank neighbours of its nearest bank patch (a patch whose nearest reference is an
    isolated outlier of the bank counts for less; as anomalib's ``compute_anomaly_score``)."""
    if len(query) == 0 or len(bank) == 0:
        return 0.0, np.zeros(len(query), np.float32)
    query_t = torch.from_numpy(np.ascontiguousarray(query, np.float32))
    distances, nearest = torch.cdist(query_t, bank).min(dim=1)
    worst = int(distances.argmax())
    neighbours = min(SUPPORT_NEIGHBOURS, len(bank))
    support = torch.cdist(bank[nearest[worst]][None], bank).topk(neighbours, largest=False).indices[0]
    weight = 1.0 - torch.softmax(torch.cdist(query_t[worst][None], bank[support])[0], dim=0)[0]
    return float(weight * distances[worst]), distances.numpy()


def _bank(views: list[ReferenceView], exclude: int | None = None) -> torch.Tensor:
    return torch.from_numpy(np.concatenate([v.patches for k, v in enumerate(views) if k != exclude]))


def patchcore_nominal(gallery: SkuGallery) -> float:
    """What a pristine view scores with ``patchcore``: the median leave-one-out score of each reference view's
    (coreset) patches against the others' bank; computed once and kept in ``gallery.cache``."""
    if "patchcore_nominal" not in gallery.cache:
        loo = [patchcore_score(_bank(gallery.views, k), view.patches)[0] for k, view in enumerate(gallery.views)]
        median = float(np.median(loo)) if len(gallery.views) > 1 else 0.0
        gallery.cache["patchcore_nominal"] = median if median > 0 else 1.0
    return float(gallery.cache["patchcore_nominal"])


def score_view(gallery: SkuGallery, patches: np.ndarray, cells: np.ndarray, angle: float,
               scoring: str = "top_mean") -> AnomalyResult:
    """Anomaly of one view (patches (h, w, D), cells (h, w) bool) against the gallery, scored by ``scoring``
    (``SCORINGS``): ``top_mean`` against the views nearest in angle, ``patchcore`` against all of them."""
    if scoring == "top_mean":
        raw, heatmap = _raw_scores(gallery.views, patches, cells, angle)
        return AnomalyResult(raw / gallery.nominal_score, heatmap / gallery.nominal_score)
    if scoring != "patchcore":
        raise ValueError(f"unknown gallery scoring {scoring!r}; one of {SCORINGS}")
    if "bank" not in gallery.cache:   # not persisted: the store keeps the views, the bank is rebuilt
        gallery.cache["bank"] = _bank(gallery.views)
    nominal = patchcore_nominal(gallery)
    raw, distances = patchcore_score(gallery.cache["bank"], patches[cells])
    heatmap = np.zeros(cells.shape, np.float32)
    heatmap[cells] = distances
    return AnomalyResult(raw / nominal, heatmap / nominal)
