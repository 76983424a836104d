"""Media kept for the review station: which items, what of them, retention, the queue, reference crops."""
import cv2
import numpy as np
import pytest

from damage_perception.core.verdict import Decision
from damage_perception.store import item_media
from damage_perception.store.database import InspectionRecord, InspectionStore, StoredView, StoreError
from damage_perception.store.item_media import ReviewConfig


@pytest.fixture
def store(tmp_path):
    opened = InspectionStore(tmp_path / "station.db")
    yield opened
    opened.close()


def crop(seed: int, size: int = 64) -> np.ndarray:
    """A smooth crop (JPEG keeps it close) with a block whose colour depends on ``seed``."""
    image = np.zeros((size, size, 3), np.uint8)
    image[..., 0] = np.linspace(0, 200, size, dtype=np.uint8)[None, :]
    image[size // 4:size // 2, size // 4:size // 2] = (40 * (seed % 6), 255 - 30 * (seed % 8), 128)
    return image


def media(seed: int = 0, views: int = 2) -> list[item_media.ViewMedia]:
    heat = np.zeros((8, 8), np.float32)
    heat[2:4, 2:4] = 0.75
    mask = np.zeros((64, 64), bool)
    mask[10:50, 10:50] = True
    return [item_media.view_media(k, 0.5 * k, True, "", {"damage": 0.6, "crush": 0.4}, crop(seed + k), crop(seed + 9),
                                  mask, heat) for k in range(views)]


def logged(store, item_id: str, decision=Decision.REVIEW, sku="SKU-A", created=0.0) -> int:
    return store.log_inspection(InspectionRecord(item_id, sku, int(decision), 0.5, 0.6, "m", f"{sku}@v1",
                                                 "r", (0.5,), created))


def test_review_and_divert_are_kept_and_a_hashed_share_of_pass():
    config = ReviewConfig(keep_pass_fraction=0.01)
    assert item_media.keep_reason(Decision.REVIEW, "a", config) == "REVIEW"
    assert item_media.keep_reason(Decision.DIVERT, "a", config) == "DIVERT"
    assert item_media.keep_reason(Decision.ERROR, "a", config) == ""
    kept = [item_media.keep_reason(Decision.PASS, f"item-{k}", config) for k in range(20000)]
    share = kept.count("PASS sample") / len(kept)
    assert 0.007 < share < 0.013 and set(kept) == {"", "PASS sample"}
    assert kept == [item_media.keep_reason(Decision.PASS, f"item-{k}", config) for k in range(20000)]  # reproducible
    assert item_media.keep_reason(Decision.PASS, "x", ReviewConfig(keep_pass_fraction=0.0)) == ""
    assert item_media.keep_reason(Decision.PASS, "x", ReviewConfig(keep_pass_fraction=1.0)) == "PASS sample"


def test_kept_views_decode_to_what_was_kept(store):
    inspection = logged(store, "i1")
    views = media()
    size = item_media.keep_item(store, inspection, "REVIEW", {"crush": 0.4}, views, ReviewConfig())
    assert size == sum(v.num_bytes for v in views) > 0
    kept = item_media.kept_item(store, inspection)
    assert kept.kept_because == "REVIEW" and kept.type_scores == {"crush": 0.4} and kept.decision_name == "REVIEW"
    assert [v.index for v in kept.views] == [0, 1] and kept.views[1].wrist_angle == 0.5
    heat = cv2.imdecode(np.frombuffer(item_media.view_image(store, inspection, 0, "heatmap"), np.uint8),
                        cv2.IMREAD_UNCHANGED)
    assert heat.shape == (8, 8) and heat[3, 3] == round(0.75 * 255) and heat[0, 0] == 0
    image = cv2.imdecode(np.frombuffer(item_media.view_image(store, inspection, 1, "crop"), np.uint8), cv2.IMREAD_COLOR)
    decoded = image[:, :, ::-1].astype(int)
    assert np.abs(decoded - crop(1)).mean() < 3 < np.abs(decoded - crop(2))[16:32, 16:32].mean()   # a JPEG of it
    assert item_media.view_image(store, inspection, 5, "crop") is None
    with pytest.raises(StoreError):
        item_media.view_image(store, inspection, 0, "features; DROP TABLE labels")
    with pytest.raises(StoreError):
        item_media.keep_item(store, 999, "REVIEW", {}, views, ReviewConfig())


def test_retention_drops_the_oldest_first_by_size_and_by_age(store):
    ids = [logged(store, f"i{k}") for k in range(5)]
    one = sum(v.num_bytes for v in media())
    config = ReviewConfig(retention_days=0, retention_mib=3.5 * one / item_media.MIB)
    for k, inspection in enumerate(ids):
        item_media.keep_item(store, inspection, "REVIEW", {}, media(), config, now=1000.0 + k)
    assert [i.record.id for i in item_media.review_queue(store)] == ids[:1:-1]   # the 3 newest remain
    assert item_media.kept_bytes(store) == (3, 3 * one)
    aged = ReviewConfig(retention_days=1.0, retention_mib=0)
    assert item_media.prune(store, aged, now=1003.5 + 86400.0) == 2   # items kept at 1002, 1003 are past a day
    assert [i.record.id for i in item_media.review_queue(store)] == [ids[4]]
    assert len(store.inspections()) == 5   # the verdicts stay


def test_queue_is_unlabelled_kept_items_newest_first_and_filters(store):
    a = logged(store, "a", Decision.REVIEW, "SKU-A", 10.0)
    b = logged(store, "b", Decision.DIVERT, "SKU-B", 20.0)
    c = logged(store, "c", Decision.DIVERT, "SKU-A", 30.0)
    logged(store, "not-kept", Decision.PASS, "SKU-A", 40.0)
    for inspection in (a, b, c):
        item_media.keep_item(store, inspection, "x", {}, media(views=1), ReviewConfig())
    assert [i.record.item_id for i in item_media.review_queue(store)] == ["c", "b", "a"]
    assert [i.record.item_id for i in item_media.review_queue(store, sku="SKU-A")] == ["c", "a"]
    assert [i.record.item_id for i in item_media.review_queue(store, decision=Decision.DIVERT)] == ["c", "b"]
    assert item_media.review_queue(store, station="station-9") == []   # this store records no station
    assert item_media.queue_facets(store) == {"skus": ["SKU-A", "SKU-B"], "stations": []}
    store.add_label("c", damaged=True, damage_type="crush")
    item_media.skip(store, a, "qa")
    assert [i.record.item_id for i in item_media.review_queue(store)] == ["b"]
    rows = item_media.label_rows(store)
    assert [(r.item_id, r.judgement) for r in rows] == [("a", "can't tell"), ("c", "damaged")]
    assert store.labelled_scores() == [(0.5, True)]   # "can't tell" is no label for calibration
    with pytest.raises(StoreError):
        item_media.skip(store, 12345)


def test_reference_crops_follow_the_gallery_views(store):
    views = [StoredView(np.ones((3, 4), np.float32), wrist_angle=a) for a in (0.0, 1.5, 3.0)]
    version = store.enrol("SKU-A", views)
    assert [r.has_crop for r in item_media.reference_media(store, "SKU-A", version)] == [False] * 3
    item_media.keep_reference_crops(store, "SKU-A", version, [0.0, 1.5, 3.0], [crop(k) for k in range(3)])
    references = item_media.reference_media(store, "SKU-A", version)
    assert [(r.index, r.wrist_angle, r.has_crop) for r in references] == [(0, 0.0, True), (1, 1.5, True),
                                                                           (2, 3.0, True)]
    assert item_media.nearest_reference(references, -3.0).index == 2    # angles wrap
    assert item_media.reference_image(store, "SKU-A", version, 1)[:2] == b"\xff\xd8"   # a JPEG
    assert item_media.reference_image(store, "SKU-A", version, 7) is None
    with pytest.raises(StoreError):
        item_media.keep_reference_crops(store, "SKU-A", 9, [0.0], [crop(0)])
    assert item_media.parse_gallery_version("SKU-A@v12") == ("SKU-A", 12)
    assert item_media.parse_gallery_version("") is None
