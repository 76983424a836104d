"""Product identification: which enrolled SKUs look most like an item, from the galleries' patch features.

Each reference view of a gallery becomes one embedding: the mean of its coreset patch features. The index
centres all embeddings on their common mean (backbone features share a large positive offset that would make
every cosine similarity near 1) and L2-normalises them. A query item's views are embedded the same way (a
coreset of the view's item cells first, as at enrolment); a SKU's similarity is, averaged over the query's
views, the best cosine similarity with any of the SKU's reference views (the item may be held at another
wrist angle or grasp than at enrolment). Plain numpy: a station's few thousand SKUs are one matrix product.

Uses: catch a wrong SKU in a goal (the item looks like another product), or suggest the SKU of an unlabelled
item to the operator before enrolment.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from damage_perception.core.gallery import CORESET_RATIO, SkuGallery, greedy_coreset


@dataclass(frozen=True)
class Match:
    """One candidate SKU and its similarity to the query (cosine, in [-1, 1])."""

    sku: str
    similarity: float


def view_embedding(patches: np.ndarray, coreset_ratio: float | None = None, seed: int = 0) -> np.ndarray:
    """Mean of a view's patch features (n, D); with ``coreset_ratio``, of the coreset picked as at enrolment."""
    patches = np.asarray(patches, np.float32).reshape(-1, np.shape(patches)[-1])
    if len(patches) == 0:
        raise ValueError("a view without item patches has no embedding")
    if coreset_ratio is not None:
        patches = patches[greedy_coreset(patches, coreset_ratio, seed=seed)]
    return patches.mean(axis=0)


class GalleryIndex:
    """The reference-view embeddings of a set of SKU galleries, ready for nearest-SKU queries."""

    def __init__(self, galleries: list[SkuGallery]) -> None:
        rows = [(gallery.sku, view_embedding(view.patches)) for gallery in galleries for view in gallery.views
                if len(view.patches)]
        if not rows:
            raise ValueError("no gallery with reference views to identify against")
        self.skus = sorted({sku for sku, _ in rows})
        self.owner = np.array([self.skus.index(sku) for sku, _ in rows])
        embeddings = np.stack([embedding for _, embedding in rows])
        self.centre = embeddings.mean(axis=0)
        self.embeddings = self._normalise(embeddings)

    def _normalise(self, embeddings: np.ndarray) -> np.ndarray:
        centred = np.atleast_2d(embeddings) - self.centre
        return centred / np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-12)

    def embed(self, view_patches: list[np.ndarray], coreset_ratio: float | None = CORESET_RATIO) -> np.ndarray:
        """Embeddings (views, D) of an item's views given as their item-cell patches ((n, D) each), picked
        as at enrolment (the view pipeline computes the same per view: ``ViewResult.embedding``)."""
        if not view_patches:
            raise ValueError("an item without views has no embedding")
        return np.stack([view_embedding(p, coreset_ratio, seed=k) for k, p in enumerate(view_patches)])

    def similarities(self, view_embeddings: np.ndarray) -> np.ndarray:
        """Similarity of an item (its views' embeddings, (views, D)) to every SKU, in ``self.skus`` order:
        averaged over the item's views, the best cosine with any of the SKU's reference views."""
        queries = self._normalise(np.asarray(view_embeddings, np.float32))
        similarity = queries @ self.embeddings.T                    # (query views, reference views)
        best = np.full((len(queries), len(self.skus)), -np.inf)
        np.maximum.at(best.T, self.owner, similarity.T)             # best reference view of each SKU
        return best.mean(axis=0)

    def query(self, view_embeddings: np.ndarray, top_k: int | None = 5) -> list[Match]:
        """The ``top_k`` (None: all) SKUs most like an item given as its views' embeddings, best first."""
        per_sku = self.similarities(view_embeddings)
        order = np.argsort(-per_sku, kind="stable")[:top_k]
        return [Match(self.skus[k], float(per_sku[k])) for k in order]


@dataclass(frozen=True)
class IdentificationConfig:
    """The node's check of the claimed SKU (parameters ``identification.*``)."""

    enabled: bool = True
    top_k: int = 3          # the claimed SKU passes when it is among the top k most similar enrolled SKUs ...
    margin: float = 0.25    # ... or within this similarity of the closest (calibrated by damage-perception identify)


@dataclass(frozen=True)
class ClaimCheck:
    """Does an item look like the SKU it was presented as? ``mismatch`` when it does not."""

    claimed: str
    closest: str           # the most similar enrolled SKU
    rank: int              # the claimed SKU's rank among the enrolled SKUs (0 = most similar)
    gap: float             # similarity of the closest SKU minus that of the claimed one (>= 0)
    mismatch: bool

    @property
    def reason(self) -> str:
        return (f"item does not look like SKU {self.claimed} (closest: {self.closest}; "
                f"{self.claimed} ranks {self.rank + 1}, {self.gap:.2f} below)")


def effective_top_k(top_k: int, enrolled: int) -> int:
    """Among the top ``top_k`` of ``enrolled`` SKUs: with few SKUs enrolled, being among the top ``enrolled - 1``
    is the most that can count as evidence (with two SKUs, the claimed one must be the closer)."""
    return max(1, min(top_k, enrolled - 1))


def check_claim(matches: list[Match], claimed: str, top_k: int, margin: float) -> ClaimCheck | None:
    """The mismatch rule on a full ranking (``GalleryIndex.query(..., top_k=None)``): the item does not look like
    ``claimed`` when the claimed SKU is not among the top ``effective_top_k`` AND the closest SKU is more than
    ``margin`` more similar. None when the claim cannot be checked (claimed SKU not enrolled, or alone)."""
    ranked = [m.sku for m in matches]
    if claimed not in ranked or len(ranked) < 2:
        return None
    rank = ranked.index(claimed)
    gap = matches[0].similarity - matches[rank].similarity
    return ClaimCheck(claimed, ranked[0], rank, gap,
                      rank >= effective_top_k(top_k, len(ranked)) and gap > margin)


def check_item(index: GalleryIndex, view_embeddings: list[np.ndarray], claimed: str,
               config: IdentificationConfig) -> ClaimCheck | None:
    """The mismatch rule for an inspected item (its found views' embeddings); None when it cannot be checked."""
    if not config.enabled or not view_embeddings:
        return None
    return check_claim(index.query(np.stack(view_embeddings), top_k=None), claimed, config.top_k, config.margin)
