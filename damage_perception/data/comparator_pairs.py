"""Query/reference pairs of a study for training the learned comparator (``core.comparator``).

Each SKU's gallery is built from its gallery episode (as ``study_scores.score_study`` does); every found
view of its items then goes through the registered comparison, and the pair is kept as the comparator
reads it: the view's patch features, the aligned reference's, the per-cell residual maps, and soft cell
labels from the view's ground-truth damage mask. Pairs are cached per SKU (``<cache>/<sku>.npz``), so an
interrupted extraction resumes where it stopped.

With a ``misregister_seed`` every view's registration is knocked a little off on purpose
(``core.registered_comparison.misregistration``) before its pixels are carried into the references: the
labels stay the view's own, so the comparator learns that a reference pasted a few millimetres off (a ghost
print edge, a doubled bag print) is not damage. That is what made pristine items' views its false alarms.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from damage_perception.core.comparator import cell_labels
from damage_perception.core.damage_model import DamageModel
from damage_perception.core.registered_comparison import misregistration
from damage_perception.data.study import Study, StudyEpisodeData
from damage_perception.data.study_scores import gallery_of

FIELDS = ("query", "aligned", "maps", "labels", "damaged", "printed_art", "sku")


@dataclass
class ComparatorPairs:
    """Views paired with their aligned references (N views)."""

    query: np.ndarray        # (N, h, w, D) float16 view patch features
    aligned: np.ndarray      # (N, h, w, D) float16 aligned-reference patch features
    maps: np.ndarray         # (N, h, w, len(MAP_NAMES)) float32 residual maps
    labels: np.ndarray       # (N, h, w) float32 soft damage targets per cell
    damaged: np.ndarray      # (N,) bool, the view's item is damaged (the view may not show it)
    printed_art: np.ndarray  # (N,) bool, the item carries printed damage-like artwork
    sku: np.ndarray          # (N,) str

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, keep: np.ndarray) -> ComparatorPairs:
        return ComparatorPairs(*(getattr(self, name)[keep] for name in FIELDS))

    @classmethod
    def concatenate(cls, parts: list[ComparatorPairs]) -> ComparatorPairs:
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in FIELDS))


def item_pairs(model: DamageModel, episode: StudyEpisodeData, gallery,
               rng: np.random.Generator | None = None) -> ComparatorPairs | None:
    """The pairs of one item episode's found views (None when the comparison cannot run); with ``rng``
    each view's registration gets a random small error (``misregistration``)."""
    index = np.flatnonzero(episode.found)
    posed = episode.posed_crops(index)
    if not len(index) or gallery is None or posed is None:
        return None
    clouds = [episode.clouds[k] for k in index]
    errors = None
    if rng is not None and len(gallery.shape.points):
        errors = [misregistration(rng, gallery.shape.center) for _ in index]
    correspondences = model.correspondences(clouds, gallery, posed, errors=errors)
    if correspondences is None:
        return None
    batch = model.featurize(episode.color[index], episode.mask[index], episode.depth_m[index])
    registered = model.registered_comparison(batch, clouds, gallery, posed, correspondences=correspondences)
    grid = batch.cells.shape[1]
    count, art = len(index), bool(episode.meta.get("printed_damage_art"))
    return ComparatorPairs(batch.patches.astype(np.float16), registered.aligned_patches.astype(np.float16),
                           registered.maps, np.stack([cell_labels(episode.damage[k], grid) for k in index]),
                           np.full(count, episode.damaged), np.full(count, art), np.full(count, episode.meta["sku"]))


def sku_pairs(model: DamageModel, study: Study, sku: str,
              misregister_seed: int | None = None) -> ComparatorPairs | None:
    """Every pair of one SKU's items (None when its gallery cannot be built or no view compares); with
    ``misregister_seed`` the views' registrations are knocked off (``item_pairs``), reproducibly per SKU."""
    entries = [e for e in study.entries if e["sku"] == sku]
    gallery_entry = next((e for e in entries if e["role"] == "gallery"), None)
    if gallery_entry is None:
        return None
    try:
        gallery = gallery_of(model, study.load(gallery_entry))
    except ValueError:
        return None
    rng = None
    if misregister_seed is not None:
        rng = np.random.default_rng([misregister_seed, *(ord(c) for c in sku)])
    parts = [item_pairs(model, study.load(e), gallery, rng) for e in entries if e["role"] == "item"]
    parts = [p for p in parts if p is not None]
    return ComparatorPairs.concatenate(parts) if parts else None


def study_pairs(model: DamageModel, study: Study, cache: Path, progress: bool = True,
                misregister_seed: int | None = None) -> ComparatorPairs:
    """Every SKU's pairs, read from ``cache`` where already extracted (one npz per SKU); misregistered ones
    (``sku_pairs``) with ``misregister_seed``: give them a cache of their own."""
    cache.mkdir(parents=True, exist_ok=True)
    parts = []
    for sku in tqdm(study.skus(), unit="SKU", disable=not progress, desc="pairs"):
        path = cache / f"{sku}.npz"
        if not path.exists():
            pairs = sku_pairs(model, study, sku, misregister_seed)
            arrays = {name: getattr(pairs, name) for name in FIELDS} if pairs else {}
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, **arrays)
            tmp.rename(path)   # a killed run leaves no half-written SKU behind
        with np.load(path) as stored:
            if stored.files:
                parts.append(ComparatorPairs(*(stored[name] for name in FIELDS)))
    if not parts:
        raise ValueError(f"no comparable views in {study.root}: studies need stored cameras and galleries")
    return ComparatorPairs.concatenate(parts)
