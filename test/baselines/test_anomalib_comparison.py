"""Which SKUs the side-by-side with anomalib's PatchCore compares on (runs without anomalib)."""
from damage_perception.baselines.anomalib_comparison import evenly_spread


def test_the_compared_skus_are_spread_over_every_kind():
    skus = [f"{kind}-H{n:04d}" for kind in ("BG", "BK", "BL", "BT", "ML", "SKU") for n in range(1001, 1027)]
    chosen = evenly_spread(skus, 60)
    assert len(chosen) == 60 and chosen[0] == skus[0] and chosen[-1] == skus[-1]
    assert {sku.split("-")[0] for sku in chosen} == {"BG", "BK", "BL", "BT", "ML", "SKU"}
    assert evenly_spread(skus[:5], 60) == skus[:5]
