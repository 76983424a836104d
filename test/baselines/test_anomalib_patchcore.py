"""anomalib's PatchCore baseline (issue #4): our weights in timm's network, and fit + score on toy crops.

Skipped where anomalib is not installed (it is an optional extra: requirements-anomalib.txt)."""
import numpy as np
import pytest
import torch

from damage_perception.baselines import anomalib_patchcore as baseline
from damage_perception.core.backbone import BackboneUnavailable

SIZE = 160


@pytest.fixture(scope="module")
def patchcore_class():
    try:
        baseline.backbone_weights_path()
        cls = baseline.import_anomalib()
    except (baseline.AnomalibUnavailable, BackboneUnavailable) as error:
        pytest.skip(f"anomalib baseline unavailable: {error}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small model, small inputs: keep the test light on shared machines
    yield cls
    torch.set_num_threads(threads)


def test_renaming_maps_lite_blocks_to_timm_stages():
    lite = {"_conv_stem.weight": 0, "_bn0.running_mean": 1, "_conv_head.weight": 9, "_bn1.weight": 9, "_fc.bias": 9,
            "_blocks.0._depthwise_conv.weight": 2, "_blocks.0._bn1.bias": 3, "_blocks.0._project_conv.weight": 4,
            "_blocks.0._bn2.running_var": 5, "_blocks.1._expand_conv.weight": 6, "_blocks.1._bn0.weight": 7,
            "_blocks.1._depthwise_conv.weight": 8, "_blocks.1._bn1.weight": 10, "_blocks.1._project_conv.weight": 11,
            "_blocks.1._bn2.num_batches_tracked": 12, "_blocks.2._expand_conv.weight": 13}
    lite.update({f"_blocks.2.{k}": 20 for k in ("_bn0.bias", "_depthwise_conv.weight", "_bn1.bias",
                                                 "_project_conv.weight", "_bn2.bias")})
    out = baseline.timm_state_dict(lite, [1, 2])
    assert out["conv_stem.weight"] == 0 and out["bn1.running_mean"] == 1
    assert out["blocks.0.0.conv_dw.weight"] == 2 and out["blocks.0.0.bn1.bias"] == 3      # separable block
    assert out["blocks.0.0.conv_pw.weight"] == 4 and out["blocks.0.0.bn2.running_var"] == 5
    assert out["blocks.1.0.conv_pw.weight"] == 6 and out["blocks.1.0.bn1.weight"] == 7    # expanded block
    assert out["blocks.1.0.conv_dw.weight"] == 8 and out["blocks.1.0.bn2.weight"] == 10
    assert out["blocks.1.0.conv_pwl.weight"] == 11 and out["blocks.1.0.bn3.num_batches_tracked"] == 12
    assert out["blocks.1.1.conv_pw.weight"] == 13
    assert 9 not in out.values() and len(out) == len(lite) - 3


def test_timm_network_with_our_weights_gives_our_feature_maps(patchcore_class):
    # the renamed weights alone: timm (ReLU6) against the untouched efficientnet-lite-pytorch network
    lite = baseline.feature_difference(reference="lite")
    assert lite["blocks.2"] < 1e-5 and lite["blocks.4"] < 1e-5, lite
    # as both detectors run: against our Backbone (whatever activation it uses), and the 152-channel map
    ours = baseline.feature_difference(reference="backbone")
    tolerance = max(1e-4, 1e-5 * ours["scale"])  # Swish vs torch SiLU: float rounding only
    assert max(ours["blocks.2"], ours["blocks.4"], ours["embedding"]) < tolerance, ours


def _toy_item(rng, shift=(0, 0)):
    """A striped box on grey, 100 x 80 px, jittered by ``shift`` px and a little noise."""
    color = np.full((SIZE, SIZE, 3), 128, np.uint8)
    mask = np.zeros((SIZE, SIZE), bool)
    r0, c0 = 30 + shift[0], 40 + shift[1]
    rows, cols = np.mgrid[0:100, 0:80]
    box = np.stack([60 + 40 * ((cols // 10) % 2), 90 + 0 * rows, 150 - 40 * ((rows // 20) % 2)], -1)
    color[r0:r0 + 100, c0:c0 + 80] = np.clip(box + rng.normal(0, 4, box.shape), 0, 255).astype(np.uint8)
    mask[r0:r0 + 100, c0:c0 + 80] = True
    return color, mask


def test_fit_and_score_rank_a_pasted_bright_patch_above_a_gallery_crop(patchcore_class):
    rng = np.random.default_rng(0)
    items = [_toy_item(rng, tuple(rng.integers(-3, 4, 2))) for _ in range(6)]
    colors = np.stack([c for c, _ in items])
    masks = np.stack([m for _, m in items])
    detector = baseline.AnomalibPatchCore(coreset_ratio=0.1).fit({"toy": (colors, masks)})
    assert detector.banks["toy"].shape == (int(6 * 20 * 20 * 0.1), 152)

    damaged = colors[:1].copy()
    damaged[0, 60:84, 60:84] = 255  # bright patch inside the item
    scores = detector.score("toy", np.concatenate([colors[:1], damaged]), np.concatenate([masks[:1], masks[:1]]))
    assert scores.shape == (2,) and np.isfinite(scores).all()
    assert scores[1] > scores[0] * 1.5, scores
    assert len(detector.latencies_ms) == 2 and detector.median_latency_ms > 0
    with pytest.raises(KeyError):
        detector.score("unknown", colors[:1], masks[:1])
