"""Product identification from gallery embeddings: synthetic features, then the model's own on rendered SKUs."""
import numpy as np
import pytest

from damage_perception.core.gallery import ReferenceView, SkuGallery
from damage_perception.core.identification import (
    GalleryIndex,
    IdentificationConfig,
    Match,
    check_claim,
    check_item,
    effective_top_k,
    view_embedding,
)
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
        matches = index.query(index.embed(query), top_k=3)
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
    from damage_perception.core.station import SHIPPED_MODEL_FILE
    from damage_perception.data.study import gallery_episode
    from damage_perception.data.study_scores import gallery_of

    model = DamageModel.load(SHIPPED_MODEL_FILE)
    skus = ["SKU-1041", "SKU-1187", "BK-1203", "BT-1150"]  # two cartons: the close call
    index = GalleryIndex([gallery_of(model, gallery_episode(sku, views=4)) for sku in skus])
    for sku in skus:
        episode = gallery_episode(sku, views=2, seed=7, variation=1.0)
        batch = model.featurize(episode.color[episode.found], episode.mask[episode.found],
                                episode.depth_m[episode.found])
        matches = index.query(index.embed([batch.patches[k][batch.cells[k]] for k in range(len(batch.patches))]),
                              top_k=2)
        assert matches[0].sku == sku, matches


def ranking(*pairs) -> list[Match]:
    return [Match(sku, similarity) for sku, similarity in pairs]


def test_the_mismatch_rule_needs_both_a_low_rank_and_a_clear_gap():
    matches = ranking(("A", 0.9), ("B", 0.85), ("C", 0.5), ("D", 0.2))
    assert not check_claim(matches, "A", top_k=1, margin=0.1).mismatch           # the closest SKU
    assert not check_claim(matches, "B", top_k=1, margin=0.1).mismatch           # ranks 2 but within the margin
    flagged = check_claim(matches, "C", top_k=1, margin=0.1)
    assert flagged.mismatch and flagged.closest == "A" and flagged.rank == 2 and abs(flagged.gap - 0.4) < 1e-9
    assert "does not look like SKU C" in flagged.reason
    assert not check_claim(matches, "C", top_k=3, margin=0.1).mismatch           # among the top 3
    assert check_claim(matches, "D", top_k=3, margin=0.1).mismatch


def test_a_claim_cannot_be_checked_against_itself_alone_or_an_sku_without_gallery():
    assert check_claim(ranking(("A", 0.9)), "A", top_k=3, margin=0.0) is None
    assert check_claim(ranking(("A", 0.9), ("B", 0.1)), "Z", top_k=3, margin=0.0) is None
    assert effective_top_k(3, 2) == 1 and effective_top_k(3, 100) == 3 and effective_top_k(1, 1) == 1
    # two SKUs enrolled: k falls to 1, so the claimed SKU must be the closer one
    assert check_claim(ranking(("A", 0.9), ("B", 0.1)), "B", top_k=3, margin=0.5).mismatch


def test_check_item_ranks_the_views_embeddings_and_can_be_switched_off():
    rng = np.random.default_rng(3)
    looks = {f"SKU-{k}": rng.normal(size=DIM) for k in range(5)}
    index = GalleryIndex([synthetic_gallery(sku, look, rng) for sku, look in looks.items()])
    views = [view_embedding(5.0 + looks["SKU-2"] + 0.6 * rng.normal(size=(200, DIM))) for _ in range(3)]
    config = IdentificationConfig(top_k=1, margin=0.05)
    assert not check_item(index, views, "SKU-2", config).mismatch
    wrong = check_item(index, views, "SKU-4", config)
    assert wrong.mismatch and wrong.closest == "SKU-2"
    assert check_item(index, views, "SKU-4", IdentificationConfig(enabled=False)) is None
    assert check_item(index, [], "SKU-4", config) is None
