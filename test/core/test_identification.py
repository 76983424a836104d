"""Product identification from gallery embeddings: synthetic features, then the model's own on rendered SKUs."""
import numpy as np
import pytest

from damage_perception.core.gallery import ReferenceView, SkuGallery
from damage_perception.core.identification import GalleryIndex, view_embedding
from damage_perception.core.shape_check import ReferenceShape

DIM = 152


def synthetic_gallery(sku: str, direction: np.ndarray, rng, views: int = 4) -> SkuGallery:
    """Views whose patches share a large positive offset (like backbone features) plus the SKU's look."""
    references = [ReferenceView(0.8 * k, (5.0 + direction + 0.6 * rng.normal(size=(40, DIM))).astype(np.float32))
                  for k in range(views)]
    return SkuGallery(sku, references, ReferenceShape(np.zeros((0, 3), np.float32)))


def test_the_query_items_own_sku_ranks_first_and_similarities_fall():
    rng = np.random.default_rng(0)
    looks = {f"SKU-{k}": rng.normal(size=DIM) for k in range(6)}
    index = GalleryIndex([synthetic_gallery(sku, look, rng) for sku, look in looks.items()])
    for sku, look in looks.items():
        query = [(5.0 + look + 0.6 * rng.normal(size=(300, DIM))).astype(np.float32) for _ in range(2)]
        matches = index.query(query, top_k=3)
        assert [m.sku for m in matches][0] == sku and len(matches) == 3
        assert matches[0].similarity > 0.8 and matches[0].similarity > matches[1].similarity + 0.5
        assert [m.similarity for m in matches] == sorted((m.similarity for m in matches), reverse=True)


def test_without_centring_everything_would_look_alike():
    """The shared offset makes raw cosines near 1 for every SKU; the index's centring is what separates them."""
    rng = np.random.default_rng(1)
    a, b = (view_embedding(5.0 + rng.normal(size=(40, DIM))) for _ in range(2))
    assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) > 0.95


def test_an_empty_index_or_view_is_a_clear_error():
    with pytest.raises(ValueError, match="no gallery"):
        GalleryIndex([])
    with pytest.raises(ValueError, match="no embedding"):
        view_embedding(np.zeros((0, DIM), np.float32))


def test_rendered_skus_are_identified_from_new_views_under_camera_and_grasp_variation():
    from damage_perception.core.damage_model import DamageModel
    from damage_perception.data.study import gallery_episode
    from damage_perception.data.study_scores import gallery_of
    from damage_perception.tools.train import DEFAULT_MODEL

    model = DamageModel.load(DEFAULT_MODEL)
    skus = ["SKU-1041", "SKU-1187", "BK-1203", "BT-1150"]  # two cartons: the close call
    index = GalleryIndex([gallery_of(model, gallery_episode(sku, views=4)) for sku in skus])
    for sku in skus:
        episode = gallery_episode(sku, views=2, seed=7, variation=1.0)
        batch = model.featurize(episode.color[episode.found], episode.mask[episode.found],
                                episode.depth_m[episode.found])
        matches = index.query([batch.patches[k][batch.cells[k]] for k in range(len(batch.patches))], top_k=2)
        assert matches[0].sku == sku, matches
