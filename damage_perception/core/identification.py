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

    def query(self, view_patches: list[np.ndarray], top_k: int = 5,
              coreset_ratio: float | None = CORESET_RATIO) -> list[Match]:
        """The ``top_k`` SKUs most like an item given as its views' item-cell patches ((n, D) each), best
        first."""
        queries = self._normalise(np.stack([view_embedding(p, coreset_ratio, seed=k)
                                            for k, p in enumerate(view_patches)]))
        similarity = queries @ self.embeddings.T                    # (query views, reference views)
        best = np.full((len(queries), len(self.skus)), -np.inf)
        for column, owner in enumerate(self.owner):                 # best reference view of each SKU
            best[:, owner] = np.maximum(best[:, owner], similarity[:, column])
        per_sku = best.mean(axis=0)
        order = np.argsort(-per_sku, kind="stable")[:top_k]
        return [Match(self.skus[k], float(per_sku[k])) for k in order]
